"""HTTP authentication and the per-route permission declaration (docs/adr/0012).

Credentials, in this order:

- `Authorization: Bearer <key>`: a personal API key (`phx_`, a user's, with scopes) or a
  project secret key (legacy, shared per project). A public `phc_` token is refused with a
  message saying what it is. Keys in the URL (`?api_key=`) are refused: URLs get logged.
- The session cookie set by `POST /api/login`. A state-changing request (anything but GET,
  HEAD, OPTIONS) with the cookie must carry the session's CSRF token in `X-CSRF-Token` (the
  dashboard reads it from the `eventlens_csrf` cookie), else 403. Bearer requests need none:
  a browser never adds an Authorization header on its own.
- Neither: 401.

Every API route declares what it needs with one of the dependencies below; the decision is
`eventlens.accounts.policy` (`authorize`, `authorize_org`). `requirement_of` reads the
declaration back, so tests (the authorization matrix) walk the app's routes and find any route
that declares nothing.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from eventlens.accounts.policy import Permission, Principal, authorize, authorize_org
from eventlens.auth.keys import TOKEN_PREFIX
from eventlens.errors import AuthenticationError, NotFound, PermissionDenied
from eventlens.projects.store import Project
from eventlens.web.api.schemas import MAX_ID, ProjectId
from eventlens.web.deps import account_service, metadata_store, settings_of

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "PUBLIC_PATHS",
    "SESSION_COOKIE",
    "OrgAccess",
    "ProjectAccess",
    "Requirement",
    "any_principal",
    "authenticate",
    "client_address",
    "org_permission",
    "project_permission",
    "requirement_of",
    "user_principal",
    "visible_projects",
]

SESSION_COOKIE = "eventlens_session"
CSRF_COOKIE = "eventlens_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The API routes that need no credentials (they are how one gets credentials). Every other
# /api route declares a Requirement; tests/api/test_authz_matrix.py holds both to that.
PUBLIC_PATHS = frozenset({"/api/login", "/api/invites/accept", "/api/password_reset"})

# Registered in OpenAPI (the "Authorize" button at /docs); parsing is ours, so that every
# failure gets our error shape and a message saying what is wrong.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="PersonalAPIKey",
    description="A personal API key (phx_..., `eventlens key create` or the dashboard's Keys "
    "page) or a project's secret key (legacy, shown once by `eventlens project create`).",
)
cookie_scheme = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="Session",
    description="The session cookie set by POST /api/login; state-changing requests also send "
    "X-CSRF-Token.",
)

_URL_KEY_PARAMS = ("api_key", "personal_api_key")
PHC_MESSAGE = (
    "that is the project's public capture token (phc_...); use your login or a personal API "
    "key (phx_...)"
)


def api_key_from_header(header: str | None) -> str:
    """The key in an `Authorization` header value; AuthenticationError if absent or malformed."""
    if header is None or not header.strip():
        raise AuthenticationError(
            "missing API key: send the header 'Authorization: Bearer <personal API key>'"
        )
    scheme, _, key = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthenticationError(
            f"unsupported authorization scheme {scheme!r}: use 'Authorization: Bearer <key>'"
        )
    key = key.strip()
    if not key or " " in key:
        raise AuthenticationError("malformed Authorization header: expected 'Bearer <key>'")
    return key


def client_address(request: Request) -> str:
    """The caller's address (for throttling and the audit log): the connection's peer; the
    proxy's X-Forwarded-For first hop only when the operator said the proxy is trusted."""
    if settings_of(request).trust_proxy:
        forwarded = request.headers.get("x-forwarded-for", "").split(",")[0].strip()
        if forwarded:
            return forwarded[:64]
    return request.client.host if request.client else ""


def authenticate(request: Request) -> Principal:
    """The caller, from its Bearer key or session cookie; 401 without valid credentials,
    403 for a cookie request that changes state without the CSRF token."""
    leaked = [p for p in _URL_KEY_PARAMS if p in request.query_params]
    if leaked:
        raise AuthenticationError(
            f"API keys are not accepted in the URL (query parameter {leaked[0]!r}); send "
            "'Authorization: Bearer <key>' and rotate the key if this URL was logged",
            field=leaked[0],
        )
    accounts = account_service(request)
    header = request.headers.get("authorization")
    if header is not None:
        key = api_key_from_header(header)
        if key.startswith(TOKEN_PREFIX):
            raise AuthenticationError(PHC_MESSAGE)
        principal = accounts.principal_for_key(key)
        if principal is None:
            raise AuthenticationError("unknown API key (or expired, or revoked)")
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise AuthenticationError(
            "missing API key or session: send 'Authorization: Bearer <personal API key>' or "
            "log in (POST /api/login)"
        )
    found = accounts.principal_for_session(cookie)
    if found is None:
        raise AuthenticationError("your session has expired or was ended: log in again")
    principal, session = found
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            raise PermissionDenied(
                f"missing or wrong {CSRF_HEADER} header: a request made with the session "
                "cookie that changes something must carry the token of the eventlens_csrf "
                "cookie"
            )
    return principal


Target = Literal["project", "org", "user", "session", "any"]


@dataclass(frozen=True)
class Requirement:
    """What a route declared: the permission (None: any authenticated caller) and what it is
    checked against: a project in the path, an organisation in the path, the caller's own
    account (`user`: a session or a personal key; `session`: the login only), or nothing."""

    target: Target
    permission: Permission | None = None


def _declare(dep: Callable[..., Any], requirement: Requirement) -> Callable[..., Any]:
    dep.requirement = requirement  # type: ignore[attr-defined]
    return dep


def requirement_of(call: Any) -> Requirement | None:
    found = getattr(call, "requirement", None)
    return found if isinstance(found, Requirement) else None


def _principal(
    request: Request,
    _bearer: HTTPAuthorizationCredentials | None = Security(bearer_scheme),
    _cookie: str | None = Security(cookie_scheme),
) -> Principal:
    return authenticate(request)


AnyPrincipal = Annotated[Principal, Depends(_principal)]


@dataclass(frozen=True)
class ProjectAccess:
    principal: Principal
    project: Project
    org_id: int


@dataclass(frozen=True)
class OrgAccess:
    principal: Principal
    org_id: int


OrgId = Annotated[int, Path(ge=1, le=MAX_ID, description="Organisation id (GET /api/me).")]
ProjectIdPath = ProjectId  # the same declaration as the routes' own (one limit, one message)


def project_permission(permission: Permission) -> Callable[..., ProjectAccess]:
    """Dependency for a route under /api/projects/{project_id}: the caller must hold
    `permission` on that project (policy.authorize)."""

    def dep(request: Request, project_id: ProjectIdPath, principal: AnyPrincipal) -> ProjectAccess:
        try:
            project = metadata_store(request).get_project(project_id)
        except NotFound:
            raise NotFound(f"project {project_id} not found") from None
        org_id = account_service(request).store.org_of_project(project_id)
        authorize(principal, project_id, org_id, permission)
        return ProjectAccess(principal, project, org_id)

    return _declare(dep, Requirement("project", permission))


def org_permission(permission: Permission) -> Callable[..., OrgAccess]:
    """Dependency for a route under /api/orgs/{org_id} (policy.authorize_org)."""

    def dep(org_id: OrgId, principal: AnyPrincipal) -> OrgAccess:
        authorize_org(principal, org_id, permission)
        return OrgAccess(principal, org_id)

    return _declare(dep, Requirement("org", permission))


def _user(principal: AnyPrincipal) -> Principal:
    if not principal.is_user:
        raise PermissionDenied("a project secret key (legacy) has no account: log in")
    return principal


def _session_user(principal: AnyPrincipal) -> Principal:
    if principal.kind != "session":
        raise PermissionDenied(
            "managing your account needs the login session, not an API key"
            if principal.is_user
            else "a project secret key (legacy) has no account: log in"
        )
    return principal


def user_principal(session_only: bool = False) -> Callable[..., Principal]:
    """Dependency for the caller's own account (/api/me...): a user, not a legacy key; with
    `session_only`, logged in (an API key cannot mint keys or change the password)."""
    if session_only:
        return _declare(_session_user, Requirement("session"))
    return _declare(_user, Requirement("user"))


def any_principal() -> Callable[..., Principal]:
    """Dependency for routes any authenticated caller may use (each answers for what the
    caller can see, e.g. GET /api/projects)."""

    def dep(principal: AnyPrincipal) -> Principal:
        return principal

    return _declare(dep, Requirement("any"))


def visible_projects(
    request: Request, principal: Principal, permission: Permission
) -> list[Project]:
    """The projects on which `principal` holds `permission` (policy.authorize for each)."""
    store = account_service(request).store
    out = []
    for p in metadata_store(request).list_projects():
        org = store.org_of_project(p.id)
        if principal.sees_project(p.id, org) and permission in principal.permissions(org):
            out.append(p)
    return out

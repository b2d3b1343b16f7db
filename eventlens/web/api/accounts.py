"""Accounts over HTTP: login and logout, the caller's account and personal keys, an
organisation's members, invites and audit log, and the legacy key's rotation.

Login, invite acceptance and password reset are the public routes (`PUBLIC_PATHS`); every
other route declares its requirement (eventlens/web/auth.py). Login answers the same 401 for a
wrong email and a wrong password and 429 with Retry-After when throttled.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from eventlens.accounts.mail import invite_mail, mail_enabled, send_link
from eventlens.accounts.policy import Permission, Principal, Role
from eventlens.accounts.service import AccountService, LoggedIn
from eventlens.accounts.store import INVITE_TTL, parse_scopes
from eventlens.errors import EventLensError, PermissionDenied
from eventlens.observability.logging import get_logger
from eventlens.web.api.schemas import MAX_ID, ErrorBody
from eventlens.web.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    OrgAccess,
    ProjectAccess,
    client_address,
    org_permission,
    project_permission,
    user_principal,
)
from eventlens.web.deps import account_service, metadata_store, settings_of

log = get_logger(__name__)
router = APIRouter(prefix="/api", tags=["accounts"])

Accounts = Annotated[AccountService, Depends(account_service)]
User = Annotated[Principal, Depends(user_principal())]
SessionUser = Annotated[Principal, Depends(user_principal(session_only=True))]
OrgAdmin = Annotated[OrgAccess, Depends(org_permission(Permission.PROJECT_ADMIN))]
ProjectAdmin = Annotated[ProjectAccess, Depends(project_permission(Permission.PROJECT_ADMIN))]
UserId = Annotated[int, Path(ge=1, le=MAX_ID, description="User id (GET .../members).")]
KeyId = Annotated[int, Path(ge=1, le=MAX_ID, description="Personal API key id.")]
Email = Annotated[str, Field(min_length=3, max_length=254)]
Password = Annotated[str, Field(max_length=1024)]
Token = Annotated[str, Field(min_length=1, max_length=200)]

_ERR = {"model": ErrorBody}
_PUBLIC_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {**_ERR, "description": "Invalid body (names the field)."},
    401: {**_ERR, "description": "Wrong email or password (one answer for both)."},
    403: {**_ERR, "description": "A cross-site request (its Origin is not this server)."},
    404: {**_ERR, "description": "The link is unknown, used or expired."},
    429: {**_ERR, "description": "Too many failed logins: Retry-After says when to retry."},
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {**_ERR, "description": "No permission (role, key scope) or missing CSRF token."},
    404: {**_ERR, "description": "No such object in an organisation of yours."},
}


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    password: Password


class OrgInfo(BaseModel):
    id: int
    name: str
    role: str
    projects: list[int] | None = Field(description="Per-project access; null = all projects.")


class Me(BaseModel):
    user_id: int
    email: str
    auth: str = Field(description="session or personal_key")
    orgs: list[OrgInfo]
    csrf_token: str | None = Field(description="Send as X-CSRF-Token (session only).")


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: Password
    new_password: Password


class KeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1, max_length=4, description="e.g. ['query:read']")
    project_id: int | None = Field(None, ge=1, le=MAX_ID, description="Only this project.")
    expires_in_days: float | None = Field(None, gt=0, le=3650)


class KeyInfo(BaseModel):
    id: int
    label: str
    scopes: list[str]
    project_id: int | None
    expires_at: float | None
    created_at: float
    mask: str


class CreatedKey(KeyInfo):
    key: str = Field(description="The key: shown this once, only its hash is stored.")


class MemberPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    projects: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(
        None, max_length=1000, description="Per-project access; null = every project."
    )


class Member(BaseModel):
    user_id: int
    email: str
    role: str
    projects: list[int] | None


class InviteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    role: Role = Role.MEMBER


class Invite(BaseModel):
    token: str
    link: str = Field(description="The dashboard path that accepts it (one use).")
    expires_in: float
    mailed: bool = Field(
        description="The link was mailed to the invitee (false: no SMTP server is configured, "
        "or sending failed; pass the link on by hand, it is valid either way)."
    )
    mail_error: str | None = Field(
        description="Why the mail was not sent when the SMTP server failed; null otherwise."
    )


class Acceptance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: Token
    password: Password


class AuditEntry(BaseModel):
    id: int
    at: float
    org_id: int | None
    user_id: int | None
    email: str | None
    action: str
    target: str | None
    address: str | None
    detail: dict[str, Any]


class RotatedKey(BaseModel):
    api_key: str = Field(description="The project's new secret key (legacy); the old one ends.")


def _secure(request: Request) -> bool:
    if request.url.scheme == "https":
        return True
    forwarded = request.headers.get("x-forwarded-proto", "")
    return settings_of(request).trust_proxy and forwarded.split(",")[0].strip() == "https"


def _public_base(request: Request) -> str:
    """The dashboard's address for a mailed link: `public_url`, else the one the admin's
    browser used (the Host it sent, or X-Forwarded-Host behind a trusted proxy)."""
    settings = settings_of(request)
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = request.headers.get("host", f"{settings.host}:{settings.port}")
    if settings.trust_proxy:
        host = request.headers.get("x-forwarded-host", "").split(",")[0].strip() or host
    return f"{'https' if _secure(request) else 'http'}://{host}"


def _same_origin(request: Request) -> None:
    """A browser names the page that sent a request in Origin: refuse other sites (login
    CSRF); no Origin (curl, scripts) is fine, the JSON content type already needs CORS."""
    origin = request.headers.get("origin")
    if not origin:
        return
    hosts = {request.headers.get("host")}
    if settings_of(request).trust_proxy:  # a proxy that rewrites Host says the original here
        hosts.add(request.headers.get("x-forwarded-host", "").split(",")[0].strip())
    if urlsplit(origin).netloc not in hosts:
        raise PermissionDenied(f"cross-site request from {origin!r} refused")


def _me(accounts: AccountService, principal: Principal, csrf: str | None) -> dict[str, Any]:
    assert principal.user_id is not None and principal.email is not None
    return {
        "user_id": principal.user_id,
        "email": principal.email,
        "auth": principal.kind,
        "orgs": [
            {
                "id": m.org_id,
                "name": accounts.store.org_name(m.org_id),
                "role": m.role.value,
                "projects": None if m.projects is None else sorted(m.projects),
            }
            for m in principal.memberships.values()
        ],
        "csrf_token": csrf,
    }


def _logged_in(request: Request, accounts: AccountService, done: LoggedIn) -> Response:
    """The account with a fresh session: new session and CSRF cookies (a login rotates both)."""
    response = JSONResponse(_me(accounts, done.principal, done.session.csrf))
    secure, max_age = _secure(request), int(accounts.max_age)
    response.set_cookie(
        SESSION_COOKIE, done.secret, max_age, httponly=True, samesite="lax", secure=secure
    )
    response.set_cookie(
        CSRF_COOKIE, done.session.csrf, max_age, httponly=False, samesite="lax", secure=secure
    )
    return response


@router.post("/login", response_model=Me, responses=_PUBLIC_ERRORS)
def login(request: Request, body: Credentials, accounts: Accounts) -> Response:
    """Log in: sets the session cookie (HttpOnly, SameSite=Lax, Secure over HTTPS) and the
    CSRF cookie; any session the browser had is replaced."""
    _same_origin(request)
    old = request.cookies.get(SESSION_COOKIE)
    done = accounts.login(body.email, body.password, client_address(request))
    if old:
        found = accounts.principal_for_session(old)
        if found is not None:
            accounts.store.end_session(found[1].id_hash)
    return _logged_in(request, accounts, done)


@router.post("/logout", status_code=204, responses=_ERRORS)
def logout(request: Request, principal: SessionUser, accounts: Accounts) -> Response:
    """End this session (the cookie stops working at once, everywhere)."""
    accounts.logout(principal, client_address(request))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)
    return response


@router.get("/me", response_model=Me, responses=_ERRORS)
def me(request: Request, principal: User, accounts: Accounts) -> Any:
    """The caller's account and organisations (with a session: its CSRF token)."""
    csrf = None
    cookie = request.cookies.get(SESSION_COOKIE)
    if principal.kind == "session" and cookie:
        found = accounts.principal_for_session(cookie)
        csrf = None if found is None else found[1].csrf
    return _me(accounts, principal, csrf)


@router.post("/me/password", response_model=Me, responses=_ERRORS)
def change_password(
    request: Request, body: PasswordChange, principal: SessionUser, accounts: Accounts
) -> Response:
    """Change the password: every session of the account ends; this browser gets a new one."""
    done = accounts.change_password(
        principal, body.current_password, body.new_password, client_address(request)
    )
    return _logged_in(request, accounts, done)


@router.get("/me/keys", response_model=list[KeyInfo], responses=_ERRORS)
def list_keys(principal: SessionUser, accounts: Accounts) -> Any:
    """Your personal API keys (masked)."""
    assert principal.user_id is not None
    return [k.to_dict() for k in accounts.store.keys_of(principal.user_id)]


@router.post("/me/keys", status_code=201, response_model=CreatedKey, responses=_ERRORS)
def create_key(request: Request, body: KeyBody, principal: SessionUser, accounts: Accounts) -> Any:
    """A personal API key (phx_...): shown in this answer only. It can never do more than your
    role allows, whatever its scopes say."""
    expires = None
    if body.expires_in_days is not None:
        expires = accounts.store.clock() + body.expires_in_days * 86400
    key, made = accounts.create_key(
        principal,
        body.label,
        parse_scopes(body.scopes),
        body.project_id,
        expires,
        client_address(request),
    )
    return {**made.to_dict(), "key": key}


@router.delete("/me/keys/{key_id}", status_code=204, responses=_ERRORS)
def revoke_key(
    request: Request, key_id: KeyId, principal: SessionUser, accounts: Accounts
) -> Response:
    """Revoke one of your keys (it stops working at once)."""
    accounts.revoke_key(principal, key_id, client_address(request))
    return Response(status_code=204)


@router.get("/orgs/{org_id}/members", response_model=list[Member], responses=_ERRORS)
def list_members(access: OrgAdmin, accounts: Accounts) -> Any:
    """The organisation's members and roles (admins)."""
    return accounts.store.members(access.org_id)


@router.patch("/orgs/{org_id}/members/{user_id}", response_model=Member, responses=_ERRORS)
def update_member(
    request: Request, user_id: UserId, body: MemberPatch, access: OrgAdmin, accounts: Accounts
) -> Any:
    """Change a member's `role` (only an owner grants or removes the owner role) and/or
    `projects` (per-project access: a list of the organisation's project ids, or null for all;
    absent = unchanged)."""
    accounts.update_member(
        access.principal,
        access.org_id,
        user_id,
        body.role,
        body.projects,
        set_projects="projects" in body.model_fields_set,
        address=client_address(request),
    )
    return next(m for m in accounts.store.members(access.org_id) if m["user_id"] == user_id)


@router.delete("/orgs/{org_id}/members/{user_id}", status_code=204, responses=_ERRORS)
def remove_member(
    request: Request, user_id: UserId, access: OrgAdmin, accounts: Accounts
) -> Response:
    """Remove a member from the organisation."""
    accounts.remove_member(access.principal, access.org_id, user_id, client_address(request))
    return Response(status_code=204)


@router.post("/orgs/{org_id}/invites", status_code=201, response_model=Invite, responses=_ERRORS)
def invite(request: Request, body: InviteBody, access: OrgAdmin, accounts: Accounts) -> Any:
    """A one-time invite link (valid 7 days) for `email` with `role`."""
    token = accounts.invite(
        body.email, access.org_id, body.role, access.principal, client_address(request)
    )
    path = f"/#/invite/{token}"
    mailed, mail_error = False, None
    settings = settings_of(request)
    if mail_enabled(settings):
        org_name = accounts.store.org_name(access.org_id)
        subject, text = invite_mail(_public_base(request) + path, org_name, body.role.value)
        try:
            send_link(settings, body.email, subject, text)
            mailed = True
        except EventLensError as exc:
            # The invite exists and its link works: the admin passes it on by hand.
            mail_error = exc.message
            log.warning("invite.mail_failed", org_id=access.org_id, error=exc.message)
    return {
        "token": token,
        "link": path,
        "expires_in": INVITE_TTL,
        "mailed": mailed,
        "mail_error": mail_error,
    }


@router.get("/orgs/{org_id}/audit", response_model=list[AuditEntry], responses=_ERRORS)
def audit_log(access: OrgAdmin, accounts: Accounts) -> Any:
    """The newest 200 audit entries: logins, keys, roles, invites, settings (admins)."""
    return accounts.store.audit_entries(access.org_id)


@router.post("/invites/accept", response_model=Me, responses=_PUBLIC_ERRORS)
def accept_invite(request: Request, body: Acceptance, accounts: Accounts) -> Response:
    """Accept an invite: the account is created with this password (or, if the email has one,
    the password must be its own) and logged in."""
    _same_origin(request)
    done = accounts.accept_invite(body.token, body.password, client_address(request))
    return _logged_in(request, accounts, done)


@router.post("/password_reset", status_code=204, responses=_PUBLIC_ERRORS)
def password_reset(request: Request, body: Acceptance, accounts: Accounts) -> Response:
    """Set a new password with a one-time reset link (`eventlens user reset-link`); every
    session of the account ends."""
    _same_origin(request)
    accounts.reset_password(body.token, body.password, client_address(request))
    return Response(status_code=204)


@router.post(
    "/projects/{project_id}/secret_key/rotate", response_model=RotatedKey, responses=_ERRORS
)
def rotate_secret_key(request: Request, access: ProjectAdmin, accounts: Accounts) -> Any:
    """Replace the project's secret key (legacy): the old one stops working at once."""
    new_key = metadata_store(request).rotate_api_key(access.project.id)
    accounts.store.audit(
        "legacy_key.rotate",
        org_id=access.org_id,
        user_id=access.principal.user_id,
        target=str(access.project.id),
        address=client_address(request),
    )
    return {"api_key": new_key}

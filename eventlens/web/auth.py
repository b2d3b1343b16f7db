"""HTTP authentication of the JSON API: `Authorization: Bearer <personal API key>`.

- No header, another scheme, an empty or unknown key -> 401 (`AuthenticationError`).
- A key in the URL (`?api_key=`, `?personal_api_key=`) -> 401 as well: URLs end up in
  access logs, proxies and browser history, so the key is accepted only in the header.
- A valid key asking for a project it cannot read -> 404 "project N not found", the same answer
  as for a project that does not exist. A 403 would confirm to the holder of any key that
  project N exists; the 404 reveals nothing (the choice GitHub makes for private repositories).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from eventlens.errors import AuthenticationError, NotFound
from eventlens.projects.store import Project
from eventlens.web.deps import metadata_store

# Registers the scheme in OpenAPI (the "Authorize" button at /docs); parsing is ours, so that
# every failure gets our error shape and a message saying what is wrong.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="PersonalAPIKey",
    description="The project's personal API key (phx_...), shown once by `eventlens project "
    "create`.",
)

_URL_KEY_PARAMS = ("api_key", "personal_api_key")


@dataclass(frozen=True)
class Principal:
    """The caller: the projects its API key may read."""

    projects: tuple[Project, ...]

    def project(self, project_id: int) -> Project:
        """The project if this key may read it; NotFound otherwise (existence not revealed)."""
        for p in self.projects:
            if p.id == project_id:
                return p
        raise NotFound(f"project {project_id} not found")


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


def require_principal(
    request: Request,
    _credentials: HTTPAuthorizationCredentials | None = Security(bearer_scheme),
) -> Principal:
    """FastAPI dependency: the authenticated caller, or 401."""
    leaked = [p for p in _URL_KEY_PARAMS if p in request.query_params]
    if leaked:
        raise AuthenticationError(
            f"API keys are not accepted in the URL (query parameter {leaked[0]!r}); send "
            "'Authorization: Bearer <key>' and rotate the key if this URL was logged",
            field=leaked[0],
        )
    key = api_key_from_header(request.headers.get("authorization"))
    projects = metadata_store(request).projects_for_api_key(key)
    if not projects:
        raise AuthenticationError("unknown API key")
    return Principal(tuple(projects))

"""Who may do what: roles, permissions (= personal-key scopes), principals and the one policy
function, `authorize`.

The answer to "may P do X to project Q" is, in this order:

1. Q is not visible to P (another organisation's project, a project outside P's per-project
   access or outside its key's restriction) -> `NotFound`, the same answer as for a project that
   does not exist, so nothing about other organisations leaks.
2. P sees Q but its role (intersected with its key's scopes) lacks X -> `PermissionDenied`.
3. Otherwise allowed.

No credentials at all is `AuthenticationError`, decided before (eventlens/web/auth.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from eventlens.errors import NotFound, PermissionDenied


class Permission(StrEnum):
    """What a route needs. The same words are the scopes of a personal API key."""

    QUERY_READ = "query:read"  # projects, catalog, live events, insight queries, shadow report
    INSIGHT_READ = "insight:read"  # saved insights and dashboards
    INSIGHT_WRITE = "insight:write"  # save, change, delete insights and dashboards
    PROJECT_ADMIN = "project:admin"  # members, invites, audit log, legacy key rotation


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


_READ = frozenset({Permission.QUERY_READ, Permission.INSIGHT_READ})
ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.VIEWER: _READ,
    Role.MEMBER: _READ | {Permission.INSIGHT_WRITE},
    Role.ADMIN: frozenset(Permission),
    Role.OWNER: frozenset(Permission),
}
# A project secret key (legacy, one per project, shared): what it could do before accounts
# existed, and no more. Managing people and keys needs a person.
LEGACY_PERMISSIONS = frozenset(
    {Permission.QUERY_READ, Permission.INSIGHT_READ, Permission.INSIGHT_WRITE}
)


@dataclass(frozen=True)
class Membership:
    org_id: int
    role: Role
    # None: every project of the organisation; else only these (per-project access).
    projects: frozenset[int] | None = None

    def sees(self, project_id: int) -> bool:
        return self.projects is None or project_id in self.projects


PrincipalKind = Literal["session", "personal_key", "legacy_key"]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller.

    - `session` and `personal_key`: a user (`user_id`, `email`) with `memberships` by org id;
      a personal key also has `scopes` and optionally `key_projects` (its project restriction).
    - `legacy_key`: a project secret key; `key_projects` are the projects it was made for.
    """

    kind: PrincipalKind
    user_id: int | None = None
    email: str | None = None
    memberships: Mapping[int, Membership] = field(default_factory=dict)
    scopes: frozenset[Permission] | None = None
    key_projects: frozenset[int] | None = None
    session_id: str | None = None  # the session's hash, for logout

    @property
    def is_user(self) -> bool:
        return self.user_id is not None

    def role_in(self, org_id: int) -> Role | None:
        m = self.memberships.get(org_id)
        return None if m is None else m.role

    def sees_project(self, project_id: int, org_id: int) -> bool:
        """Whether the project exists for this principal (rule 1 of the module docstring)."""
        if self.key_projects is not None and project_id not in self.key_projects:
            return False
        if self.kind == "legacy_key":
            return True
        m = self.memberships.get(org_id)
        return m is not None and m.sees(project_id)

    def permissions(self, org_id: int) -> frozenset[Permission]:
        """What this principal may do in `org_id`'s projects."""
        if self.kind == "legacy_key":
            return LEGACY_PERMISSIONS
        m = self.memberships.get(org_id)
        granted = frozenset() if m is None else ROLE_PERMISSIONS[m.role]
        return granted if self.scopes is None else granted & self.scopes


def authorize(principal: Principal, project_id: int, org_id: int, permission: Permission) -> None:
    """The policy: return if `principal` may do `permission` on project `project_id` (owned by
    organisation `org_id`); NotFound if the project is not visible to it, PermissionDenied if
    it is but the permission is missing."""
    if not principal.sees_project(project_id, org_id):
        raise NotFound(f"project {project_id} not found")
    if permission not in principal.permissions(org_id):
        raise PermissionDenied(_denied(principal, permission))


def authorize_org(principal: Principal, org_id: int, permission: Permission) -> None:
    """The policy for an organisation's own objects (members, invites, audit log): NotFound
    unless `principal` is a member (a legacy key is no member of anything), PermissionDenied
    without the permission."""
    if principal.kind == "legacy_key" or org_id not in principal.memberships:
        raise NotFound(f"organisation {org_id} not found")
    if principal.key_projects is not None:
        # A key restricted to some projects does not manage the whole organisation.
        raise PermissionDenied("this personal API key is restricted to projects; use the login")
    if permission not in principal.permissions(org_id):
        raise PermissionDenied(_denied(principal, permission))


def _denied(principal: Principal, permission: Permission) -> str:
    if principal.kind == "legacy_key":
        return (
            f"a project secret key (legacy) cannot {permission.value}; log in or use a "
            "personal API key of an admin"
        )
    if principal.scopes is not None and permission not in principal.scopes:
        return f"this personal API key lacks the scope {permission.value!r}"
    return f"your role does not allow {permission.value!r}"

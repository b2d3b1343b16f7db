"""The account flows over the store: login (throttled, audited, timing-safe), sessions,
principals from a session or a key, invites, password change and reset, personal keys.

HTTP does not appear here: eventlens/web/auth.py turns cookies and headers into calls of
`principal_for_session` / `principal_for_key`, and eventlens/web/api/accounts.py the routes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventlens.accounts import passwords
from eventlens.accounts.policy import Permission, Principal, Role, authorize_org
from eventlens.accounts.store import (
    DEFAULT_ORG,
    INVITE_TTL,
    RESET_TTL,
    AccountStore,
    PersonalKey,
    SessionRow,
)
from eventlens.accounts.throttle import LoginThrottle
from eventlens.errors import (
    AuthenticationError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RateLimited,
)
from eventlens.observability import metrics
from eventlens.projects.store import MetadataStore

LOGIN_FAILED = "wrong email or password"  # one message for both: no user enumeration


@dataclass(frozen=True)
class LoggedIn:
    secret: str  # the session cookie's value
    session: SessionRow
    principal: Principal


class AccountService:
    def __init__(
        self,
        store: AccountStore,
        projects: MetadataStore,
        throttle: LoginThrottle,
        idle_timeout: float,
        max_age: float,
    ) -> None:
        self.store = store
        self.projects = projects
        self.throttle = throttle
        self.idle_timeout = idle_timeout
        self.max_age = max_age

    # --- principals --------------------------------------------------------------------------
    def user_principal(self, user_id: int, **extra: Any) -> Principal:
        user = self.store.user(user_id)
        return Principal(
            kind=extra.pop("kind", "session"),
            user_id=user.id,
            email=user.email,
            memberships=self.store.memberships(user.id),
            **extra,
        )

    def principal_for_session(self, secret: str) -> tuple[Principal, SessionRow] | None:
        row = self.store.session(secret, self.idle_timeout, self.max_age)
        if row is None:
            return None
        return self.user_principal(row.user_id, session_id=row.id_hash), row

    def principal_for_key(self, key: str) -> Principal | None:
        """A personal key's principal, else a legacy project key's, else None."""
        personal = self.store.key_by_secret(key)
        if personal is not None:
            return self.user_principal(
                personal.user_id,
                kind="personal_key",
                scopes=personal.scopes,
                key_projects=None
                if personal.project_id is None
                else frozenset({personal.project_id}),
            )
        legacy = self.projects.projects_for_api_key(key)
        if legacy:
            return Principal(kind="legacy_key", key_projects=frozenset(p.id for p in legacy))
        return None

    # --- login -------------------------------------------------------------------------------
    def login(self, email: str, password: str, address: str) -> LoggedIn:
        """A new session for the right email and password. AuthenticationError (one message)
        otherwise; RateLimited when the account or the address failed too often lately."""
        account = email.strip().lower()
        wait = self.throttle.retry_after(account, address)
        if wait > 0:
            metrics.logins.labels("throttled").inc()
            known = self.store.user_by_email(account)
            self.store.audit(
                "login.throttled",
                user_id=None if known is None else known.id,
                target=account,
                address=address,
            )
            raise RateLimited(
                f"too many failed logins; retry in {int(wait) + 1} s", retry_after=wait
            )
        user = self.store.user_by_email(account)
        # Verified even without a user (the dummy hash): the same work and the same answer.
        if not passwords.verify(None if user is None else user.password_hash, password):
            self.throttle.failed(account, address)
            metrics.logins.labels("failure").inc()
            self.store.audit(
                "login.failure",
                user_id=None if user is None else user.id,
                target=account,
                address=address,
            )
            raise AuthenticationError(LOGIN_FAILED)
        assert user is not None
        if passwords.needs_rehash(user.password_hash):
            self.store.rehash(user.id, password)  # hashes follow the parameters as they change
        self.throttle.succeeded(account)
        metrics.logins.labels("success").inc()
        self.store.audit("login.success", user_id=user.id, target=account, address=address)
        return self._start_session(user.id)

    def _start_session(self, user_id: int) -> LoggedIn:
        secret, row = self.store.create_session(user_id)
        return LoggedIn(secret, row, self.user_principal(user_id, session_id=row.id_hash))

    def logout(self, principal: Principal, address: str) -> None:
        if principal.session_id is not None:
            self.store.end_session(principal.session_id)
            self.store.audit("logout", user_id=principal.user_id, address=address)

    def change_password(
        self, principal: Principal, current: str, new: str, address: str
    ) -> LoggedIn:
        """Every session ends (this one too); the caller gets a fresh one."""
        user = self.store.user(self._user_id(principal))
        if not passwords.verify(user.password_hash, current):
            raise AuthenticationError("the current password is wrong", field="current_password")
        self.store.set_password(user.id, new)
        self.store.audit("password.change", user_id=user.id, address=address)
        return self._start_session(user.id)

    # --- invites and resets ------------------------------------------------------------------
    def invite(
        self, email: str, org_id: int, role: Role, by: Principal | None, address: str = ""
    ) -> str:
        """A one-time invite token (valid INVITE_TTL). Only an owner may invite an owner."""
        if by is not None:
            authorize_org(by, org_id, Permission.PROJECT_ADMIN)
            if role is Role.OWNER and by.role_in(org_id) is not Role.OWNER:
                raise PermissionDenied("only an owner can invite an owner")
        self.store.org_name(org_id)
        token = self.store.create_token(
            "invite", email, INVITE_TTL, org_id, role, None if by is None else by.user_id
        )
        self.store.audit(
            "invite.create",
            org_id=org_id,
            user_id=None if by is None else by.user_id,
            target=email,
            address=address,
            role=role.value,
        )
        return token

    def accept_invite(self, token: str, password: str, address: str) -> LoggedIn:
        """The invitee's account (made now, or the existing one when the password is theirs)
        joins the organisation with the invited role; they are logged in."""
        passwords.check_rules(password)
        email, org_id, role = self.store.use_token("invite", token)
        assert org_id is not None and role is not None
        user = self.store.user_by_email(email)
        if user is None:
            user = self.store.create_user(email, password)
        elif not passwords.verify(user.password_hash, password):
            raise AuthenticationError(
                f"{email} has an account already: give its password to accept", field="password"
            )
        if org_id not in self.store.memberships(user.id):
            # A member already keeps their role: an invite never demotes (nor the last owner).
            self.store.set_membership(user.id, org_id, role)
        self.store.audit(
            "invite.accept", org_id=org_id, user_id=user.id, target=email, address=address
        )
        return self._start_session(user.id)

    def reset_link_token(self, email: str) -> str:
        """A one-time password-reset token (valid RESET_TTL) for an existing user (CLI)."""
        if self.store.user_by_email(email) is None:
            raise NotFound(f"no user with email {email!r}", field="email")
        return self.store.create_token("reset", email, RESET_TTL)

    def reset_password(self, token: str, password: str, address: str) -> None:
        passwords.check_rules(password)
        email, _, _ = self.store.use_token("reset", token)
        user = self.store.user_by_email(email)
        if user is None:
            raise NotFound("this reset link is unknown, used or expired", field="token")
        self.store.set_password(user.id, password)
        self.store.audit("password.reset", user_id=user.id, address=address)

    # --- people and keys ---------------------------------------------------------------------
    def create_owner(self, email: str, password: str, org_id: int = DEFAULT_ORG) -> int:
        """First run: a user who owns `org_id` (the default organisation unless told)."""
        if org_id == DEFAULT_ORG:
            self.store.ensure_default_org()
        user = self.store.user_by_email(email) or self.store.create_user(email, password)
        self.store.set_membership(user.id, org_id, Role.OWNER)
        self.store.audit(
            "member.update", org_id=org_id, user_id=user.id, target=email, role="owner"
        )
        return user.id

    def update_member(
        self,
        by: Principal,
        org_id: int,
        user_id: int,
        role: Role | None,
        projects: Sequence[int] | None = None,
        set_projects: bool = False,
        address: str = "",
    ) -> None:
        """Change a member's role and/or per-project access (`set_projects`: `projects` None
        means every project of the organisation). Only an owner touches the owner role; the
        last owner stays one; listed projects must be the organisation's."""
        authorize_org(by, org_id, Permission.PROJECT_ADMIN)
        target = self.store.memberships(user_id).get(org_id)
        if target is None:
            raise NotFound(f"user {user_id} is not a member of organisation {org_id}")
        new_role = target.role if role is None else role
        if Role.OWNER in (new_role, target.role) and new_role is not target.role:
            if by.role_in(org_id) is not Role.OWNER:
                raise PermissionDenied("only an owner can grant or take away the owner role")
            if target.role is Role.OWNER and self._owners(org_id) == 1:
                raise InvalidInput("the last owner cannot be demoted", field="role")
        access = target.projects
        if set_projects:
            for pid in projects or ():
                if self.store.org_of_project(pid) != org_id or not self._exists(pid):
                    raise NotFound(f"project {pid} not found", field="projects")
            access = None if projects is None else frozenset(projects)
        self.store.set_membership(user_id, org_id, new_role, access)
        self.store.audit(
            "member.update",
            org_id=org_id,
            user_id=by.user_id,
            target=str(user_id),
            address=address,
            role=new_role.value,
            projects=None if access is None else sorted(access),
        )

    def _exists(self, project_id: int) -> bool:
        try:
            self.projects.get_project(project_id)
        except NotFound:
            return False
        return True

    def remove_member(self, by: Principal, org_id: int, user_id: int, address: str) -> None:
        authorize_org(by, org_id, Permission.PROJECT_ADMIN)
        target = self.store.memberships(user_id).get(org_id)
        if target is None:
            raise NotFound(f"user {user_id} is not a member of organisation {org_id}")
        if target.role is Role.OWNER and by.role_in(org_id) is not Role.OWNER:
            raise PermissionDenied("only an owner can remove an owner")
        if target.role is Role.OWNER and self._owners(org_id) == 1:
            raise InvalidInput("the last owner cannot be removed", field="user_id")
        self.store.remove_membership(user_id, org_id)
        self.store.audit("member.remove", org_id=org_id, user_id=by.user_id, target=str(user_id))

    def _owners(self, org_id: int) -> int:
        return sum(1 for m in self.store.members(org_id) if m["role"] == Role.OWNER.value)

    def create_key(
        self,
        principal: Principal,
        label: str,
        scopes: frozenset[Permission],
        project_id: int | None,
        expires_at: float | None,
        address: str = "",
    ) -> tuple[str, PersonalKey]:
        uid = self._user_id(principal)
        if project_id is not None:
            org = self.store.org_of_project(project_id)
            try:
                self.projects.get_project(project_id)
            except NotFound:
                raise NotFound(f"project {project_id} not found", field="project_id") from None
            if not principal.sees_project(project_id, org):
                raise NotFound(f"project {project_id} not found", field="project_id")
        if expires_at is not None and expires_at <= self.store.clock():
            raise InvalidInput("expires_at is in the past", field="expires_at")
        key, made = self.store.create_key(uid, label, scopes, project_id, expires_at)
        self.store.audit(
            "key.create", user_id=uid, target=made.mask, address=address, key_id=made.id
        )
        return key, made

    def revoke_key(self, principal: Principal, key_id: int, address: str = "") -> None:
        uid = self._user_id(principal)
        self.store.delete_key(uid, key_id)
        self.store.audit("key.revoke", user_id=uid, target=str(key_id), address=address)

    @staticmethod
    def _user_id(principal: Principal) -> int:
        if principal.user_id is None:
            raise PermissionDenied("a project secret key (legacy) has no account; log in")
        return principal.user_id

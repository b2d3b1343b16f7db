"""Accounts in the metadata database (`settings.meta_db`), next to the projects' tables.

Tables are created here (CREATE TABLE IF NOT EXISTS), so a data directory made before accounts
existed upgrades in place: its projects and project secret keys are untouched, and every
project that no organisation claims belongs to the default organisation (id 1, made on first
use). Secrets (session ids, personal keys, invite and reset tokens) are stored only as SHA-256
hashes; passwords as argon2id hashes (`passwords`).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from eventlens.accounts import passwords
from eventlens.accounts.policy import Membership, Permission, Role
from eventlens.auth.keys import hash_api_key, new_api_key
from eventlens.errors import InvalidInput, NotFound
from eventlens.sqlite_db import open_store_db

DEFAULT_ORG = 1
INVITE_TTL = 7 * 86400.0
RESET_TTL = 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS organizations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS project_orgs (
    project_id INTEGER PRIMARY KEY, org_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS memberships (
    user_id INTEGER NOT NULL, org_id INTEGER NOT NULL, role TEXT NOT NULL,
    projects TEXT, PRIMARY KEY (user_id, org_id));
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL, csrf TEXT NOT NULL,
    created_at REAL NOT NULL, last_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS personal_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key_hash TEXT NOT NULL UNIQUE, user_id INTEGER NOT NULL,
    label TEXT NOT NULL, scopes TEXT NOT NULL, project_id INTEGER, expires_at REAL,
    created_at REAL NOT NULL, last_used REAL, mask TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS one_time_tokens (
    token_hash TEXT PRIMARY KEY, kind TEXT NOT NULL, email TEXT NOT NULL, org_id INTEGER,
    role TEXT, expires_at REAL NOT NULL, used_at REAL, created_by INTEGER);
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, org_id INTEGER, user_id INTEGER,
    action TEXT NOT NULL, target TEXT, address TEXT, detail TEXT NOT NULL);
"""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class User:
    id: int
    email: str
    password_hash: str


@dataclass(frozen=True)
class SessionRow:
    id_hash: str
    user_id: int
    csrf: str
    created_at: float
    last_seen: float


@dataclass(frozen=True)
class PersonalKey:
    id: int
    user_id: int
    label: str
    scopes: frozenset[Permission]
    project_id: int | None
    expires_at: float | None
    created_at: float
    mask: str  # "phx_abcd…": enough to recognise a key in a list, useless to an attacker

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "scopes": sorted(s.value for s in self.scopes),
            "project_id": self.project_id,
            "expires_at": self.expires_at,
            "created_at": self.created_at,
            "mask": self.mask,
        }


def parse_role(text: str, field: str = "role") -> Role:
    try:
        return Role(text)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise InvalidInput(f"unknown role {text!r} (one of {roles})", field=field) from None


def parse_scopes(names: Iterable[str], field: str = "scopes") -> frozenset[Permission]:
    out: set[Permission] = set()
    for name in names:
        try:
            out.add(Permission(name))
        except ValueError:
            known = ", ".join(p.value for p in Permission)
            raise InvalidInput(f"unknown scope {name!r} (one of {known})", field=field) from None
    if not out:
        raise InvalidInput("a personal API key needs at least one scope", field=field)
    return frozenset(out)


def _email(text: str) -> str:
    email = text.strip()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or len(email) > 254 or " " in email:
        raise InvalidInput(f"not an email address: {text[:80]!r}", field="email")
    return email


class AccountStore:
    """Thread-safe (one connection guarded by a lock; account traffic is tiny)."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.RLock()
        self._db = open_store_db(path, _SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _q(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _x(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        with self._lock:
            return int(self._db.execute(sql, args).lastrowid or 0)

    # --- organisations and projects ----------------------------------------------------------
    def create_org(self, name: str) -> int:
        if not name.strip():
            raise InvalidInput("organisation name must not be empty", field="name")
        return self._x(
            "INSERT INTO organizations (name, created_at) VALUES (?, ?)", (name, self.clock())
        )

    def ensure_default_org(self) -> int:
        with self._lock:
            if not self._q("SELECT 1 FROM organizations WHERE id = ?", (DEFAULT_ORG,)):
                self._x(
                    "INSERT INTO organizations (id, name, created_at) VALUES (?, ?, ?)",
                    (DEFAULT_ORG, "Default", self.clock()),
                )
        return DEFAULT_ORG

    def org_name(self, org_id: int) -> str:
        rows = self._q("SELECT name FROM organizations WHERE id = ?", (org_id,))
        if not rows:
            raise NotFound(f"organisation {org_id} not found")
        return str(rows[0][0])

    def assign_project(self, project_id: int, org_id: int) -> None:
        self.org_name(org_id)
        self._x("INSERT OR REPLACE INTO project_orgs VALUES (?, ?)", (project_id, org_id))

    def org_of_project(self, project_id: int) -> int:
        """The owning organisation; a project no organisation claims (made before accounts, or
        by `project create` without --org) belongs to the default one."""
        rows = self._q("SELECT org_id FROM project_orgs WHERE project_id = ?", (project_id,))
        return int(rows[0][0]) if rows else DEFAULT_ORG

    # --- users and memberships ---------------------------------------------------------------
    def create_user(self, email: str, password: str) -> User:
        email = _email(email)
        if self.user_by_email(email) is not None:
            raise InvalidInput(f"a user with email {email!r} exists already", field="email")
        pw_hash = passwords.hash_password(password)
        uid = self._x(
            "INSERT INTO users (email, password_hash, created_at) VALUES (?, ?, ?)",
            (email, pw_hash, self.clock()),
        )
        return User(uid, email, pw_hash)

    def user_by_email(self, email: str) -> User | None:
        rows = self._q(
            "SELECT id, email, password_hash FROM users WHERE email = ?", (email.strip(),)
        )
        return User(*rows[0]) if rows else None

    def user(self, user_id: int) -> User:
        rows = self._q("SELECT id, email, password_hash FROM users WHERE id = ?", (user_id,))
        if not rows:
            raise NotFound(f"user {user_id} not found")
        return User(*rows[0])

    def set_password(self, user_id: int, password: str) -> None:
        """New hash; every session of the user ends (ASVS 3.3.3: a password change logs out)."""
        pw_hash = passwords.hash_password(password)
        with self._lock:
            self._x("UPDATE users SET password_hash = ? WHERE id = ?", (pw_hash, user_id))
            self._x("DELETE FROM sessions WHERE user_id = ?", (user_id,))

    def rehash(self, user_id: int, password: str) -> None:
        """Store a hash with the current parameters (after a login that proved `password`)."""
        pw_hash = passwords.hash_password(password)
        self._x("UPDATE users SET password_hash = ? WHERE id = ?", (pw_hash, user_id))

    def set_membership(
        self, user_id: int, org_id: int, role: Role, projects: Iterable[int] | None = None
    ) -> None:
        self.org_name(org_id)
        listed = None if projects is None else orjson.dumps(sorted(set(projects))).decode()
        self._x(
            "INSERT OR REPLACE INTO memberships VALUES (?, ?, ?, ?)",
            (user_id, org_id, role.value, listed),
        )

    def remove_membership(self, user_id: int, org_id: int) -> None:
        self._x("DELETE FROM memberships WHERE user_id = ? AND org_id = ?", (user_id, org_id))

    def memberships(self, user_id: int) -> dict[int, Membership]:
        rows = self._q(
            "SELECT org_id, role, projects FROM memberships WHERE user_id = ?", (user_id,)
        )
        return {
            int(org): Membership(
                int(org), Role(role), None if p is None else frozenset(orjson.loads(p))
            )
            for org, role, p in rows
        }

    def members(self, org_id: int) -> list[dict[str, Any]]:
        rows = self._q(
            "SELECT u.id, u.email, m.role, m.projects FROM memberships m JOIN users u"
            " ON u.id = m.user_id WHERE m.org_id = ? ORDER BY u.id",
            (org_id,),
        )
        return [
            {
                "user_id": uid,
                "email": email,
                "role": role,
                "projects": None if p is None else orjson.loads(p),
            }
            for uid, email, role, p in rows
        ]

    # --- sessions ----------------------------------------------------------------------------
    def create_session(self, user_id: int) -> tuple[str, SessionRow]:
        """A fresh session (the secret is returned once; only its hash is kept)."""
        secret, now = secrets.token_urlsafe(32), self.clock()
        row = SessionRow(_digest(secret), user_id, secrets.token_urlsafe(32), now, now)
        self._x("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)", (*vars(row).values(),))
        return secret, row

    def session(self, secret: str, idle: float, max_age: float) -> SessionRow | None:
        """The live session for `secret`; an expired one is deleted and None returned."""
        id_hash, now = _digest(secret), self.clock()
        rows = self._q("SELECT * FROM sessions WHERE id_hash = ?", (id_hash,))
        if not rows:
            return None
        row = SessionRow(*rows[0])
        if now - row.last_seen > idle or now - row.created_at > max_age:
            self.end_session(id_hash)
            return None
        if now - row.last_seen > 1.0:  # one write a second at most per session
            self._x("UPDATE sessions SET last_seen = ? WHERE id_hash = ?", (now, id_hash))
        return row

    def end_session(self, id_hash: str) -> None:
        self._x("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))

    # --- personal API keys -------------------------------------------------------------------
    def create_key(
        self,
        user_id: int,
        label: str,
        scopes: frozenset[Permission],
        project_id: int | None = None,
        expires_at: float | None = None,
    ) -> tuple[str, PersonalKey]:
        if not label.strip() or len(label) > 200:
            raise InvalidInput("key label must be 1-200 characters", field="label")
        key, now = new_api_key(), self.clock()
        mask = key[:8] + "…"
        scope_text = " ".join(sorted(s.value for s in scopes))
        kid = self._x(
            "INSERT INTO personal_keys (key_hash, user_id, label, scopes, project_id,"
            " expires_at, created_at, mask) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (hash_api_key(key), user_id, label, scope_text, project_id, expires_at, now, mask),
        )
        return key, PersonalKey(kid, user_id, label, scopes, project_id, expires_at, now, mask)

    _KEY_COLS = "id, user_id, label, scopes, project_id, expires_at, created_at, mask"

    def _key(self, row: tuple[Any, ...]) -> PersonalKey:
        kid, uid, label, scopes, pid, exp, created, mask = row
        return PersonalKey(kid, uid, label, parse_scopes(scopes.split()), pid, exp, created, mask)

    def key_by_secret(self, key: str) -> PersonalKey | None:
        """The unexpired personal key `key` (looked up by its hash), or None."""
        rows = self._q(
            f"SELECT {self._KEY_COLS} FROM personal_keys WHERE key_hash = ?", (hash_api_key(key),)
        )
        if not rows:
            return None
        found = self._key(rows[0])
        if found.expires_at is not None and found.expires_at <= self.clock():
            return None
        return found

    def keys_of(self, user_id: int) -> list[PersonalKey]:
        rows = self._q(
            f"SELECT {self._KEY_COLS} FROM personal_keys WHERE user_id = ? ORDER BY id", (user_id,)
        )
        return [self._key(r) for r in rows]

    def delete_key(self, user_id: int, key_id: int) -> None:
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM personal_keys WHERE id = ? AND user_id = ?", (key_id, user_id)
            )
            if cur.rowcount == 0:
                raise NotFound(f"personal API key {key_id} not found")

    # --- one-time links: invites and password resets -----------------------------------------
    def create_token(
        self,
        kind: str,
        email: str,
        ttl: float,
        org_id: int | None = None,
        role: Role | None = None,
        created_by: int | None = None,
    ) -> str:
        token = secrets.token_urlsafe(32)
        self._x(
            "INSERT INTO one_time_tokens VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
            (
                _digest(token),
                kind,
                _email(email),
                org_id,
                None if role is None else role.value,
                self.clock() + ttl,
                created_by,
            ),
        )
        return token

    def use_token(self, kind: str, token: str) -> tuple[str, int | None, Role | None]:
        """Consume a one-time token: (email, org_id, role). NotFound when it is unknown, used
        or expired (one answer for all three: the link simply does not work any more)."""
        with self._lock:
            rows = self._q(
                "SELECT email, org_id, role, expires_at, used_at FROM one_time_tokens"
                " WHERE token_hash = ? AND kind = ?",
                (_digest(token), kind),
            )
            if not rows or rows[0][4] is not None or rows[0][3] <= self.clock():
                raise NotFound(f"this {kind} link is unknown, used or expired", field="token")
            self._x(
                "UPDATE one_time_tokens SET used_at = ? WHERE token_hash = ?",
                (self.clock(), _digest(token)),
            )
        email, org_id, role, _, _ = rows[0]
        return email, org_id, None if role is None else Role(role)

    # --- audit log ---------------------------------------------------------------------------
    def audit(
        self,
        action: str,
        *,
        org_id: int | None = None,
        user_id: int | None = None,
        target: str | None = None,
        address: str | None = None,
        **detail: Any,
    ) -> None:
        self._x(
            "INSERT INTO audit_log (at, org_id, user_id, action, target, address, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self.clock(), org_id, user_id, action, target, address, orjson.dumps(detail).decode()),
        )

    def audit_entries(self, org_id: int, limit: int = 200) -> list[dict[str, Any]]:
        """The organisation's entries, and the account entries (logins, password changes) of
        its members, newest first."""
        rows = self._q(
            "SELECT a.id, a.at, a.org_id, a.user_id, u.email, a.action, a.target, a.address,"
            " a.detail FROM audit_log a LEFT JOIN users u ON u.id = a.user_id"
            " WHERE a.org_id = ? OR (a.org_id IS NULL AND a.user_id IN"
            " (SELECT user_id FROM memberships WHERE org_id = ?)) ORDER BY a.id DESC LIMIT ?",
            (org_id, org_id, limit),
        )
        keys = ("id", "at", "org_id", "user_id", "email", "action", "target", "address")
        return [{**dict(zip(keys, r[:8], strict=True)), "detail": orjson.loads(r[8])} for r in rows]

"""Project metadata (name, timezone, token, API-key hash) behind a small interface.

`MetadataStore` is the seam a server database (e.g. PostgreSQL) can later implement;
`SqliteMetadataStore` is the embedded default.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from eventlens.auth.keys import hash_api_key, new_api_key, new_project_token
from eventlens.errors import InvalidInput, NotFound
from eventlens.sqlite_db import open_store_db


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    token: str
    timezone: str
    week_start: int  # 0 = Sunday (PostHog's default), 1 = Monday
    created_at: float
    # PostHog's team.test_account_filters: property filters ANDed into a query that sets
    # filterTestAccounts: true (validated by the query model before they are stored).
    test_account_filters: list[Any] = field(default_factory=list)
    # PostHog's team.path_cleaning_filters: [{alias, regex}] rules a paths query with
    # pathReplacements: true applies before its own (validated by the query model first).
    path_cleaning_filters: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class CreatedProject:
    project: Project
    api_key: str  # shown once; only its hash is stored


class MetadataStore(Protocol):
    def create_project(
        self, name: str, timezone: str = "UTC", week_start: int = 0
    ) -> CreatedProject: ...
    def get_project(self, project_id: int) -> Project: ...
    def list_projects(self) -> list[Project]: ...
    def project_by_token(self, token: str) -> Project | None: ...
    def projects_for_api_key(self, api_key: str) -> list[Project]: ...
    def set_test_account_filters(self, project_id: int, filters: list[Any]) -> Project: ...
    def set_path_cleaning_filters(self, project_id: int, filters: list[Any]) -> Project: ...
    def rotate_api_key(self, project_id: int) -> str: ...


def validate_timezone(tz: str) -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(
            f"unknown timezone {tz!r} (use an IANA name like 'Europe/Berlin')", field="timezone"
        ) from exc
    return tz


_SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    token TEXT NOT NULL UNIQUE,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    week_start INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    test_account_filters TEXT NOT NULL DEFAULT '[]',
    path_cleaning_filters TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT NOT NULL,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    created_at REAL NOT NULL,
    PRIMARY KEY (key_hash, project_id)
);
"""


_COLUMNS = (
    "id, name, token, timezone, week_start, created_at, test_account_filters, path_cleaning_filters"
)


class SqliteMetadataStore:
    """Thread-safe (one connection guarded by a lock; metadata traffic is tiny)."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_store_db(path, _SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(projects)")}
        if "test_account_filters" not in columns:  # a store created before the column existed
            self._db.execute(
                "ALTER TABLE projects ADD COLUMN test_account_filters TEXT NOT NULL DEFAULT '[]'"
            )
        if "path_cleaning_filters" not in columns:
            self._db.execute(
                "ALTER TABLE projects ADD COLUMN path_cleaning_filters TEXT NOT NULL DEFAULT '[]'"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create_project(
        self, name: str, timezone: str = "UTC", week_start: int = 0
    ) -> CreatedProject:
        if not name.strip():
            raise InvalidInput("project name must not be empty", field="name")
        if week_start not in (0, 1):
            raise InvalidInput("week_start must be 0 (Sunday) or 1 (Monday)", field="week_start")
        validate_timezone(timezone)
        token, api_key, now = new_project_token(), new_api_key(), time.time()
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO projects (name, token, timezone, week_start, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, token, timezone, week_start, now),
            )
            project_id = int(cur.lastrowid or 0)
            self._db.execute(
                "INSERT INTO api_keys (key_hash, project_id, created_at) VALUES (?, ?, ?)",
                (hash_api_key(api_key), project_id, now),
            )
        return CreatedProject(Project(project_id, name, token, timezone, week_start, now), api_key)

    def set_test_account_filters(self, project_id: int, filters: list[Any]) -> Project:
        """Replace the project's test-account filters (a JSON list; the caller validates it)."""
        self.get_project(project_id)
        with self._lock:
            self._db.execute(
                "UPDATE projects SET test_account_filters = ? WHERE id = ?",
                (orjson.dumps(filters).decode(), project_id),
            )
        return self.get_project(project_id)

    def set_path_cleaning_filters(self, project_id: int, filters: list[Any]) -> Project:
        """Replace the project's path cleaning rules (a JSON list; the caller validates it)."""
        self.get_project(project_id)
        with self._lock:
            self._db.execute(
                "UPDATE projects SET path_cleaning_filters = ? WHERE id = ?",
                (orjson.dumps(filters).decode(), project_id),
            )
        return self.get_project(project_id)

    def grant(self, api_key: str, project_id: int) -> None:
        """Let an existing key also read `project_id` (a key may read several projects)."""
        self.get_project(project_id)
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO api_keys (key_hash, project_id, created_at) VALUES (?,?,?)",
                (hash_api_key(api_key), project_id, time.time()),
            )

    def rotate_api_key(self, project_id: int) -> str:
        """A new secret key for the project; every old key loses this project at once."""
        self.get_project(project_id)
        api_key = new_api_key()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM api_keys WHERE project_id = ?", (project_id,))
            self._db.execute(
                "INSERT INTO api_keys (key_hash, project_id, created_at) VALUES (?, ?, ?)",
                (hash_api_key(api_key), project_id, time.time()),
            )
            self._db.execute("COMMIT")
        return api_key

    def get_project(self, project_id: int) -> Project:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM projects WHERE id = ?",
                (project_id,),
            ).fetchone()
        if row is None:
            raise NotFound(f"project {project_id} does not exist")
        return _project(row)

    def list_projects(self) -> list[Project]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM projects ORDER BY id").fetchall()
        return [_project(r) for r in rows]

    def project_by_token(self, token: str) -> Project | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM projects WHERE token = ?",
                (token,),
            ).fetchone()
        return None if row is None else _project(row)

    def projects_for_api_key(self, api_key: str) -> list[Project]:
        with self._lock:
            rows = self._db.execute(
                "SELECT p.id, p.name, p.token, p.timezone, p.week_start, p.created_at,"
                " p.test_account_filters, p.path_cleaning_filters"
                " FROM projects p JOIN api_keys k ON k.project_id = p.id"
                " WHERE k.key_hash = ? ORDER BY p.id",
                (hash_api_key(api_key),),
            ).fetchall()
        return [_project(r) for r in rows]


def _project(row: tuple[Any, ...]) -> Project:
    project_id, name, token, timezone, week_start, created_at, filters, cleaning = row
    return Project(
        project_id,
        name,
        token,
        timezone,
        week_start,
        created_at,
        orjson.loads(filters),
        orjson.loads(cleaning),
    )

"""Cohorts in the metadata database (`settings.meta_db`): a name, a description, and either a
dynamic definition (PostHog's cohort filters JSON, validated by the query model before it is
stored) or, for a static cohort, its member person ids.

Like the dashboard tables, these are created here with CREATE TABLE IF NOT EXISTS: a new,
additive table that an older release never reads, so the data format (storage/format.py) does
not change and no migration step is needed. Every method takes the project id; another
project's cohort is reported missing (NotFound), never returned.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from eventlens.errors import NotFound
from eventlens.sqlite_db import open_store_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cohorts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    is_static INTEGER NOT NULL,
    filters TEXT,                    -- JSON {"properties": group}; NULL for a static cohort
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS cohorts_project ON cohorts (project_id);
CREATE TABLE IF NOT EXISTS cohort_members (
    cohort_id INTEGER NOT NULL,
    person_id TEXT NOT NULL,
    PRIMARY KEY (cohort_id, person_id)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class CohortRecord:
    id: int
    project_id: int
    name: str
    description: str
    is_static: bool
    filters: dict[str, Any] | None
    created_at: float
    updated_at: float
    version: int  # bumped by every change (definition, members, name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "is_static": self.is_static,
            "filters": self.filters,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "version": self.version,
        }


_COLUMNS = "id, project_id, name, description, is_static, filters, created_at, updated_at, version"


def _record(row: Any) -> CohortRecord:
    return CohortRecord(
        id=int(row[0]),
        project_id=int(row[1]),
        name=row[2],
        description=row[3],
        is_static=bool(row[4]),
        filters=None if row[5] is None else orjson.loads(row[5]),
        created_at=row[6],
        updated_at=row[7],
        version=int(row[8]),
    )


class CohortStore:
    """Thread-safe (one connection guarded by a lock, as the dashboard store)."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_store_db(path, _SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create(
        self,
        project_id: int,
        name: str,
        description: str,
        filters: dict[str, Any] | None,
        members: Iterable[str] = (),
    ) -> CohortRecord:
        """A new cohort: dynamic with `filters`, static (filters None) with `members`."""
        now = time.time()
        payload = None if filters is None else orjson.dumps(filters).decode()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(
                    "INSERT INTO cohorts (project_id, name, description, is_static, filters,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (project_id, name, description, filters is None, payload, now, now),
                )
                cohort_id = int(cur.lastrowid or 0)
                self._db.executemany(
                    "INSERT OR IGNORE INTO cohort_members VALUES (?, ?)",
                    ((cohort_id, p) for p in members),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.get(project_id, cohort_id)

    def list_for(self, project_id: int) -> list[CohortRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM cohorts WHERE project_id = ? ORDER BY id", (project_id,)
            ).fetchall()
        return [_record(r) for r in rows]

    def get(self, project_id: int, cohort_id: int) -> CohortRecord:
        """The cohort; NotFound (field cohort_id) if it is not this project's."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM cohorts WHERE project_id = ? AND id = ?",
                (project_id, cohort_id),
            ).fetchone()
        if row is None:
            raise NotFound(f"cohort {cohort_id} not found", field="cohort_id")
        return _record(row)

    def find(self, project_id: int, cohort_id: int) -> CohortRecord | None:
        try:
            return self.get(project_id, cohort_id)
        except NotFound:
            return None

    def members(self, cohort_id: int) -> list[str]:
        """A static cohort's person ids, sorted."""
        with self._lock:
            rows = self._db.execute(
                "SELECT person_id FROM cohort_members WHERE cohort_id = ? ORDER BY person_id",
                (cohort_id,),
            ).fetchall()
        return [r[0] for r in rows]

    def update(
        self,
        record: CohortRecord,
        *,
        name: str | None = None,
        description: str | None = None,
        filters: dict[str, Any] | None = None,
        members: Iterable[str] | None = None,
        add_members: Iterable[str] = (),
    ) -> CohortRecord:
        """Change what is given; `members` replaces a static cohort's members, `add_members`
        adds to them. Every change bumps the version."""
        payload = None if filters is None else orjson.dumps(filters).decode()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "UPDATE cohorts SET name = coalesce(?, name),"
                    " description = coalesce(?, description), filters = coalesce(?, filters),"
                    " updated_at = ?, version = version + 1 WHERE project_id = ? AND id = ?",
                    (name, description, payload, time.time(), record.project_id, record.id),
                )
                if members is not None:
                    self._db.execute("DELETE FROM cohort_members WHERE cohort_id = ?", (record.id,))
                    add_members = [*members, *add_members]
                self._db.executemany(
                    "INSERT OR IGNORE INTO cohort_members VALUES (?, ?)",
                    ((record.id, p) for p in add_members),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.get(record.project_id, record.id)

    def delete(self, project_id: int, cohort_id: int) -> None:
        record = self.get(project_id, cohort_id)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM cohort_members WHERE cohort_id = ?", (record.id,))
            self._db.execute("DELETE FROM cohorts WHERE id = ?", (record.id,))
            self._db.execute("COMMIT")

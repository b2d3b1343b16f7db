"""Saved insights and dashboards in the metadata database (`settings.meta_db`).

A saved insight is a name and a query (the JSON the query API takes); a dashboard is a name and
an ordered list of saved insight ids. Everything belongs to one project: every method takes the
project id and a row of another project is reported as missing (NotFound), never returned.

The tables live next to the projects' tables but are created here (CREATE TABLE IF NOT EXISTS),
so the project store does not need to know about them.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from eventlens.errors import InvalidInput, NotFound

_SCHEMA = """
CREATE TABLE IF NOT EXISTS saved_insights (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    query TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS saved_insights_project ON saved_insights (project_id);
CREATE TABLE IF NOT EXISTS dashboards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    insight_ids TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dashboards_project ON dashboards (project_id);
"""

MAX_NAME = 200


@dataclass(frozen=True)
class SavedInsight:
    id: int
    project_id: int
    name: str
    query: dict[str, Any]
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "query": self.query,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class Dashboard:
    id: int
    project_id: int
    name: str
    insight_ids: list[int]
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "insight_ids": self.insight_ids,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def clean_name(name: str) -> str:
    """The name stripped; InvalidInput (field "name") if empty or longer than MAX_NAME."""
    name = name.strip()
    if not name:
        raise InvalidInput("name must not be empty", field="name")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"name is longer than {MAX_NAME} characters", field="name")
    return name


class DashboardStore:
    """Thread-safe (one connection guarded by a lock, as the project store)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- saved insights ------------------------------------------------------------------

    def create_insight(self, project_id: int, name: str, query: dict[str, Any]) -> SavedInsight:
        """Save `query` (already validated by the caller) under `name`."""
        name, now = clean_name(name), time.time()
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO saved_insights (project_id, name, query, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (project_id, name, orjson.dumps(query).decode(), now, now),
            )
        return SavedInsight(int(cur.lastrowid or 0), project_id, name, query, now, now)

    def list_insights(self, project_id: int) -> list[SavedInsight]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, project_id, name, query, created_at, updated_at FROM saved_insights"
                " WHERE project_id = ? ORDER BY id",
                (project_id,),
            ).fetchall()
        return [_insight(r) for r in rows]

    def get_insight(self, project_id: int, insight_id: int) -> SavedInsight:
        """The insight; NotFound if absent or of another project."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, project_id, name, query, created_at, updated_at FROM saved_insights"
                " WHERE project_id = ? AND id = ?",
                (project_id, insight_id),
            ).fetchone()
        if row is None:
            raise NotFound(f"insight {insight_id} not found", field="insight_id")
        return _insight(row)

    def update_insight(
        self,
        project_id: int,
        insight_id: int,
        *,
        name: str | None = None,
        query: dict[str, Any] | None = None,
    ) -> SavedInsight:
        """Change the name and/or query; NotFound as get_insight."""
        old = self.get_insight(project_id, insight_id)
        new_name = old.name if name is None else clean_name(name)
        new_query = old.query if query is None else query
        now = time.time()
        with self._lock:
            self._db.execute(
                "UPDATE saved_insights SET name = ?, query = ?, updated_at = ?"
                " WHERE project_id = ? AND id = ?",
                (new_name, orjson.dumps(new_query).decode(), now, project_id, insight_id),
            )
        return SavedInsight(insight_id, project_id, new_name, new_query, old.created_at, now)

    def delete_insight(self, project_id: int, insight_id: int) -> None:
        """Delete it and remove it from the project's dashboards; NotFound as get_insight."""
        self.get_insight(project_id, insight_id)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "DELETE FROM saved_insights WHERE project_id = ? AND id = ?",
                    (project_id, insight_id),
                )
                rows = self._db.execute(
                    "SELECT id, insight_ids FROM dashboards WHERE project_id = ?", (project_id,)
                ).fetchall()
                for dash_id, ids_text in rows:
                    ids = [i for i in orjson.loads(ids_text) if i != insight_id]
                    self._db.execute(
                        "UPDATE dashboards SET insight_ids = ? WHERE id = ?",
                        (orjson.dumps(ids).decode(), dash_id),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # -- dashboards ----------------------------------------------------------------------

    def _check_insights(self, project_id: int, insight_ids: list[int]) -> None:
        known = {i.id for i in self.list_insights(project_id)}
        for n, iid in enumerate(insight_ids):
            if iid not in known:
                raise InvalidInput(
                    f"insight {iid} not found in this project", field=f"insight_ids[{n}]"
                )
        if len(set(insight_ids)) != len(insight_ids):
            raise InvalidInput("an insight appears twice on the dashboard", field="insight_ids")

    def create_dashboard(
        self, project_id: int, name: str, insight_ids: list[int] | None = None
    ) -> Dashboard:
        """A new dashboard; InvalidInput if an insight id is not one of the project's."""
        name, ids, now = clean_name(name), list(insight_ids or []), time.time()
        self._check_insights(project_id, ids)
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO dashboards (project_id, name, insight_ids, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (project_id, name, orjson.dumps(ids).decode(), now, now),
            )
        return Dashboard(int(cur.lastrowid or 0), project_id, name, ids, now, now)

    def list_dashboards(self, project_id: int) -> list[Dashboard]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, project_id, name, insight_ids, created_at, updated_at FROM dashboards"
                " WHERE project_id = ? ORDER BY id",
                (project_id,),
            ).fetchall()
        return [_dashboard(r) for r in rows]

    def get_dashboard(self, project_id: int, dashboard_id: int) -> Dashboard:
        """The dashboard; NotFound if absent or of another project."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, project_id, name, insight_ids, created_at, updated_at FROM dashboards"
                " WHERE project_id = ? AND id = ?",
                (project_id, dashboard_id),
            ).fetchone()
        if row is None:
            raise NotFound(f"dashboard {dashboard_id} not found", field="dashboard_id")
        return _dashboard(row)

    def update_dashboard(
        self,
        project_id: int,
        dashboard_id: int,
        *,
        name: str | None = None,
        insight_ids: list[int] | None = None,
    ) -> Dashboard:
        """Rename and/or replace the tile list (in order); errors as create and get."""
        old = self.get_dashboard(project_id, dashboard_id)
        new_name = old.name if name is None else clean_name(name)
        ids = old.insight_ids if insight_ids is None else list(insight_ids)
        self._check_insights(project_id, ids)
        now = time.time()
        with self._lock:
            self._db.execute(
                "UPDATE dashboards SET name = ?, insight_ids = ?, updated_at = ?"
                " WHERE project_id = ? AND id = ?",
                (new_name, orjson.dumps(ids).decode(), now, project_id, dashboard_id),
            )
        return Dashboard(dashboard_id, project_id, new_name, ids, old.created_at, now)

    def delete_dashboard(self, project_id: int, dashboard_id: int) -> None:
        """Delete the dashboard (its insights stay saved); NotFound as get_dashboard."""
        self.get_dashboard(project_id, dashboard_id)
        with self._lock:
            self._db.execute(
                "DELETE FROM dashboards WHERE project_id = ? AND id = ?",
                (project_id, dashboard_id),
            )


def _insight(row: tuple[Any, ...]) -> SavedInsight:
    return SavedInsight(int(row[0]), int(row[1]), row[2], orjson.loads(row[3]), row[4], row[5])


def _dashboard(row: tuple[Any, ...]) -> Dashboard:
    return Dashboard(int(row[0]), int(row[1]), row[2], orjson.loads(row[3]), row[4], row[5])

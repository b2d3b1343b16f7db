"""Saved insights and dashboards in the metadata database (`settings.meta_db`).

A saved insight is a name and a query (the JSON the query API takes); a dashboard is a name and
an ordered list of saved insight ids. Everything belongs to one project: every method takes the
project id and a row of another project is reported as missing (NotFound), never returned.

The tables live next to the projects' tables but are created here (CREATE TABLE IF NOT EXISTS),
so the project store does not need to know about them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from eventlens.errors import InvalidInput, NotFound
from eventlens.sqlite_db import open_store_db

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
# A tile spans 1 or 2 grid columns (w) and 1 or 2 heights (h).
TILE_SIZES = (1, 2)


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
    # Tile sizes by insight id (as a string, JSON's object keys): {"7": {"w": 2, "h": 1}}; a
    # tile without an entry is 1 x 1.
    layouts: dict[str, dict[str, int]] = field(default_factory=dict)
    # The dashboard filters every tile is run with (PostHog's DashboardFilter, sent as the
    # query's `filters_override`); validated by the API before they are stored. {} = none.
    filters: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "insight_ids": self.insight_ids,
            "layouts": self.layouts,
            "filters": self.filters,
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
        self._lock = threading.Lock()
        self._db = open_store_db(path, _SCHEMA)
        # Tile sizes came later: add the column to a meta.db made before it.
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(dashboards)")}
        if "layouts" not in columns:
            self._db.execute("ALTER TABLE dashboards ADD COLUMN layouts TEXT NOT NULL DEFAULT '{}'")
        # So did the saved dashboard filters.
        if "filters" not in columns:
            self._db.execute("ALTER TABLE dashboards ADD COLUMN filters TEXT NOT NULL DEFAULT '{}'")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- saved insights ------------------------------------------------------------------

    def create_insight(self, project_id: int, name: str, query: dict[str, Any]) -> SavedInsight:
        """Save `query` (already validated by the caller) under `name`."""
        out: SavedInsight = self._insert(_INSIGHTS, project_id, clean_name(name), query)
        return out

    def list_insights(self, project_id: int) -> list[SavedInsight]:
        return self._select(_INSIGHTS, project_id)

    def get_insight(self, project_id: int, insight_id: int) -> SavedInsight:
        """The insight; NotFound if absent or of another project."""
        out: SavedInsight = self._get(_INSIGHTS, project_id, insight_id)
        return out

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
        out: SavedInsight = self._update(_INSIGHTS, old, new_name, new_query)
        return out

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
        name, ids = clean_name(name), list(insight_ids or [])
        self._check_insights(project_id, ids)
        out: Dashboard = self._insert(_DASHBOARDS, project_id, name, ids)
        return out

    def list_dashboards(self, project_id: int) -> list[Dashboard]:
        return self._with_layouts(project_id, self._select(_DASHBOARDS, project_id))

    def get_dashboard(self, project_id: int, dashboard_id: int) -> Dashboard:
        """The dashboard; NotFound if absent or of another project."""
        found: Dashboard = self._get(_DASHBOARDS, project_id, dashboard_id)
        return self._with_layouts(project_id, [found])[0]

    def _with_layouts(self, project_id: int, dashes: list[Dashboard]) -> list[Dashboard]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, layouts, filters FROM dashboards WHERE project_id = ?", (project_id,)
            ).fetchall()
        stored = {int(r[0]): orjson.loads(r[1]) for r in rows}
        filters = {int(r[0]): orjson.loads(r[2]) for r in rows}
        # Only the tiles still on the dashboard (an insight deleted since keeps no size).
        return [
            replace(
                d,
                layouts={k: v for k, v in stored.get(d.id, {}).items() if int(k) in d.insight_ids},
                filters=filters.get(d.id, {}),
            )
            for d in dashes
        ]

    def update_dashboard(
        self,
        project_id: int,
        dashboard_id: int,
        *,
        name: str | None = None,
        insight_ids: list[int] | None = None,
        layouts: dict[str, dict[str, int]] | None = None,
        filters: dict[str, Any] | None = None,
    ) -> Dashboard:
        """Rename, replace the tile list (in order), the tile sizes (`layouts`, replacing
        the stored ones: keys are ids of the dashboard's tiles, values {"w", "h"} each 1 or 2)
        and/or the dashboard filters (`filters`, replacing them; the caller validates them,
        {} clears them); InvalidInput naming the field for a size or a tile that is not right;
        errors as create and get."""
        old = self.get_dashboard(project_id, dashboard_id)
        new_name = old.name if name is None else clean_name(name)
        ids = old.insight_ids if insight_ids is None else list(insight_ids)
        self._check_insights(project_id, ids)
        sizes = {k: v for k, v in old.layouts.items() if int(k) in ids}
        if layouts is not None:
            sizes = self._check_layouts(ids, layouts)
        new_filters = old.filters if filters is None else dict(filters)
        updated: Dashboard = self._update(_DASHBOARDS, old, new_name, ids)
        with self._lock:
            self._db.execute(
                "UPDATE dashboards SET layouts = ?, filters = ? WHERE project_id = ? AND id = ?",
                (
                    orjson.dumps(sizes).decode(),
                    orjson.dumps(new_filters).decode(),
                    project_id,
                    dashboard_id,
                ),
            )
        return replace(updated, layouts=sizes, filters=new_filters)

    @staticmethod
    def _check_layouts(
        ids: list[int], layouts: dict[str, dict[str, int]]
    ) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for key, size in layouts.items():
            if not key.isdigit() or int(key) not in ids:
                raise InvalidInput(
                    f"layouts: {key} is not a tile of this dashboard", field=f"layouts.{key}"
                )
            for dim in ("w", "h"):
                if size.get(dim, 1) not in TILE_SIZES:
                    raise InvalidInput(
                        f"layouts.{key}.{dim}: must be 1 or 2", field=f"layouts.{key}.{dim}"
                    )
            out[str(int(key))] = {"w": size.get("w", 1), "h": size.get("h", 1)}
        return out

    def delete_dashboard(self, project_id: int, dashboard_id: int) -> None:
        """Delete the dashboard (its insights stay saved); NotFound as get_dashboard."""
        self.get_dashboard(project_id, dashboard_id)
        with self._lock:
            self._db.execute(
                "DELETE FROM dashboards WHERE project_id = ? AND id = ?",
                (project_id, dashboard_id),
            )

    # -- the rows both kinds share: (id, project_id, name, JSON payload, created, updated) --

    def _insert(self, t: _Table, project_id: int, name: str, payload: Any) -> Any:
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                f"INSERT INTO {t.table} (project_id, name, {t.payload}, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (project_id, name, orjson.dumps(payload).decode(), now, now),
            )
        return t.make(int(cur.lastrowid or 0), project_id, name, payload, now, now)

    def _select(self, t: _Table, project_id: int, item_id: int | None = None) -> list[Any]:
        sql = (
            f"SELECT id, project_id, name, {t.payload}, created_at, updated_at FROM {t.table}"
            " WHERE project_id = ?"
        )
        params: tuple[int, ...] = (project_id,)
        if item_id is not None:
            sql, params = sql + " AND id = ?", (project_id, item_id)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id", params).fetchall()
        return [t.make(int(r[0]), int(r[1]), r[2], orjson.loads(r[3]), r[4], r[5]) for r in rows]

    def _get(self, t: _Table, project_id: int, item_id: int) -> Any:
        found = self._select(t, project_id, item_id)
        if not found:
            raise NotFound(f"{t.noun} {item_id} not found", field=f"{t.noun}_id")
        return found[0]

    def _update(self, t: _Table, old: Any, name: str, payload: Any) -> Any:
        now = time.time()
        with self._lock:
            self._db.execute(
                f"UPDATE {t.table} SET name = ?, {t.payload} = ?, updated_at = ?"
                " WHERE project_id = ? AND id = ?",
                (name, orjson.dumps(payload).decode(), now, old.project_id, old.id),
            )
        return t.make(old.id, old.project_id, name, payload, old.created_at, now)


@dataclass(frozen=True)
class _Table:
    """Where one kind of saved object lives (constants, never user input)."""

    table: str
    payload: str  # the JSON column
    noun: str  # in errors: "insight 7 not found", field "insight_id"
    make: Callable[..., Any]


_INSIGHTS = _Table("saved_insights", "query", "insight", SavedInsight)
_DASHBOARDS = _Table("dashboards", "insight_ids", "dashboard", Dashboard)

"""GET /api/projects/{id}/events/live: the newest events of a project, for the live view.

Reads the latest event-table snapshot, so an event shows once the consumer has committed it
(every `commit_interval`, 0.5 s by default): the page polls this every 1.5 s.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Annotated, Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Depends, Query
from starlette.requests import Request

from eventlens.accounts.policy import Permission
from eventlens.storage import tables
from eventlens.storage.event_table import DataFile, Snapshot
from eventlens.web.api.schemas import ERROR_RESPONSES, ProjectId
from eventlens.web.auth import ProjectAccess, project_permission
from eventlens.web.deps import settings_of

router = APIRouter(prefix="/api/projects/{project_id}", tags=["dashboards"])

_CACHE_SIZE = 32
_cache: OrderedDict[tuple[str, int, int, int], dict[str, Any]] = OrderedDict()
_cache_lock = threading.Lock()
_COLUMNS = ["uuid", "event", "distinct_id", "person_id", "timestamp", "properties"]


def newest_events(snap: Snapshot, limit: int) -> pa.Table:
    """The `limit` newest rows of the snapshot, newest first.

    Files are read newest-first (by max timestamp) until no unread file can hold an event newer
    than the limit-th newest seen so far, so a large table costs a few small files.
    """
    ordered = sorted(snap.files, key=lambda f: (f.max_ts is None, f.max_ts or 0), reverse=True)
    picked: list[DataFile] = []
    rows = 0
    cutoff: int | None = None  # timestamp (us) of the limit-th newest event of the first files
    for f in ordered:
        if cutoff is not None and f.max_ts is not None and f.max_ts < cutoff:
            break  # sorted by max_ts: no later file holds a newer event either
        picked.append(f)
        rows += f.rows
        if cutoff is None and rows >= limit:
            cutoff = _top(snap.read(["uuid", "timestamp"], files=picked), limit)["timestamp"][
                -1
            ].value
    return _top(snap.read(_COLUMNS, files=picked), limit)


def _top(table: pa.Table, limit: int) -> pa.Table:
    order = pc.sort_indices(table, sort_keys=[("timestamp", "descending"), ("uuid", "descending")])
    return table.take(order[:limit])


@router.get("/events/live", responses={k: ERROR_RESPONSES[k] for k in (400, 401, 404)})
def live_events(
    project_id: ProjectId,
    request: Request,
    access: Annotated[ProjectAccess, Depends(project_permission(Permission.QUERY_READ))],
    limit: Annotated[int, Query(ge=1, le=500, description="How many events.")] = 50,
) -> Any:
    """The `limit` newest events: `{"data_version", "events": [{"uuid", "event", "distinct_id",
    "person_id", "timestamp" (ISO 8601 UTC), "properties"}]}`, newest first."""
    project = access.project
    settings = settings_of(request)
    snap = tables.snapshot(settings, project.id)
    # The page polls every 1.5 s; between commits the answer cannot change.
    key = (str(settings.data_dir), project.id, snap.version, limit)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    rows = newest_events(snap, limit).to_pylist()
    events = [
        {
            "uuid": r["uuid"],
            "event": r["event"],
            "distinct_id": r["distinct_id"],
            "person_id": r["person_id"],
            "timestamp": r["timestamp"].isoformat().replace("+00:00", "Z"),
            "properties": orjson.loads(r["properties"]),
        }
        for r in rows
    ]
    answer = {"data_version": snap.version, "events": events}
    with _cache_lock:
        _cache[key] = answer
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return answer

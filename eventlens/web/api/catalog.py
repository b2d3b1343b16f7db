"""GET /api/projects/{id}/catalog: event names and property keys, for the insight builder.

Names and keys come from the project's most recent events (up to SAMPLE_ROWS rows for names and
KEY_SAMPLE_ROWS for property keys, newest data files first): autocomplete needs the names in
use, not an exact census, and reading a 100M-event table on every page load would not do. The
answer is cached per (project, data version), so it is recomputed only after new data lands.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Annotated, Any

import orjson
import pyarrow.compute as pc
from fastapi import APIRouter, Depends
from starlette.requests import Request

from eventlens.accounts.policy import Permission
from eventlens.storage import tables
from eventlens.storage.event_table import DataFile, Snapshot
from eventlens.web.api.schemas import ERROR_RESPONSES, ProjectId
from eventlens.web.auth import ProjectAccess, project_permission
from eventlens.web.deps import settings_of

router = APIRouter(prefix="/api/projects/{project_id}", tags=["dashboards"])

SAMPLE_ROWS = 500_000
KEY_SAMPLE_ROWS = 20_000
_CACHE_SIZE = 32
_cache: OrderedDict[tuple[str, int, int], dict[str, Any]] = OrderedDict()
_cache_lock = threading.Lock()


def newest_files(files: list[DataFile], rows: int) -> list[DataFile]:
    """The data files with the newest events (by max timestamp) holding at least `rows` rows."""
    ordered = sorted(files, key=lambda f: (f.max_ts is None, f.max_ts or 0), reverse=True)
    picked: list[DataFile] = []
    total = 0
    for f in ordered:
        if total >= rows:
            break
        picked.append(f)
        total += f.rows
    return picked


def _keys(texts: list[str]) -> list[str]:
    keys: set[str] = set()
    for text in texts:
        obj = orjson.loads(text)
        if isinstance(obj, dict):
            keys.update(obj)
    return sorted(keys)


def build_catalog(snap: Snapshot) -> dict[str, Any]:
    """{"data_version", "total_events", "events": [{"name", "count"}] (most frequent first),
    "event_properties": [...], "person_properties": [...]} of snapshot `snap`."""
    name_files = newest_files(snap.files, SAMPLE_ROWS)
    names = snap.read(["event"], files=name_files).column("event")
    counts = pc.value_counts(names).to_pylist() if len(names) else []
    events = sorted(
        ({"name": c["values"], "count": int(c["counts"])} for c in counts),
        key=lambda e: (-e["count"], e["name"]),
    )
    props = snap.read(
        ["properties", "person_properties"], files=newest_files(snap.files, KEY_SAMPLE_ROWS)
    ).slice(0, KEY_SAMPLE_ROWS)
    return {
        "data_version": snap.version,
        "total_events": sum(f.rows for f in snap.files),
        "events": events,
        "event_properties": _keys(props.column("properties").to_pylist()),
        "person_properties": _keys(props.column("person_properties").to_pylist()),
    }


@router.get("/catalog", responses={k: ERROR_RESPONSES[k] for k in (401, 404)}, tags=["dashboards"])
def catalog(
    project_id: ProjectId,
    request: Request,
    access: Annotated[ProjectAccess, Depends(project_permission(Permission.QUERY_READ))],
) -> Any:
    """Event names (with counts in the sample) and property keys in use, plus the project's
    public token (for the SDK snippet shown while the project has no events)."""
    project = access.project
    settings = settings_of(request)
    snap = tables.snapshot(settings, project.id)
    key = (str(settings.data_dir), project.id, snap.version)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is None:
        cached = build_catalog(snap)
        with _cache_lock:
            _cache[key] = cached
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return {**cached, "project_id": project.id, "token": project.token}

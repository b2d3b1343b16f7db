"""`eventlens status [--project ID] [--json]`: what is stored and how far ingest lags, read-only.

Works whether or not a server is running: it reads the event tables, the state databases, the
ingest log's durable end and the consumer's status.json, and never writes any of them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import typer

from eventlens.capture.model import decode_log_record
from eventlens.cli.common import DataDirOption, console, fail, print_json, settings_for
from eventlens.config import Settings
from eventlens.errors import EventLensError, NotFound
from eventlens.ingest.consumer import read_status
from eventlens.ingest.log import LogReader
from eventlens.projects.store import SqliteMetadataStore
from eventlens.storage import tables
from eventlens.storage.stats import state_counts

# Pending log bytes scanned to count unapplied events per project; past this only bytes are shown.
_SCAN_LIMIT = 256 << 20
# A consumer whose heartbeat is older than this is reported as not running.
_STALE_SECONDS = 30.0


def _dir_size(path: Path) -> tuple[int, int]:
    files = size = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            try:
                size += os.stat(os.path.join(root, name)).st_size
                files += 1
            except FileNotFoundError:
                pass
    return files, size


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _table_info(settings: Settings, project_id: int) -> dict[str, Any]:
    table = tables.open_table(settings, project_id)
    if table is None:
        return {"events": 0, "data_version": None, "data_files": 0, "data_bytes": 0}
    snap = table.snapshot()
    return {
        "events": sum(f.rows for f in snap.files),
        "data_version": snap.version,
        "data_files": len(snap.files),
        "data_bytes": sum(f.size_bytes for f in snap.files),
    }


def _pending(settings: Settings, checkpoint: int, end: int) -> tuple[dict[int, int] | None, float]:
    """Unapplied events per project between the checkpoint and the log end (None: more than
    _SCAN_LIMIT bytes to scan), and the age in seconds of the oldest unapplied record."""
    counts: dict[int, int] = {}
    oldest_age = 0.0
    reader = LogReader(settings.log_dir)
    try:
        offset = max(checkpoint, reader.first_offset())
        while offset < end:
            records = reader.read(offset, 8 << 20, limit=end)
            if not records:
                break
            for _, payload in records:
                project_id, received_at, events, _ = decode_log_record(payload)
                if not counts:
                    oldest_age = max(0.0, time.time() - received_at / 1e6)
                counts[project_id] = counts.get(project_id, 0) + len(events)
            offset = records[-1][0]
            if offset - checkpoint > _SCAN_LIMIT:
                return None, oldest_age
    finally:
        reader.close()
    return counts, oldest_age


def collect(settings: Settings, project_id: int | None = None) -> dict[str, Any]:
    """The status document: {"ingest": {...}, "projects": [{...}, ...]}. Raises NotFound for an
    unknown `project_id`."""
    store = SqliteMetadataStore(settings.meta_db)
    try:
        projects = store.list_projects()
    finally:
        store.close()
    if project_id is not None:
        projects = [p for p in projects if p.id == project_id]
        if not projects:
            raise NotFound(f"no project with id {project_id}")
    consumer = read_status(settings) or {}
    end = LogReader(settings.log_dir).durable_end() if settings.log_dir.exists() else 0
    checkpoint = int(consumer.get("checkpoint", 0))
    heartbeat = consumer.get("heartbeat_at")
    running = (
        heartbeat is not None
        and time.time() - float(heartbeat) < _STALE_SECONDS
        and _alive(int(consumer.get("pid", 0)))
    )
    pending, oldest_age = _pending(settings, checkpoint, end)
    log_files, log_bytes = _dir_size(settings.log_dir)
    ingest = {
        "log_end": end,
        "checkpoint": checkpoint,
        "lag_bytes": max(0, end - checkpoint),
        "oldest_unapplied_age_s": round(oldest_age, 3),
        "consumer_running": running,
        "consumer_pid": consumer.get("pid") if running else None,
        "consumer_error": consumer.get("error"),
        "log_files": log_files,
        "log_bytes": log_bytes,
    }
    rows = []
    for p in projects:
        counts = state_counts(settings.state_db(p.id))
        files, size = _dir_size(settings.project_dir(p.id))
        rows.append(
            {
                "id": p.id,
                "name": p.name,
                **_table_info(settings, p.id),
                "persons": counts.persons if counts else 0,
                "dead_letters": counts.dead_letters if counts else 0,
                "pending_events": None if pending is None else pending.get(p.id, 0),
                "files": files,
                "bytes": size,
            }
        )
    return {"ingest": ingest, "projects": rows}


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def status(
    project: int | None = typer.Option(None, "--project", help="Only this project id."),
    as_json: bool = typer.Option(False, "--json", help="Print the status document as JSON."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Per project: events, persons, data version, ingest lag, dead letters, files and bytes."""
    try:
        doc = collect(settings_for(data_dir), project)
    except EventLensError as exc:
        fail(exc)
    if as_json:
        print_json(doc)
        return
    ing = doc["ingest"]
    state = f"running (pid {ing['consumer_pid']})" if ing["consumer_running"] else "not running"
    console.print(f"ingest consumer: {state}")
    if ing["consumer_error"]:
        console.print(f"  last error: {ing['consumer_error']}")
    console.print(
        f"  lag: {_human(ing['lag_bytes'])}, oldest unapplied "
        f"{ing['oldest_unapplied_age_s'] or 0:.1f} s; log {_human(ing['log_bytes'])} "
        f"in {ing['log_files']} files"
    )
    for p in doc["projects"]:
        pending = "?" if p["pending_events"] is None else p["pending_events"]
        console.print(
            f"project {p['id']} ({p['name']}): {p['events']} events, {p['persons']} persons, "
            f"version {p['data_version']}, {pending} events pending, "
            f"{p['dead_letters']} dead letters, {p['files']} files, {_human(p['bytes'])}"
        )


def register(app: typer.Typer) -> None:
    app.command("status")(status)

"""Warm-up at server start: every project's events read into the parallel engine's resident
buckets in a background thread, with the property columns that recent queries used decoded too
(from the query log), so the first queries after a start skip the read, the sort and most of
the JSON decoding (ADR 0006). Projects whose buckets do not fit the budget are skipped.

The warm-up yields to queries: before each bucket and each property column it waits while a
query runs (`resident_cache.DEMAND`), so the first query after a start builds what it needs
itself, ahead of the warm-up, waiting at most for the one bucket the warm-up was building."""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

from eventlens.config import Settings
from eventlens.errors import EventLensError
from eventlens.observability.logging import get_logger
from eventlens.projects.store import MetadataStore
from eventlens.query.model import parse_query
from eventlens.query.normalise import normalise
from eventlens.query.parallel import resident_cache
from eventlens.query.parallel.frame import PropKey
from eventlens.query.parallel.planner import plan_query
from eventlens.query.querylog import FILE_NAME as QUERY_LOG_FILE
from eventlens.query.querylog import computed, read_log
from eventlens.storage import tables
from eventlens.storage.event_table import Snapshot

log = get_logger(__name__)
RECENT_QUERIES = 500  # the query log's last entries whose properties are decoded ahead


def warm_resident(
    settings: Settings, metadata: MetadataStore, stop: threading.Event | None = None
) -> None:
    """Warm every project of `metadata` (see the module docstring). Never raises: a failed
    warm-up only leaves the first query to do the work. Returns early, between projects, once
    `stop` is set (the server stopping: it joins this thread before the interpreter exits,
    because a daemon thread still inside native code at exit can crash the process)."""
    resident_cache.configure(settings.query_resident_mb * 2**20)
    try:
        projects = metadata.list_projects()
        recent = recent_queries(settings.data_dir / QUERY_LOG_FILE)
    except Exception as exc:  # e.g. the server stopping at once
        log.warning("query.warm_failed", error=repr(exc))
        return
    for project in projects:
        if stop is not None and stop.is_set():
            log.info("query.warm_stopped", project_id=project.id)
            return
        started = time.perf_counter()

        def before_step() -> bool:
            return resident_cache.DEMAND.wait_idle(stop)

        try:
            table = tables.open_table(settings, project.id)
            if table is None:
                continue
            if not before_step():
                log.info("query.warm_stopped", project_id=project.id)
                return
            snapshot = table.snapshot()
            props = sorted(property_keys(recent.get(project.id, []), snapshot))
            rows = resident_cache.warm(snapshot, props, before_step)
            if stop is not None and stop.is_set():
                log.info("query.warm_stopped", project_id=project.id)
                return
        except Exception as exc:
            log.warning("query.warm_failed", project_id=project.id, error=repr(exc))
            continue
        log.info(
            "query.warm",
            project_id=project.id,
            rows=rows,
            properties=[f"{kind}.{key}" for kind, key in props] if rows else [],
            seconds=round(time.perf_counter() - started, 3),
        )


def recent_queries(path: Path, last: int = RECENT_QUERIES) -> dict[int, list[dict[str, Any]]]:
    """The query log's last `last` computed entries (cached answers skipped) by project id
    ({} without a log; a damaged line ends the reading, keeping what came before it)."""
    entries: deque[dict[str, Any]] = deque(maxlen=last)
    if path.exists():
        try:
            for _, entry in read_log(path):
                # Cached answers would crowd the computations out: hits repeat a few queries.
                if computed(entry):
                    entries.append(entry)
        except EventLensError as exc:
            log.warning("query.warm_log_unreadable", error=exc.message)
    out: dict[int, list[dict[str, Any]]] = {}
    for entry in entries:
        out.setdefault(int(entry["project"]), []).append(entry)
    return out


def property_keys(entries: list[dict[str, Any]], snapshot: Snapshot) -> set[PropKey]:
    """The property columns the parallel engine reads for these logged queries (as planned
    over `snapshot`); entries that no longer parse are skipped."""
    keys: set[PropKey] = set()
    for entry in entries:
        try:
            nq = normalise(
                parse_query(entry["query"]),
                timezone=str(entry.get("timezone", "UTC")),
                week_start=int(entry.get("week_start", 0)),
                now=datetime.fromisoformat(str(entry["time"])),
            )
            keys |= set(plan_query(nq, snapshot).spec.props)
        except (EventLensError, ValueError, KeyError):
            continue
    return keys

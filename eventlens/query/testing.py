"""Run a query over a handful of events through a real event table (for tests and fixtures)."""

from __future__ import annotations

import tempfile
import uuid as uuidlib
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from eventlens.query.cohorts import CohortLookup
from eventlens.query.model import parse_query
from eventlens.query.normalise import normalise
from eventlens.query.registry import get_engine
from eventlens.query.source import event_rows, parse_instant
from eventlens.storage.event_table import EventTable
from eventlens.storage.schema import EVENT_SCHEMA

__all__ = ["event_rows", "parse_instant", "run_on_events"]


def run_on_events(
    events: list[dict[str, Any]],
    query: dict[str, Any],
    *,
    timezone: str = "UTC",
    week_start: int = 0,
    now: str | datetime,
    engine: str = "reference",
    cohorts: CohortLookup | None = None,
) -> Any:
    """Write `events` into a temporary real event table, then parse -> normalise -> run `engine`
    on its latest snapshot. Raises what parse_query / normalise raise for a bad query.

    The table's bucketing needs person ids whose first 8 characters are hex; a fixture's
    free-form person ids are mapped to deterministic UUIDs for storage and mapped back when read,
    so results never depend on it. `cohorts`: the cohorts the query may name (by id).
    """
    normalised = normalise(
        parse_query(query),
        timezone=timezone,
        week_start=week_start,
        now=parse_instant(now),
        cohorts=cohorts,
    )
    rows = event_rows(events)
    # Free-form person ids ("alice") are not valid bucket keys: store uuid5 aliases.
    originals = rows.column("person_id").to_pylist()
    alias = {p: str(uuidlib.uuid5(uuidlib.NAMESPACE_OID, p)) for p in set(originals)}
    rows = rows.set_column(
        rows.schema.get_field_index("person_id"),
        EVENT_SCHEMA.field("person_id"),
        pa.array([alias[p] for p in originals], pa.string()),
    )
    with tempfile.TemporaryDirectory(prefix="eventlens-query-") as tmp:
        table = EventTable.open_or_create(Path(tmp) / "events", buckets=4)
        table.append(rows, log_offset=None)
        snapshot_table = table.snapshot().read()
    back = {v: k for k, v in alias.items()}
    snapshot_table = snapshot_table.set_column(
        snapshot_table.schema.get_field_index("person_id"),
        snapshot_table.schema.field("person_id"),
        pa.array([back[p] for p in snapshot_table.column("person_id").to_pylist()], pa.string()),
    )
    return get_engine(engine).run(normalised, snapshot_table)

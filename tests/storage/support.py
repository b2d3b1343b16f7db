"""Helpers shared by the storage and persons tests."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from eventlens.capture.model import CapturedEvent
from eventlens.config import Settings
from eventlens.ingest.project_writer import LogRecord
from eventlens.storage.event_table import EventTable

T0 = 1_700_000_000_000_000  # 2023-11-14T22:13:20Z in µs
DAY = 86_400_000_000


def ev(
    event: str,
    distinct_id: str,
    t: int,
    props: dict[str, Any] | None = None,
    uid: str | None = None,
) -> CapturedEvent:
    return CapturedEvent(uid or str(uuidlib.uuid4()), event, distinct_id, T0 + t, dict(props or {}))


def records(*batches: list[CapturedEvent], start: int = 0) -> list[LogRecord]:
    """One LogRecord per batch, end offsets 100, 200, ... after `start`."""
    return [LogRecord(start + 100 * (i + 1), T0, list(b), []) for i, b in enumerate(batches)]


def settings_at(data_dir: Path, buckets: int = 16) -> Settings:
    from dataclasses import replace

    return replace(Settings().with_data_dir(data_dir), buckets=buckets)


def table_rows(settings: Settings, project_id: int = 1) -> list[dict[str, Any]]:
    """All rows of the latest version, sorted by uuid, JSON columns parsed."""
    table = EventTable.open_or_create(settings.event_table_dir(project_id))
    rows = table.snapshot().read().to_pylist()
    for r in rows:
        r["properties"] = orjson.loads(r["properties"])
        r["person_properties"] = orjson.loads(r["person_properties"])
    return sorted(rows, key=lambda r: r["uuid"])


def event_rows(events: list[CapturedEvent], person: str = "p") -> pa.Table:
    """EVENT_SCHEMA rows for direct EventTable tests (person_id given)."""
    return pa.table(
        {
            "uuid": [e.uuid for e in events],
            "event": [e.event for e in events],
            "distinct_id": [e.distinct_id for e in events],
            "person_id": [person] * len(events),
            "timestamp": pa.array([e.timestamp for e in events], pa.int64()).cast(
                pa.timestamp("us", tz="UTC")
            ),
            "properties": [orjson.dumps(e.properties).decode() for e in events],
            "person_properties": ["{}"] * len(events),
        }
    )

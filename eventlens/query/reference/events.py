"""The reference engine's view of a snapshot: every event as a plain Python object.

`Snapshot.read()` (eventlens.storage.event_table) yields the table's rows; this adapter also takes
a pyarrow Table or a list of row dicts, so the engine can be fed without a Delta table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from eventlens.query import deadline
from eventlens.query.dates import to_us
from eventlens.query.semantics.events import Event


def _json_obj(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    parsed = orjson.loads(value)
    return parsed if isinstance(parsed, dict) else {}


def _ts(value: Any) -> int:
    if isinstance(value, datetime):
        return to_us(value)
    return int(value)


def _rows(source: Any) -> Iterable[dict[str, Any]]:
    if hasattr(source, "read"):  # a Snapshot
        source = source.read()
    if hasattr(source, "read_all"):  # a RecordBatchReader
        source = source.read_all()
    if isinstance(source, pa.Table):
        return _table_rows(source)
    return source  # type: ignore[no-any-return]


def _table_rows(table: pa.Table) -> Iterable[dict[str, Any]]:
    # Column-wise conversion with the timestamp as int64 µs: building tz-aware datetimes row by
    # row is ~10x slower and the engine wants microseconds anyway.
    ts = table.column("timestamp").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    columns = {
        name: table.column(name).to_pylist()
        for name in ("uuid", "event", "distinct_id", "person_id", "properties", "person_properties")
        if name in table.column_names
    }
    columns["timestamp"] = ts.to_pylist()
    names = list(columns)
    for values in zip(*(columns[n] for n in names), strict=True):
        yield dict(zip(names, values, strict=True))


def load_events(source: Any) -> list[Event]:
    """All events of `source` (Snapshot, pyarrow Table or row dicts), sorted by (ts, uuid).
    Polls the query deadline (eventlens.query.deadline) while converting."""
    events = []
    for i, row in enumerate(_rows(source)):
        if i % 50_000 == 0:
            deadline.check()
        events.append(_event(row))
    events.sort(key=lambda e: (e.ts, e.uuid))
    return events


def _event(row: dict[str, Any]) -> Event:
    return Event(
        uuid=str(row["uuid"]),
        event=str(row["event"]),
        distinct_id=str(row["distinct_id"]),
        person_id=str(row["person_id"]),
        ts=_ts(row["timestamp"]),
        properties=_json_obj(row.get("properties")),
        person_properties=_json_obj(row.get("person_properties")),
    )


def by_person(events: Iterable[Event]) -> dict[str, list[Event]]:
    """Events grouped by person_id, each list keeping the input (time) order."""
    out: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        out[e.person_id].append(e)
    return out

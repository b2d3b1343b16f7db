"""What engines read: a pinned Snapshot of the event table, or (tests, fixtures, tools) its rows
as a pyarrow Table or as row dicts in the fixture shape, which `event_rows` converts."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeAlias

import orjson
import pyarrow as pa

from eventlens.errors import InvalidInput
from eventlens.storage.event_table import Snapshot
from eventlens.storage.schema import EVENT_SCHEMA

RowDicts: TypeAlias = Sequence[dict[str, Any]]
# What `Engine.run` accepts beyond a Snapshot (the service always passes a Snapshot).
EventSource: TypeAlias = Snapshot | pa.Table | RowDicts


def parse_instant(value: str | datetime) -> datetime:
    """An ISO instant (naive = UTC) as an aware datetime."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def event_rows(events: list[dict[str, Any]]) -> pa.Table:
    """Fixture events -> EVENT_SCHEMA rows: person_id defaults to the distinct_id, uuid is
    generated when absent, properties / person_properties are objects."""
    columns: dict[str, list[Any]] = {name: [] for name in EVENT_SCHEMA.names}
    for i, ev in enumerate(events):
        try:
            distinct_id = str(ev["distinct_id"])
            columns["uuid"].append(str(ev.get("uuid") or uuidlib.uuid4()))
            columns["event"].append(str(ev["event"]))
            columns["distinct_id"].append(distinct_id)
            columns["person_id"].append(str(ev.get("person_id") or distinct_id))
            columns["timestamp"].append(parse_instant(ev["timestamp"]).astimezone(UTC))
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidInput(f"events[{i}]: {exc!r}", field=f"events[{i}]") from None
        columns["properties"].append(orjson.dumps(ev.get("properties") or {}).decode())
        columns["person_properties"].append(
            orjson.dumps(ev.get("person_properties") or {}).decode()
        )
    return pa.Table.from_pydict(columns, schema=EVENT_SCHEMA)

"""The normalised event: what capture writes to the ingest log and the consumer reads.

This is the contract between `capture/` (HTTP side) and `ingest/` (log -> table side).
A log record is one capture request's accepted events and dead letters for one project:

    {"v": 1, "project_id": int, "received_at": int (µs UTC),
     "events": [CapturedEvent.to_dict(), ...],
     "dead": [{"index": int, "reason": str, "payload": <the raw event JSON value>}, ...],
     "traceparent": str (optional)}

encoded with orjson. `traceparent` (W3C) is the capture request's span when tracing was on: the
consumer links its commit span to it (docs/adr/0011-tracing.md). Readers ignore unknown keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

LOG_RECORD_VERSION = 1


@dataclass(slots=True)
class CapturedEvent:
    """One valid event. `timestamp` is microseconds since the epoch, UTC, already skew-corrected.

    `properties` is a JSON object; top-level `$set` / `$set_once` from the wire are folded into
    `properties["$set"]` / `properties["$set_once"]` (where PostHog keeps them too).
    """

    uuid: str
    event: str
    distinct_id: str
    timestamp: int
    properties: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "event": self.event,
            "distinct_id": self.distinct_id,
            "timestamp": self.timestamp,
            "properties": self.properties,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CapturedEvent:
        return cls(d["uuid"], d["event"], d["distinct_id"], int(d["timestamp"]), d["properties"])


@dataclass(slots=True)
class DeadLetter:
    index: int
    reason: str
    payload: Any


def encode_log_record(
    project_id: int,
    received_at: int,
    events: list[CapturedEvent],
    dead: list[DeadLetter],
    traceparent: str | None = None,
) -> bytes:
    record: dict[str, Any] = {
        "v": LOG_RECORD_VERSION,
        "project_id": project_id,
        "received_at": received_at,
        "events": [e.to_dict() for e in events],
        "dead": [{"index": d.index, "reason": d.reason, "payload": d.payload} for d in dead],
    }
    if traceparent is not None:
        record["traceparent"] = traceparent
    return orjson.dumps(record)


def decode_log_record_traced(
    data: bytes,
) -> tuple[int, int, list[CapturedEvent], list[DeadLetter], str | None]:
    """(project_id, received_at, events, dead letters, traceparent or None)."""
    obj = orjson.loads(data)
    traceparent = obj.get("traceparent")
    return (
        int(obj["project_id"]),
        int(obj["received_at"]),
        [CapturedEvent.from_dict(e) for e in obj["events"]],
        [DeadLetter(int(d["index"]), d["reason"], d["payload"]) for d in obj["dead"]],
        traceparent if isinstance(traceparent, str) else None,
    )


def decode_log_record(
    data: bytes,
) -> tuple[int, int, list[CapturedEvent], list[DeadLetter]]:
    """(project_id, received_at, events, dead letters)."""
    return decode_log_record_traced(data)[:4]

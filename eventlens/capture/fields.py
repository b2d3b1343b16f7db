"""Field rules shared by the PostHog and Segment parsers: ids, uuids, times (capture.md).

Every function raises `InvalidEvent` whose message names the field; the parsers turn that into
a dead letter for the one event, never a failed batch.
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import uuid_utils

from eventlens.errors import InvalidEvent, InvalidInput

MAX_DISTINCT_ID = 200
# SDKs send canonical lower-case uuids; matching that form is ~5x cheaper than uuid.UUID()
# (15% of the server's capture CPU in a profile), which stays as the path for other spellings.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
# Representable range of datetime (years 1..9999), in µs since the epoch.
MIN_TS_US = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _US
MAX_TS_US = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // _US


def distinct_id_of(value: Any, field: str) -> str:
    """A wire distinct id -> str: numbers stringified, cut to 200 chars; missing/empty invalid."""
    if isinstance(value, bool) or value is None:
        raise InvalidEvent(f"{field} is missing or null", field=field)
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidEvent(f"{field} must be a finite number", field=field)
        text = str(int(value)) if value.is_integer() else repr(value)
    elif isinstance(value, str):
        text = value
    else:
        raise InvalidEvent(
            f"{field} must be a string or a number, not {type(value).__name__}", field=field
        )
    if not text.strip():
        raise InvalidEvent(f"{field} is empty", field=field)
    return text[:MAX_DISTINCT_ID]


def uuid_of(value: Any, field: str = "uuid") -> str:
    """A client uuid kept (canonical lower-case form); absent -> a fresh UUIDv7; bad -> invalid."""
    if value is None:
        return str(uuid_utils.uuid7())
    if not isinstance(value, str):
        raise InvalidEvent(f"{field} must be a string, not {type(value).__name__}", field=field)
    if _CANONICAL_UUID.fullmatch(value):
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise InvalidEvent(f"{field} {value[:64]!r} is not a valid UUID", field=field) from exc


def derived_uuid(message_id: Any) -> str:
    """Segment `messageId` -> uuid: kept if it is a UUID, else uuid5 of it (so retries dedupe)."""
    if message_id is None:
        return str(uuid_utils.uuid7())
    text = message_id if isinstance(message_id, str) else str(message_id)
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, "segment-message:" + text))


def time_us(value: Any, field: str, *, error: type[InvalidInput] = InvalidEvent) -> int:
    """An ISO 8601 string (naive = UTC) or epoch milliseconds -> µs since the epoch, UTC."""
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise error(f"{field} {value[:64]!r} is not an ISO 8601 time", field=field) from exc
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return (dt - _EPOCH) // _US
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or abs(value) > 1e15:
            raise error(f"{field} {value!r} is out of range (epoch milliseconds)", field=field)
        return int(value * 1000)
    raise error(
        f"{field} must be an ISO 8601 string or epoch milliseconds, not {type(value).__name__}",
        field=field,
    )


def event_time_us(
    *,
    now_us: int,
    timestamp: Any,
    sent_at_us: int | None,
    offset_ms: Any,
    ignore_sent_at: bool,
    field: str,
) -> int:
    """Stored event time (capture.md "Time"), µs UTC.

    timestamp and sent_at -> now + (timestamp - sent_at) (client clock-skew correction) unless
    `ignore_sent_at`; only timestamp -> timestamp; offset (ms) -> now - offset; else now.
    """
    if timestamp is not None:
        ts = time_us(timestamp, f"{field}.timestamp")
        result = ts if sent_at_us is None or ignore_sent_at else now_us + (ts - sent_at_us)
    elif offset_ms is not None:
        if (
            isinstance(offset_ms, bool)
            or not isinstance(offset_ms, int | float)
            or not math.isfinite(offset_ms)
        ):
            raise InvalidEvent(f"{field}.offset must be a number of milliseconds", field=field)
        result = now_us - int(offset_ms * 1000)
    else:
        result = now_us
    if not MIN_TS_US <= result <= MAX_TS_US:
        raise InvalidEvent(f"{field} time is outside years 1..9999", field=f"{field}.timestamp")
    return result

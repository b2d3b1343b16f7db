"""Field rules shared by the PostHog and Segment parsers: ids, uuids, times (capture.md).

Every function raises `InvalidEvent` whose message names the field; the parsers turn that into
a dead letter for the one event, never a failed batch.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import uuid_utils

from eventlens.errors import AuthenticationError, InvalidEvent, InvalidInput

MAX_DISTINCT_ID = 200
# Levels of JSON nesting one event may use (the event object is level 1, `properties` level 2).
# orjson serialises at most 254 levels and the log record wraps an event in 2 more, so without a
# limit of our own a deep event fails when it is written, taking its whole batch with it.
MAX_DEPTH = 64
# Timestamp policy (docs/capture.md "Time"): a time more than 23 h after the receive time
# (PostHog's cut-off) or before 1970 is an SDK or clock bug, not history; one such event would
# otherwise stretch every "all time" query of its project to thousands of years.
FUTURE_CUTOFF_US = 23 * 3600 * 1_000_000
MIN_PLAUSIBLE_US = 0  # 1970-01-01T00:00:00Z
ORIGINAL_TIMESTAMP = "$eventlens_original_timestamp"
TIMESTAMP_CLAMPED = "$eventlens_timestamp_clamped"
# C0 control characters (U+0000..U+001F): never in an id or event name an SDK sends, and NUL is
# cut short by SQLite's JSON functions, so such an id would not be stored as sent.
_CONTROL = re.compile(r"[\x00-\x1f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# A dead letter whose payload orjson cannot write (lone surrogates) keeps it as JSON text.
RAW_JSON = "$eventlens_raw_json"
# The properties that name a second distinct id of an identity event (persons/model.py).
_IDENTITY_ID_PROPS = {"$identify": "$anon_distinct_id", "$create_alias": "alias"}
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
    check_printable(text, field)
    return text[:MAX_DISTINCT_ID]


def check_printable(text: str, field: str) -> None:
    """`InvalidEvent` when `text` holds a C0 control character (NUL included)."""
    bad = _CONTROL.search(text)
    if bad is not None:
        raise InvalidEvent(
            f"{field} contains control character U+{ord(bad.group()):04X} at position"
            f" {bad.start()} (ids and event names must be printable)",
            field=field,
        )


def check_identity_ids(event: str, properties: dict[str, Any], where: str) -> None:
    """The other distinct id of `$identify` / `$create_alias` follows the distinct_id rule."""
    key = _IDENTITY_ID_PROPS.get(event)
    value = properties.get(key) if key is not None else None
    if isinstance(value, str):
        check_printable(value, f"{where}.{key}")


def check_token(value: str, where: str) -> None:
    """`AuthenticationError` for a token no project can have (control characters, surrogates):
    it must not reach the SQLite lookup, which cannot even encode a lone surrogate."""
    if _CONTROL.search(value) or _SURROGATE.search(value):
        raise AuthenticationError(
            f"{where} holds control characters or lone surrogates: not a project token",
            field=where,
        )


def event_name_of(value: Any, field: str) -> str:
    """A wire event name: a non-empty string without control characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidEvent(f"{field} is missing or empty", field=field)
    check_printable(value, field)
    return value


# orjson writes at most 254 levels: under this many extra levels of lists, writing a list of
# events fails exactly when one of them nests deeper than MAX_DEPTH.
_ORJSON_MAX_LEVELS = 254
_WRAP_LEVELS = _ORJSON_MAX_LEVELS - (MAX_DEPTH + 1)


def within_depth(items: list[Any]) -> bool:
    """True when no element of `items` nests deeper than `MAX_DEPTH` levels.

    One orjson pass in C (about a tenth of the cost of walking the events in Python, measured
    on 1,000 PostHog events); the per-event walk then runs only for the rare deep batch.
    """
    wrapped: Any = items
    for _ in range(_WRAP_LEVELS):
        wrapped = [wrapped]
    try:
        orjson.dumps(wrapped)
    except TypeError:  # orjson.JSONEncodeError: "Recursion limit reached"
        return False
    return True


def check_structure(item: Any, where: str, *, surrogates: bool = False) -> None:
    """`InvalidEvent` when the event `item` nests deeper than `MAX_DEPTH` levels or, with
    `surrogates`, holds a lone surrogate in a key or string.

    Only a body read by the fallback parser can hold surrogates (orjson refuses them, see
    decode.py), so the common path walks containers only and never scans strings.
    """
    problem = _walk(item, 1, where, surrogates)
    if problem is not None:
        raise InvalidEvent(problem, field=where)


def _walk(value: Any, depth: int, where: str, strings: bool) -> str | None:
    children: Any
    if isinstance(value, dict):
        if strings and any(_SURROGATE.search(k) for k in value):
            return f"{where} has a property key with a lone surrogate (not valid Unicode)"
        children = value.values()
    elif isinstance(value, list):
        children = value
    elif strings and isinstance(value, str) and _SURROGATE.search(value):
        return f"{where} has a string with a lone surrogate (not valid Unicode)"
    else:
        return None
    if depth > MAX_DEPTH:
        return f"{where} nests more than {MAX_DEPTH} levels deep (the limit is {MAX_DEPTH} levels)"
    for child in children:
        if isinstance(child, dict | list) or (strings and isinstance(child, str)):
            problem = _walk(child, depth + 1, where, strings)
            if problem is not None:
                return problem
    return None


def storable_payload(item: Any) -> Any:
    """`item` as a dead letter can keep it: cut below the depth limit (`prune_deep`), and held
    as JSON text under `$eventlens_raw_json` (surrogates escaped, so exact) when orjson cannot
    write it."""
    payload = prune_deep(item)
    try:
        orjson.dumps(payload)
    except TypeError:
        return {RAW_JSON: json.dumps(payload)}
    return payload


def prune_deep(value: Any, depth: int = 1) -> Any:
    """A copy of `value` whose containers past `MAX_DEPTH + 1` levels are replaced by a marker,
    so a too-deep dead letter can be stored (orjson writes at most 254 levels) and still nests
    past the limit (replaying it gives the same reason instead of storing a cut-down event)."""
    if depth > MAX_DEPTH + 1 and isinstance(value, dict | list):
        return "$eventlens_pruned: nested deeper than the limit"
    if isinstance(value, dict):
        return {k: prune_deep(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [prune_deep(v, depth + 1) for v in value]
    return value


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


def iso_us(us: int) -> str | None:
    """µs since the epoch -> ISO 8601 UTC (`Z`), None outside years 1..9999."""
    if not MIN_TS_US <= us <= MAX_TS_US:
        return None
    return (_EPOCH + timedelta(microseconds=us)).isoformat().replace("+00:00", "Z")


def event_time_us(
    *,
    now_us: int,
    timestamp: Any,
    sent_at_us: int | None,
    offset_ms: Any,
    ignore_sent_at: bool,
    field: str,
    properties: dict[str, Any],
) -> int:
    """Stored event time (capture.md "Time"), µs UTC.

    timestamp and sent_at -> now + (timestamp - sent_at) (client clock-skew correction) unless
    `ignore_sent_at`; only timestamp -> timestamp; offset (ms) -> now - offset; else now.
    A result more than 23 h after `now_us` or before 1970 is replaced by `now_us`, and
    `properties` (modified in place) get `$eventlens_timestamp_clamped` ("future" / "past")
    and `$eventlens_original_timestamp` (the timestamp as sent when it was a string, else the
    ISO form of the implausible time).
    """
    if timestamp is not None:
        claimed = time_us(timestamp, f"{field}.timestamp")
        result = (
            claimed if sent_at_us is None or ignore_sent_at else now_us + (claimed - sent_at_us)
        )
    elif offset_ms is not None:
        if (
            isinstance(offset_ms, bool)
            or not isinstance(offset_ms, int | float)
            or not math.isfinite(offset_ms)
        ):
            raise InvalidEvent(f"{field}.offset must be a number of milliseconds", field=field)
        result = claimed = now_us - int(offset_ms * 1000)
    else:
        return now_us
    if result > now_us + FUTURE_CUTOFF_US:
        clamped = "future"
    elif result < MIN_PLAUSIBLE_US:
        clamped = "past"
    else:
        return result
    if isinstance(timestamp, str):
        original = timestamp
    else:
        original = iso_us(claimed) or f"{claimed} µs after 1970-01-01T00:00:00Z"
    properties[ORIGINAL_TIMESTAMP] = original
    properties[TIMESTAMP_CLAMPED] = clamped
    return now_us

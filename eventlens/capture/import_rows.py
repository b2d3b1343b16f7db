"""The bulk import's row rules in Python, for replaying an import's dead letters.

`eventlens import` validates rows in DuckDB (ingest/bulk_import.py); a rejected row is stored
as the file's ORIGINAL values (binary as `{"$binary": base64, "$type": ...}`, timestamps as the
file's text or, for a native timestamp column, its ISO form) and marked with `IMPORT_MARKER`
(the file's name). Replay turns such a payload into capture's wire shape with the import's
rules, which are wider than capture's in two places, so a fixed row means what the file meant:

- uuid: every spelling `uuid.UUID` reads (upper case, no dashes, braces, `urn:uuid:`), 16 raw
  bytes, or those 16 bytes base64-encoded (24 characters ending `==`, what JSON exports of a
  binary column hold);
- timestamp: a number (or numeric text) is epoch seconds, milliseconds or microseconds told
  apart by magnitude, where capture reads milliseconds only;
- properties / $set / $set_once: a JSON object or text holding one (Parquet and CSV files
  carry them as text).

tests/ingest/test_import_rules.py checks these against the SQL on generated values.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from eventlens.errors import InvalidEvent

IMPORT_MARKER = "$eventlens_import"
BINARY = "$binary"
_BASE64_16 = re.compile(r"[A-Za-z0-9+/_-]{22}==")
_HEX_DASHES = re.compile(r"[0-9A-Fa-f-]+")


def binary_uuid(raw: bytes, field: str = "uuid") -> str:
    """16 bytes -> canonical uuid text; other lengths are invalid (the message says the size)."""
    if len(raw) != 16:
        raise InvalidEvent(
            f"{field} is {len(raw)} bytes of binary; a binary uuid must be 16 bytes", field=field
        )
    return str(uuid.UUID(bytes=raw))


def import_uuid(value: Any, field: str = "uuid") -> Any:
    """The import's uuid rule: a canonical uuid string; None when absent; `InvalidEvent` for
    text the import would not read; any other JSON value unchanged (capture's parser says
    why). Braces are one pair around the rest (`uuid.UUID` alone strips any number)."""
    if isinstance(value, dict) and isinstance(value.get(BINARY), str):
        try:
            raw = base64.b64decode(value[BINARY], validate=True)
        except binascii.Error as exc:
            raise InvalidEvent(f"{field} holds invalid base64", field=field) from exc
        return binary_uuid(raw, field)
    if not isinstance(value, str) or not value.strip():
        return None if value is None or isinstance(value, str) else value
    text = value.strip()
    if _BASE64_16.fullmatch(text):
        return binary_uuid(base64.b64decode(text.replace("-", "+").replace("_", "/")), field)
    body = text[9:] if text[:9].lower() == "urn:uuid:" else text
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    if _HEX_DASHES.fullmatch(body):
        try:
            return str(uuid.UUID(body))
        except ValueError:
            pass
    raise InvalidEvent(f"{field} {text[:64]!r} is not a valid UUID", field=field)


def epoch_us(number: float) -> int:
    """Epoch seconds, milliseconds or microseconds told apart by magnitude -> µs."""
    if abs(number) < 1e11:
        return int(number * 1e6)
    if abs(number) < 1e14:
        return int(number * 1e3)
    return int(number)


def import_timestamp(value: Any) -> Any:
    """The import's timestamp rule: numbers (or numeric text) by magnitude -> ISO 8601 text;
    anything else unchanged (capture reads ISO text)."""
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        return value
    us = epoch_us(number)
    try:
        return datetime.fromtimestamp(us / 1e6, tz=UTC).isoformat()
    except (OverflowError, ValueError, OSError):
        return value


def _object_text(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text in ("", "null"):
            return None
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return value
        return parsed
    return value


def to_capture_shape(payload: dict[str, Any]) -> dict[str, Any]:
    """An import dead letter's payload (marked with IMPORT_MARKER) -> a capture wire event
    meaning the same; `InvalidEvent` when a binary value cannot be a uuid."""
    out = {k: v for k, v in payload.items() if k != IMPORT_MARKER}
    if "uuid" in out:
        out["uuid"] = import_uuid(out["uuid"])
    if "timestamp" in out:
        out["timestamp"] = import_timestamp(out["timestamp"])
    for key in ("properties", "$set", "$set_once"):
        if key in out:
            out[key] = _object_text(out[key])
            if out[key] is None:
                del out[key]
    return out

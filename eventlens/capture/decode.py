"""Capture body decoding: bytes on the wire -> one JSON value, with bounded inflation.

Encodings accepted (capture.md "Encodings"):

- gzip, detected by the magic bytes `1f 8b` whatever the headers or `compression` say (SDKs
  disagree on how they label it: posthog-python sets `Content-Encoding: gzip`, posthog-js sends
  `?compression=gzip-js` as text/plain);
- base64 (`?compression=base64`), possibly wrapping gzip;
- a form body or a GET query `data=<base64 or urlencoded JSON>` (old posthog-js, image beacons);
- plain JSON.

Anything else is `InvalidInput` naming the encoding. A body declared gzip that is plain JSON is
accepted: the magic bytes are the truth.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson

from eventlens.capture.fields import MAX_DEPTH
from eventlens.errors import InvalidInput, PayloadTooLarge

GZIP_MAGIC = b"\x1f\x8b"
_CONTENT_ENCODINGS = frozenset({"", "identity", "gzip", "x-gzip"})
_COMPRESSIONS = frozenset({"", "gzip", "gzip-js", "base64"})
_FORM_TYPE = "application/x-www-form-urlencoded"
# parse_qs's own cap; a real form body has `data`, `compression` and a few more (`ver`, `_`).
MAX_FORM_FIELDS = 100
ORJSON_MAX_DEPTH = 1024


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB" if n >= 1024 * 1024 else f"{n / 1024:g} KB"


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """Inflate gzip `data` (one or more members) to at most `limit` bytes.

    Never allocates more than about `limit` bytes of output: inflation stops as soon as the
    output would pass the limit. Raises `PayloadTooLarge` past the limit (gzip bombs included)
    and `InvalidInput` for corrupt or truncated gzip.
    """
    out = bytearray()
    rest = data
    while True:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            chunk = inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise InvalidInput(f"body is not valid gzip: {exc}", field="body") from exc
        out += chunk
        if len(out) > limit:
            raise PayloadTooLarge(
                f"body inflates to more than {_mb(limit)} (the limit for this endpoint)",
                field="body",
                limit_bytes=limit,
            )
        if not inflater.eof:
            raise InvalidInput("gzip body is truncated", field="body")
        rest = inflater.unused_data
        # Trailing zero padding after the last member is legal in gzip files.
        if not rest.strip(b"\x00"):
            return bytes(out)
        if not rest.startswith(GZIP_MAGIC):
            raise InvalidInput("unexpected bytes after the gzip body", field="body")


def _b64decode(text: bytes) -> bytes:
    # Form decoding turns an unescaped '+' into ' '; URL-safe alphabets use '-' and '_'.
    cleaned = text.strip().replace(b" ", b"+").replace(b"-", b"+").replace(b"_", b"/")
    cleaned += b"=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"data is not valid base64: {exc}", field="data") from exc


def _looks_like_json(data: bytes) -> bool:
    head = data.lstrip()[:1]
    return head in (b"{", b"[")


def decode_body(
    body: bytes,
    *,
    limit: int,
    content_type: str | None = None,
    content_encoding: str | None = None,
    compression: str | None = None,
    query_data: str | None = None,
) -> bytes:
    """Turn a capture request body into JSON text (bytes), at most `limit` bytes once decoded.

    `query_data` is the `data=` query parameter of a GET request (then `body` is ignored).
    Raises `PayloadTooLarge` (body or its inflation over `limit`) and `InvalidInput` (unknown
    encoding, bad base64, corrupt gzip, form body without `data`).
    """
    encoding = (content_encoding or "").strip().lower()
    if encoding not in _CONTENT_ENCODINGS:
        raise InvalidInput(
            f"unsupported Content-Encoding {encoding!r} (supported: gzip)",
            field="Content-Encoding",
        )
    comp = (compression or "").strip().lower()
    if len(body) > limit:
        raise PayloadTooLarge(
            f"body is {len(body)} bytes, over the {_mb(limit)} limit for this endpoint",
            field="body",
            limit_bytes=limit,
        )

    data = body
    form = False
    if query_data is not None:
        data, form = query_data.encode(), True
    elif data.startswith(b"data=") or (
        (content_type or "").lower().startswith(_FORM_TYPE)
        # Some clients label any body as a form: gzip or JSON is what it is, not a form.
        and not data.startswith(GZIP_MAGIC)
        and not _looks_like_json(data)
    ):
        try:
            fields = parse_qs(data.decode("utf-8", "replace"), max_num_fields=MAX_FORM_FIELDS)
        except ValueError as exc:
            raise InvalidInput(
                f"form body has more than {MAX_FORM_FIELDS} fields (the limit); send the"
                " events as data= (and compression=)",
                field="body",
            ) from exc
        if "data" not in fields:
            raise InvalidInput("form body has no 'data' field", field="data")
        data, form = fields["data"][0].encode(), True
        if not comp and "compression" in fields:
            comp = fields["compression"][0].strip().lower()

    if comp not in _COMPRESSIONS:
        raise InvalidInput(
            f"unsupported compression {comp!r} (supported: gzip-js, gzip, base64)",
            field="compression",
        )

    if data.startswith(GZIP_MAGIC):
        data = gunzip_bounded(data, limit)
    elif comp == "base64" or (form and not _looks_like_json(data)):
        data = _b64decode(data)
        if data.startswith(GZIP_MAGIC):
            data = gunzip_bounded(data, limit)

    if len(data) > limit:
        raise PayloadTooLarge(
            f"decoded body is {len(data)} bytes, over the {_mb(limit)} limit",
            field="body",
            limit_bytes=limit,
        )
    return data


@dataclass(frozen=True, slots=True)
class JsonBody:
    """A parsed body. `surrogates` is True when it was read by the fallback parser, so its
    strings may hold lone surrogates that every event must be checked for."""

    value: Any
    surrogates: bool = False


def parse_json(data: bytes) -> Any:
    """`parse_json_body(data).value`."""
    return parse_json_body(data).value


def parse_json_body(data: bytes) -> JsonBody:
    """Parse JSON text; `InvalidInput` says where it is malformed (orjson gives line/column).

    orjson refuses lone surrogates (`"\\ud800"`, which JavaScript's JSON.stringify emits for
    a string cut in the middle of an emoji) with the whole body. Such a body is parsed again
    by the standard library so that only the events holding one are dead-lettered. Bodies
    nesting past orjson's 1024 levels cannot be read at all: 400 naming the limit.
    """
    if not data.strip():
        raise InvalidInput("body is empty (expected JSON)", field="body")
    try:
        return JsonBody(orjson.loads(data))
    except orjson.JSONDecodeError as exc:
        message = str(exc)
        if "depth limit" in message:
            raise _too_deep() from exc
        if "surrogate" in message:
            value = _loads_with_surrogates(data)
            if value is not None:
                return JsonBody(value, surrogates=True)
        raise InvalidInput(f"body is not valid JSON: {exc}", field="body") from exc


def _too_deep() -> InvalidInput:
    return InvalidInput(
        f"body nests deeper than {ORJSON_MAX_DEPTH} levels and cannot be read; an event may"
        f" nest at most {MAX_DEPTH} levels",
        field="body",
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _int(text: str) -> int | float:
    # Like orjson: integers past 64 bits become floats (the log record cannot hold them).
    value = int(text) if len(text) <= 20 else float(text)
    if isinstance(value, int) and -(2**63) <= value < 2**64:
        return value
    return _float(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number is infinity when parsed as double")
    return value


def _loads_with_surrogates(data: bytes) -> Any:
    """The standard library's reading of `data` (which keeps lone surrogates), with orjson's
    number rules; None when it cannot read it either (the caller reports orjson's error)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    try:
        return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_no_constant)
    except RecursionError as exc:
        raise _too_deep() from exc
    except ValueError:
        return None

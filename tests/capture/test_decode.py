"""Body decoding: every encoding path, bounded inflation, and the errors that name the problem."""

from __future__ import annotations

import base64
import gzip
import tracemalloc
import zlib
from urllib.parse import quote

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventlens.capture.decode import decode_body, gunzip_bounded, parse_json
from eventlens.errors import InvalidInput, PayloadTooLarge

DOC = [{"event": "e", "distinct_id": "u", "properties": {"k": "vé"}}]
RAW = orjson.dumps(DOC)
LIMIT = 1 << 20


def test_plain_json() -> None:
    assert decode_body(RAW, limit=LIMIT) == RAW


@pytest.mark.parametrize(
    ("headers", "compression"),
    [
        ({"content_encoding": "gzip"}, None),
        ({}, "gzip-js"),
        ({}, None),  # magic bytes alone
        ({"content_encoding": "identity"}, "base64"),  # headers lie: magic bytes win
        ({"content_type": "application/x-www-form-urlencoded"}, None),
    ],
)
def test_gzip_detected_by_magic_bytes(headers: dict[str, str], compression: str | None) -> None:
    body = gzip.compress(RAW)
    assert decode_body(body, limit=LIMIT, compression=compression, **headers) == RAW


def test_declared_gzip_but_plain_json_is_accepted() -> None:
    assert decode_body(RAW, limit=LIMIT, content_encoding="gzip", compression="gzip-js") == RAW


def test_base64_query_compression() -> None:
    assert decode_body(base64.b64encode(RAW), limit=LIMIT, compression="base64") == RAW


def test_base64_wrapping_gzip() -> None:
    body = base64.b64encode(gzip.compress(RAW))
    assert decode_body(body, limit=LIMIT, compression="base64") == RAW


def test_form_body_base64_and_compression_field() -> None:
    b64 = base64.b64encode(RAW).decode()
    body = f"data={quote(b64)}&compression=base64".encode()
    ctype = "application/x-www-form-urlencoded"
    assert decode_body(body, limit=LIMIT, content_type=ctype) == RAW


def test_form_body_with_unescaped_plus_in_base64() -> None:
    raw = orjson.dumps({"event": "e", "distinct_id": "u", "properties": {"x": ">>>???"}})
    b64 = base64.b64encode(raw).decode()
    assert "+" in b64 or "/" in b64
    body = ("data=" + b64).encode()  # '+' unescaped: form decoding turns it into ' '
    assert decode_body(body, limit=LIMIT) == raw


def test_form_body_urlencoded_json() -> None:
    body = ("data=" + quote(RAW.decode())).encode()
    assert decode_body(body, limit=LIMIT, content_type="application/x-www-form-urlencoded") == RAW


def test_get_query_data() -> None:
    assert decode_body(b"", limit=LIMIT, query_data=base64.b64encode(RAW).decode()) == RAW
    assert decode_body(b"", limit=LIMIT, query_data=RAW.decode()) == RAW


def test_form_without_data_field() -> None:
    with pytest.raises(InvalidInput, match="no 'data' field"):
        decode_body(b"x=1", limit=LIMIT, content_type="application/x-www-form-urlencoded")


@pytest.mark.parametrize("encoding", ["br", "deflate", "zstd"])
def test_other_content_encoding_is_named(encoding: str) -> None:
    with pytest.raises(InvalidInput, match=encoding) as info:
        decode_body(RAW, limit=LIMIT, content_encoding=encoding)
    assert info.value.field == "Content-Encoding"


def test_other_compression_is_named() -> None:
    with pytest.raises(InvalidInput, match="lz64"):
        decode_body(RAW, limit=LIMIT, compression="lz64")


def test_bad_base64() -> None:
    with pytest.raises(InvalidInput, match="base64"):
        decode_body(b"!!!not base64!!!", limit=LIMIT, compression="base64")


def test_corrupt_and_truncated_gzip() -> None:
    good = gzip.compress(RAW)
    with pytest.raises(InvalidInput, match="truncated"):
        decode_body(good[: len(good) // 2], limit=LIMIT)
    with pytest.raises(InvalidInput, match="not valid gzip"):
        decode_body(good[:10] + b"\xff" * 20, limit=LIMIT)


def test_concatenated_gzip_members() -> None:
    body = gzip.compress(b'[{"event":"a",') + gzip.compress(b'"distinct_id":"u"}]')
    assert decode_body(body, limit=LIMIT) == b'[{"event":"a","distinct_id":"u"}]'


def test_raw_body_over_limit() -> None:
    with pytest.raises(PayloadTooLarge):
        decode_body(b" " * 101, limit=100)


def test_gzip_bomb_stops_at_the_limit() -> None:
    # 256 MB of zeros compresses to ~250 KB; inflation must stop right past the 2 MB limit and
    # never hold much more than the limit in memory.
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * (1 << 20)
    bomb = b"".join(comp.compress(chunk) for _ in range(256)) + comp.flush()
    del chunk
    limit = 2 << 20
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge, match="inflates"):
            gunzip_bounded(bomb, limit)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * limit, peak


def test_base64_decoded_over_limit() -> None:
    # base64 of gzip of a large body: limit applies after every layer.
    body = base64.b64encode(gzip.compress(b" " * 5000))
    with pytest.raises(PayloadTooLarge):
        decode_body(body, limit=4000, compression="base64")


def test_parse_json_errors_say_where() -> None:
    with pytest.raises(InvalidInput, match="line 1 column"):
        parse_json(b'[{"event": }]')
    with pytest.raises(InvalidInput, match="empty"):
        parse_json(b"  ")


@given(st.binary(max_size=300), st.sampled_from([None, "gzip-js", "base64", "", "weird"]))
def test_decode_never_raises_anything_but_documented_errors(body: bytes, comp: str | None) -> None:
    try:
        parse_json(decode_body(body, limit=1000, compression=comp))
    except (InvalidInput, PayloadTooLarge) as exc:
        assert exc.message


def test_json_mislabelled_as_form_is_json() -> None:
    assert decode_body(RAW, limit=LIMIT, content_type="application/x-www-form-urlencoded") == RAW

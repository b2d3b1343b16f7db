"""PostHog body shapes, token rules, distinct_id / uuid / time rules (capture.md)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventlens.capture.posthog import parse_posthog
from eventlens.errors import AuthenticationError, InvalidInput

NOW = 1_700_000_000_000_000  # µs
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso(us: int) -> str:
    return (EPOCH + timedelta(microseconds=us)).isoformat()


def ev(**kw: Any) -> dict[str, Any]:
    return {"event": "click", "distinct_id": "u1", **kw}


def test_shape_array() -> None:
    out = parse_posthog([ev(properties={"token": "t"}), ev()], now_us=NOW)
    assert out.token == "t" and len(out.events) == 2 and not out.dead


def test_shape_batch_object() -> None:
    body = {"api_key": "t", "batch": [ev(), ev(event="b")], "sent_at": iso(NOW)}
    out = parse_posthog(body, now_us=NOW)
    assert out.token == "t"
    assert [e.event for e in out.events] == ["click", "b"]


def test_shape_single_event() -> None:
    out = parse_posthog(ev(api_key="t"), now_us=NOW)
    assert out.token == "t" and out.events[0].event == "click"


@pytest.mark.parametrize("body", ["x", 3, None, True])
def test_unknown_shape_is_400(body: Any) -> None:
    with pytest.raises(InvalidInput, match="JSON array of events"):
        parse_posthog(body, now_us=NOW)


def test_batch_not_a_list() -> None:
    with pytest.raises(InvalidInput, match="batch must be a JSON array") as info:
        parse_posthog({"api_key": "t", "batch": {"event": "x"}}, now_us=NOW)
    assert info.value.field == "batch"


@pytest.mark.parametrize("body", [[], {"api_key": "t", "batch": []}])
def test_empty_batch(body: Any) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        parse_posthog(body, now_us=NOW)


@pytest.mark.parametrize("key", ["token", "$token", "api_key"])
def test_per_event_token_keys(key: str) -> None:
    assert parse_posthog([ev(**{key: "t"})], now_us=NOW).token == "t"


def test_batch_token_key() -> None:
    assert parse_posthog({"token": "t", "batch": [ev()]}, now_us=NOW).token == "t"


def test_no_token_is_none() -> None:
    assert parse_posthog([ev()], now_us=NOW).token is None


def test_tokens_must_agree() -> None:
    with pytest.raises(AuthenticationError, match=r"batch\[1\]\.properties\.token"):
        parse_posthog([ev(token="a"), ev(properties={"token": "b"})], now_us=NOW)
    with pytest.raises(AuthenticationError):
        parse_posthog({"api_key": "a", "batch": [ev(token="b")]}, now_us=NOW)


def test_token_must_be_a_string() -> None:
    with pytest.raises(AuthenticationError, match="non-empty string"):
        parse_posthog({"api_key": 5, "batch": [ev()]}, now_us=NOW)


def test_token_of_an_invalid_event_still_counts() -> None:
    with pytest.raises(AuthenticationError):
        parse_posthog([ev(token="a"), {"token": "b"}], now_us=NOW)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (ev(distinct_id="x"), "x"),
        ({"event": "e", "$distinct_id": "y"}, "y"),
        ({"event": "e", "properties": {"distinct_id": "z"}}, "z"),
        (ev(distinct_id=42), "42"),
        (ev(distinct_id=4.0), "4"),
        (ev(distinct_id=1.5), "1.5"),
        (ev(distinct_id="a" * 300), "a" * 200),
    ],
)
def test_distinct_id_rules(event: dict[str, Any], expected: str) -> None:
    assert parse_posthog([event], now_us=NOW).events[0].distinct_id == expected


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"event": "e"}, "distinct_id is missing"),
        (ev(distinct_id=None), "distinct_id is missing"),
        (ev(distinct_id=""), "distinct_id is empty"),
        (ev(distinct_id="  "), "distinct_id is empty"),
        (ev(distinct_id={"a": 1}), "must be a string or a number"),
        (ev(distinct_id=True), "missing or null"),
        ({"distinct_id": "u"}, "event is missing"),
        (ev(event=""), "event is missing"),
        (ev(event=5), "event is missing"),
        (ev(uuid="not-a-uuid"), "not a valid UUID"),
        (ev(uuid=5), "uuid must be a string"),
        (ev(properties=[1]), "properties must be a JSON object"),
        (ev(timestamp="yesterday"), "not an ISO 8601 time"),
        (ev(timestamp={"a": 1}), "timestamp must be"),
        (ev(offset="5"), "offset must be a number"),
        (ev(**{"$set": [1]}), "$set must be a JSON object"),
        ("just a string", "must be a JSON object"),
    ],
)
def test_invalid_event_is_dead_lettered_with_reason(event: Any, reason: str) -> None:
    out = parse_posthog({"api_key": "t", "batch": [ev(), event, ev()]}, now_us=NOW)
    assert len(out.events) == 2
    assert len(out.dead) == 1
    dead = out.dead[0]
    assert dead.index == 1 and reason in dead.reason and dead.payload == event
    assert "batch[1]" in dead.reason


def test_uuid_kept_canonical_or_generated_v7() -> None:
    given_uuid = str(uuid.uuid4()).upper()
    out = parse_posthog([ev(uuid=given_uuid), ev()], now_us=NOW)
    assert out.events[0].uuid == given_uuid.lower()
    generated = uuid.UUID(out.events[1].uuid)
    assert generated.version == 7


def test_set_and_set_once_folded_into_properties() -> None:
    event = ev(**{"$set": {"a": 1}, "$set_once": {"b": 2}}, properties={"$set": {"c": 3}, "p": 1})
    props = parse_posthog([event], now_us=NOW).events[0].properties
    assert props == {"$set": {"c": 3, "a": 1}, "$set_once": {"b": 2}, "p": 1}


def test_time_rules() -> None:
    ts = NOW - 3_600_000_000
    sent = NOW - 3_600_000_000 + 5_000_000  # client clock 1 h behind, sent 5 s after the event
    batch = {
        "api_key": "t",
        "sent_at": iso(sent),
        "batch": [
            ev(timestamp=iso(ts)),
            ev(timestamp=iso(ts), properties={"$ignore_sent_at": True}),
            ev(offset=2500),
            ev(),
        ],
    }
    got = [e.timestamp for e in parse_posthog(batch, now_us=NOW).events]
    assert got == [NOW - 5_000_000, ts, NOW - 2_500_000, NOW]
    # Only timestamp: kept as sent.
    assert parse_posthog([ev(timestamp=iso(ts))], now_us=NOW).events[0].timestamp == ts


def test_query_underscore_is_sent_at_in_ms() -> None:
    ts = NOW - 10_000_000
    out = parse_posthog([ev(timestamp=iso(ts))], now_us=NOW, query_sent_at_ms=str(ts // 1000))
    assert out.events[0].timestamp == NOW
    with pytest.raises(InvalidInput, match="epoch milliseconds"):
        parse_posthog([ev()], now_us=NOW, query_sent_at_ms="soon")


def test_bad_sent_at_is_400() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_posthog({"api_key": "t", "sent_at": "when", "batch": [ev()]}, now_us=NOW)
    assert info.value.field == "sent_at"


def test_naive_and_z_timestamps_are_utc() -> None:
    now = NOW + 100 * 86_400_000_000  # after the times below: none is clamped as future
    a = parse_posthog([ev(timestamp="2024-01-02T03:04:05Z")], now_us=now).events[0]
    b = parse_posthog([ev(timestamp="2024-01-02T03:04:05")], now_us=now).events[0]
    c = parse_posthog([ev(timestamp="2024-01-02T05:04:05+02:00")], now_us=now).events[0]
    want = int(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()) * 1_000_000
    assert a.timestamp == b.timestamp == c.timestamp == want


def test_per_event_size_limit() -> None:
    big = ev(properties={"blob": "x" * 2000})
    out = parse_posthog([ev(), big], now_us=NOW, max_event=1000)
    assert len(out.events) == 1 and "per-event limit" in out.dead[0].reason


_us = st.integers(min_value=0, max_value=4_000_000_000_000_000)


@given(ts=_us, sent=_us, now=_us)
def test_skew_correction_arithmetic(ts: int, sent: int, now: int) -> None:
    """stored = now + (timestamp - sent_at), exactly, at µs resolution."""
    body = {"api_key": "t", "sent_at": iso(sent), "batch": [ev(timestamp=iso(ts))]}
    out = parse_posthog(body, now_us=now)
    expected = now + (ts - sent)
    [got] = out.events
    if 0 <= expected <= now + 23 * 3600 * 1_000_000:
        assert got.timestamp == expected and "$eventlens_timestamp_clamped" not in got.properties
    else:
        # Implausible (before 1970, more than 23 h ahead): the receive time, marked.
        assert got.timestamp == now
        assert got.properties["$eventlens_timestamp_clamped"] == (
            "past" if expected < 0 else "future"
        )
        assert got.properties["$eventlens_original_timestamp"] == iso(ts)


@pytest.mark.parametrize(
    ("event", "clamped", "original"),
    [
        (ev(offset=1e300), "past", None),
        (ev(offset=-(10**12)), "future", None),
        (ev(timestamp=-(10**13)), "past", "1653-02-10T06:13:20Z"),
        (ev(timestamp=-(10**14)), "past", "-100000000000000000 µs after 1970-01-01T00:00:00Z"),
        (ev(timestamp="2999-01-01"), "future", "2999-01-01"),
    ],
)
def test_implausible_times_are_clamped(event: Any, clamped: str, original: str | None) -> None:
    [got] = parse_posthog([event], now_us=NOW).events
    assert got.timestamp == NOW
    assert got.properties["$eventlens_timestamp_clamped"] == clamped
    if original is not None:
        assert got.properties["$eventlens_original_timestamp"] == original


@given(offset=st.integers(min_value=-23 * 3600 * 1000, max_value=10**9))
def test_offset_arithmetic(offset: int) -> None:
    out = parse_posthog([ev(offset=offset)], now_us=NOW)
    assert out.events[0].timestamp == NOW - offset * 1000

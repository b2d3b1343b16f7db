"""Segment mapping, write-key rules and limits (capture.md "Segment-style endpoints")."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from eventlens.capture.segment import basic_auth_user, parse_segment
from eventlens.errors import AuthenticationError, InvalidInput

NOW = 1_700_000_000_000_000


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def msg(kind: str, **kw: Any) -> dict[str, Any]:
    return {"type": kind, "userId": "u1", "messageId": str(uuid.uuid4()), **kw}


def one(m: dict[str, Any], kind: str | None = None) -> Any:
    body = {"batch": [m]} if kind is None else m
    out = parse_segment(body, kind=kind, now_us=NOW, auth_header=basic("wk"))
    assert not out.dead, out.dead
    return out.events[0]


def test_track() -> None:
    e = one(msg("track", event="Signed Up", properties={"plan": "pro"}))
    assert (e.event, e.distinct_id, e.properties["plan"]) == ("Signed Up", "u1", "pro")


def test_page_and_screen() -> None:
    e = one(msg("page", name="Home", category="Docs", properties={"url": "/"}))
    assert e.event == "$pageview"
    assert e.properties == {"url": "/", "name": "Home", "category": "Docs"}
    assert one(msg("screen", name="Main")).event == "$screen"


def test_identify_traits_become_set() -> None:
    e = one(msg("identify", traits={"email": "a@b.c"}))
    assert e.event == "$identify" and e.properties["$set"] == {"email": "a@b.c"}


def test_alias() -> None:
    e = one(msg("alias", userId="new", previousId="anon-1"))
    assert (e.event, e.distinct_id, e.properties["alias"]) == ("$create_alias", "new", "anon-1")


def test_group() -> None:
    e = one(msg("group", groupId="acme", traits={"size": 5}))
    assert e.event == "$groupidentify"
    assert e.properties["$group_key"] == "acme" and e.properties["$group_set"] == {"size": 5}


def test_anonymous_id_fallback_and_number_ids() -> None:
    m = {"type": "track", "event": "x", "anonymousId": 77}
    assert one(m).distinct_id == "77"


def test_message_id_uuid_kept_else_derived_deterministically() -> None:
    u = str(uuid.uuid4())
    assert one(msg("track", event="x", messageId=u)).uuid == u
    a = one(msg("track", event="x", messageId="ajs-123"))
    b = one(msg("track", event="x", messageId="ajs-123"))
    c = one(msg("track", event="x", messageId="ajs-124"))
    assert a.uuid == b.uuid != c.uuid
    uuid.UUID(a.uuid)


def test_sent_at_skew_correction() -> None:
    body = {
        "batch": [msg("track", event="x", timestamp="2020-01-01T00:00:00Z")],
        "sentAt": "2020-01-01T00:00:10Z",
    }
    out = parse_segment(body, kind=None, now_us=NOW, auth_header=basic("wk"))
    assert out.events[0].timestamp == NOW - 10_000_000


def test_single_endpoint_forces_type() -> None:
    e = one({"userId": "u", "event": "Clicked", "writeKey": "wk"}, kind="track")
    assert e.event == "Clicked"


def test_write_key_from_basic_or_body_and_must_agree() -> None:
    body = {"batch": [msg("track", event="x")], "writeKey": "wk"}
    assert parse_segment(body, kind=None, now_us=NOW).token == "wk"
    assert parse_segment(body, kind=None, now_us=NOW, auth_header=basic("wk")).token == "wk"
    with pytest.raises(AuthenticationError, match="writeKey"):
        parse_segment(body, kind=None, now_us=NOW, auth_header=basic("other"))
    with pytest.raises(AuthenticationError, match="base64"):
        basic_auth_user("Basic %%%")
    assert basic_auth_user("Bearer x") is None


@pytest.mark.parametrize(
    ("m", "reason"),
    [
        ({"type": "track", "event": "x"}, "userId/anonymousId is missing"),
        ({"type": "nope", "userId": "u"}, "type must be one of"),
        ({"type": "track", "userId": "u"}, "event is missing"),
        ({"type": "alias", "userId": "u"}, "previousId is missing"),
        ({"type": "group", "userId": "u"}, "groupId is missing"),
        ({"type": "identify", "userId": "u", "traits": "x"}, "traits must be a JSON object"),
        ({"type": "track", "userId": "u", "event": "x", "timestamp": "?"}, "ISO 8601"),
        ([1], "must be a JSON object"),
    ],
)
def test_invalid_messages_dead_lettered(m: Any, reason: str) -> None:
    ok = msg("track", event="ok")
    out = parse_segment({"batch": [ok, m]}, kind=None, now_us=NOW, auth_header=basic("k"))
    assert len(out.events) == 1 and out.dead[0].index == 1 and reason in out.dead[0].reason


def test_message_size_limit_in_batch() -> None:
    big = msg("track", event="x", properties={"b": "x" * 40_000})
    out = parse_segment(
        {"batch": [big]}, kind=None, now_us=NOW, auth_header=basic("k"), max_message=32 * 1024
    )
    assert "message limit" in out.dead[0].reason


@pytest.mark.parametrize(
    "body",
    [[], {"batch": []}, {"batch": "x"}, {"nobatch": 1}],
    ids=["list", "empty", "str", "none"],
)
def test_malformed_batches(body: Any) -> None:
    with pytest.raises(InvalidInput):
        parse_segment(body, kind=None, now_us=NOW, auth_header=basic("k"))

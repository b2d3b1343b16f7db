"""Regressions of issue 10 on the capture side (in process, real app over a memory log):
nesting depth, form field count, far past / future timestamps, control characters and lone
surrogates. Each case asserts the documented answer and that the valid events of the same
request are kept."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest

from tests.capture.conftest import App

# The documented limit (docs/capture.md); test_limit_is_the_documented_one ties it to the code.
MAX_DEPTH = 64


def ev(name: str = "ok", **kw: Any) -> dict[str, Any]:
    return {"event": name, "distinct_id": "u1", **kw}


def nested(depth: int) -> Any:
    """A value `depth` containers deep ({"a": {"a": ... {}}})."""
    value: Any = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def _deep_event_text(depth: int) -> bytes:
    """An event nesting `depth` levels (the event object is level 1), as JSON text: built as
    bytes so any depth works without recursion."""
    head = b'{"event":"deep","distinct_id":"u","properties":' + b'{"a":' * (depth - 2) + b"{}"
    return head + b"}" * (depth - 2) + b"}"


def test_limit_is_the_documented_one() -> None:
    from pathlib import Path

    from eventlens.capture import fields

    assert fields.MAX_DEPTH == MAX_DEPTH
    doc = (Path(__file__).parents[2] / "docs" / "capture.md").read_text()
    assert f"{MAX_DEPTH} levels" in doc


# -- nesting depth (defect 2) -------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 255, 600, 1020])
def test_too_deep_event_is_dead_lettered_and_the_rest_kept(app: App, depth: int) -> None:
    body = (
        b'{"api_key":'
        + orjson.dumps(app.token)
        + b',"batch":[{"event":"ok","distinct_id":"u"},'
        + _deep_event_text(depth)
        + b"]}"
    )
    r = app.client.post("/batch/", content=body)
    assert r.status_code == 200, r.text
    [rej] = r.json()["rejected"]
    assert rej["index"] == 1 and f"{MAX_DEPTH} levels" in rej["reason"]
    assert [e.event for e in app.log.events()] == ["ok"]
    [dead] = app.log.dead()
    assert dead.index == 1 and "nests" in dead.reason


def test_event_at_the_depth_limit_is_accepted(app: App) -> None:
    # The event object is level 1, properties level 2: MAX_DEPTH - 1 levels of properties fit.
    event = ev(properties=nested(MAX_DEPTH - 1))
    r = app.client.post("/batch/", json={"api_key": app.token, "batch": [event]})
    assert r.status_code == 200 and "rejected" not in r.json(), r.text
    assert app.log.events()[0].properties == event["properties"]


@pytest.mark.parametrize("depth", [1030, 10_000, 200_000])
def test_undecodable_depth_is_a_400_naming_the_limit(app: App, depth: int) -> None:
    body = b'{"api_key":' + orjson.dumps(app.token) + b',"batch":[' + _deep_event_text(depth)
    r = app.client.post("/batch/", content=body + b"]}")
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert "nests deeper than" in detail and f"{MAX_DEPTH} levels" in detail
    assert app.log.records == []


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300])
def test_segment_too_deep_message_is_dead_lettered(app: App, depth: int) -> None:
    deep = b'{"type":"track","event":"deep","userId":"u","properties":' + b"[" * depth
    deep += b"]" * depth + b"}"
    body = (
        b'{"writeKey":'
        + orjson.dumps(app.token)
        + b',"batch":[{"type":"track","event":"ok","userId":"u"},'
        + deep
        + b"]}"
    )
    r = app.client.post("/v1/batch", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert [x["index"] for x in r.json()["rejected"]] == [1]
    assert [e.event for e in app.log.events()] == ["ok"]


def test_segment_undecodable_depth_is_a_400(app: App) -> None:
    body = b'{"writeKey":"x","batch":[' + b"[" * 5000 + b"]" * 5000 + b"]}"
    r = app.client.post("/v1/batch", content=body)
    assert r.status_code == 400 and "nests deeper than" in r.json()["detail"]


# -- form field count (defect 3) ----------------------------------------------------------------


def _post_form(app: App, extra_fields: int) -> httpx.Response:
    """A form-encoded capture of one event, plus `extra_fields` unrelated fields."""
    data = quote(orjson.dumps(ev(token=app.token)).decode())
    body = "&".join([f"data={data}"] + [f"f{i}=1" for i in range(extra_fields)])
    return app.client.post(
        "/e/", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )


def test_form_with_too_many_fields_is_a_400_naming_the_limit(app: App) -> None:
    r = _post_form(app, 150)
    assert r.status_code == 400, r.text
    assert "100 fields" in r.json()["detail"] and r.json()["field"] == "body"


def test_form_with_a_few_fields_still_works(app: App) -> None:
    r = _post_form(app, 50)
    assert r.status_code == 200, r.text


# -- far past / future timestamps (defect 8) ----------------------------------------------------


def _now_us() -> int:
    return int(datetime.now(UTC).timestamp() * 1_000_000)


@pytest.mark.parametrize(
    ("timestamp", "clamped"),
    [
        ("0001-01-01T00:00:00Z", "past"),
        ("1969-12-31T23:59:59Z", "past"),
        ("9999-12-31T23:59:59Z", "future"),
        ("2200-01-01T00:00:00+00:00", "future"),
        (-1, "past"),  # epoch ms
    ],
)
def test_implausible_timestamp_is_clamped_to_receive_time(
    app: App, timestamp: Any, clamped: str
) -> None:
    before = _now_us()
    r = app.client.post("/batch/", json={"api_key": app.token, "batch": [ev(timestamp=timestamp)]})
    after = _now_us()
    assert r.status_code == 200 and "rejected" not in r.json(), r.text
    [e] = app.log.events()
    assert before <= e.timestamp <= after
    assert e.properties["$eventlens_timestamp_clamped"] == clamped
    original = e.properties["$eventlens_original_timestamp"]
    assert isinstance(original, str)
    if isinstance(timestamp, str):
        assert original == timestamp


def test_timestamp_skew_corrected_into_the_future_is_clamped(app: App) -> None:
    # Client clock 1 h behind but the event claims 2 days after sent_at: future after correction.
    body = {
        "api_key": app.token,
        "sent_at": "2024-01-01T00:00:00Z",
        "batch": [ev(timestamp="2024-01-03T00:00:00Z")],
    }
    r = app.client.post("/batch/", json=body)
    assert r.status_code == 200
    [e] = app.log.events()
    assert e.properties["$eventlens_timestamp_clamped"] == "future"
    assert e.properties["$eventlens_original_timestamp"] == "2024-01-03T00:00:00Z"


def test_plausible_timestamps_are_kept(app: App) -> None:
    soon = datetime.fromtimestamp(_now_us() / 1e6 + 22 * 3600, UTC).isoformat()
    batch = [ev(timestamp="1970-01-01T00:00:00Z"), ev(timestamp=soon)]
    r = app.client.post("/batch/", json={"api_key": app.token, "batch": batch})
    assert r.status_code == 200
    got = app.log.events()
    assert got[0].timestamp == 0
    assert all("$eventlens_timestamp_clamped" not in e.properties for e in got)


def test_segment_timestamps_follow_the_same_policy(app: App) -> None:
    msg = {"type": "track", "event": "x", "userId": "u", "timestamp": "0001-01-01T00:00:00Z"}
    r = app.client.post("/v1/track", json={**msg, "writeKey": app.token})
    assert r.status_code == 200
    [e] = app.log.events()
    assert e.properties["$eventlens_timestamp_clamped"] == "past"


# -- control characters and lone surrogates -----------------------------------------------------


@pytest.mark.parametrize(
    ("event", "needle"),
    [
        (ev(distinct_id="a\x00b"), "distinct_id contains control character U+0000"),
        (ev(distinct_id="a\nb"), "distinct_id contains control character U+000A"),
        (ev(name="x\x00"), "event contains control character U+0000"),
        (ev(name="x\x1b[31m"), "event contains control character U+001B"),
        (ev(uuid="0190a0c0-0000-7000-8000-00000000000\x00"), "not a valid UUID"),
        (ev(uuid=" 0190a0c0-0000-7000-8000-000000000001"), "not a valid UUID"),
        (ev(uuid="0190a0c0_0000_7000_8000_000000000001"), "not a valid UUID"),
        (
            {"event": "x", "properties": {"distinct_id": "p\x00q"}},
            "distinct_id contains control character",
        ),
    ],
)
def test_control_characters_in_ids_and_names_are_dead_lettered(
    app: App, event: dict[str, Any], needle: str
) -> None:
    r = app.client.post("/batch/", json={"api_key": app.token, "batch": [ev("good"), event]})
    assert r.status_code == 200, r.text
    [rej] = r.json()["rejected"]
    assert rej["index"] == 1 and needle in rej["reason"], rej
    assert [e.event for e in app.log.events()] == ["good"]


def test_segment_control_characters_in_ids_are_dead_lettered(app: App) -> None:
    batch = [
        {"type": "track", "event": "good", "userId": "u"},
        {"type": "track", "event": "bad", "userId": "a\x00b"},
        {"type": "alias", "userId": "u", "previousId": "p\x01"},
    ]
    r = app.client.post("/v1/batch", json={"writeKey": app.token, "batch": batch})
    assert r.status_code == 200
    assert [x["index"] for x in r.json()["rejected"]] == [1, 2]
    assert "control character" in r.json()["rejected"][0]["reason"]


def test_control_characters_in_property_values_and_keys_are_stored_exactly(app: App) -> None:
    props = {"k\x00ey": "v\x00al\x1f", "$set": {"n\x00": "m\x00"}, "tab": "a\tb"}
    r = app.client.post("/batch/", json={"api_key": app.token, "batch": [ev(properties=props)]})
    assert r.status_code == 200 and "rejected" not in r.json(), r.text
    [e] = app.log.events()
    assert e.properties == props


@pytest.mark.parametrize(
    "bad",
    [
        b'"\\ud800"',  # lone high surrogate, escaped (what JSON.stringify sends)
        b'"x\\udfffy"',  # lone low surrogate
        b'"\\ud83d\\ud83d"',  # two high surrogates
    ],
)
@pytest.mark.parametrize("where", ["value", "key", "distinct_id"])
def test_lone_surrogate_dead_letters_only_its_event(app: App, bad: bytes, where: str) -> None:
    if where == "value":
        broken = b'{"event":"bad","distinct_id":"u","properties":{"p":' + bad + b"}}"
    elif where == "key":
        broken = b'{"event":"bad","distinct_id":"u","properties":{' + bad + b":1}}"
    else:
        broken = b'{"event":"bad","distinct_id":' + bad + b"}"
    body = (
        b'{"api_key":'
        + orjson.dumps(app.token)
        + b',"batch":[{"event":"good","distinct_id":"u"},'
        + broken
        + b"]}"
    )
    r = app.client.post("/batch/", content=body)
    assert r.status_code == 200, r.text
    [rej] = r.json()["rejected"]
    assert rej["index"] == 1 and "lone surrogate" in rej["reason"]
    assert [e.event for e in app.log.events()] == ["good"]
    [dead] = app.log.dead()
    # The dead letter keeps the event exactly, as JSON text with the surrogate escaped.
    assert isinstance(dead.payload, dict)
    assert "\\ud" in dead.payload["$eventlens_raw_json"]


def test_invalid_utf8_is_a_400_that_says_so(app: App) -> None:
    # A surrogate encoded as UTF-8 bytes is not UTF-8: the body cannot be read as text at all.
    body = b'{"api_key":"t","batch":[{"event":"x","distinct_id":"\xed\xa0\x80"}]}'
    r = app.client.post("/batch/", content=body)
    assert r.status_code == 400 and "UTF-8" in r.json()["detail"], r.text


def test_nul_regression_body_is_accepted_without_the_bad_event(app: App) -> None:
    body = {"api_key": app.token, "batch": [{"event": "x", "distinct_id": "a\u0000b"}]}
    for _ in range(2):
        r = app.client.post("/batch/", json=body)
        assert r.status_code == 200
        assert "control character" in r.json()["rejected"][0]["reason"]
    assert app.log.events() == [] and len(app.log.dead()) == 2


def test_dead_letters_of_deep_and_surrogate_events_replay_to_the_same_reason(app: App) -> None:
    """What the dead-letter store keeps for them is storable, and replay (which re-runs the
    capture parser on it) refuses it again for the same reason instead of storing a cut-down
    or altered event; an operator's fix of the raw JSON text replays."""
    from eventlens.capture.fields import RAW_JSON
    from eventlens.capture.replay import revalidate
    from eventlens.errors import InvalidEvent

    body = (
        b'{"api_key":'
        + orjson.dumps(app.token)
        + b',"batch":['
        + _deep_event_text(300)
        + b',{"event":"s","distinct_id":"u","properties":{"p":"\\ud800"}}]}'
    )
    r = app.client.post("/batch/", content=body)
    assert [x["index"] for x in r.json()["rejected"]] == [0, 1]
    deep, surrogate = app.log.dead()
    for n, (dead, needle) in enumerate([(deep, "levels deep"), (surrogate, "lone surrogate")]):
        orjson.dumps(dead.payload)  # storable
        with pytest.raises(InvalidEvent, match=needle):
            revalidate(
                dead.payload, project_id=1, dead_letter_id=n, received_at_us=0, max_event=10**6
            )
    fixed = {RAW_JSON: surrogate.payload[RAW_JSON].replace("\\ud800", "fixed")}
    event = revalidate(fixed, project_id=1, dead_letter_id=2, received_at_us=0, max_event=10**6)
    assert event.properties == {"p": "fixed"}


@pytest.mark.parametrize("depth", [1, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 200, 254])
def test_within_depth_is_exact(depth: int) -> None:
    """The one-pass batch check agrees with the per-event walk at every depth (it leans on
    orjson's 254-level limit: this catches an orjson upgrade that moves it)."""
    from eventlens.capture.fields import check_structure, within_depth
    from eventlens.errors import InvalidEvent

    items = [{"a": 1}, nested(depth), [nested(depth - 1)] if depth > 1 else 5]
    try:
        for item in items:
            check_structure(item, "x")
        walked = True
    except InvalidEvent:
        walked = False
    assert within_depth(items) is walked is (depth <= MAX_DEPTH)

"""Hypothesis fuzz of capture bodies against the real app (in process): never a 5xx, always a
documented status with a message, and every event of an accepted request is either accepted or
dead-lettered (nothing silently dropped)."""

from __future__ import annotations

import base64
import gzip
from typing import Any

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.capture.conftest import App

json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
field_values: dict[str, st.SearchStrategy[Any]] = {
    "event": st.sampled_from(["$pageview", "click", ""]) | json_values,
    "distinct_id": st.text(max_size=250) | st.integers(-(2**63), 2**63 - 1) | json_values,
    "$distinct_id": st.text(max_size=5) | json_values,
    "uuid": st.uuids().map(str) | st.text(max_size=40) | json_values,
    "timestamp": st.datetimes().map(lambda d: d.isoformat()) | st.text(max_size=25) | json_values,
    "offset": st.integers(-(10**12), 10**12) | st.floats() | json_values,
    "properties": st.dictionaries(st.text(max_size=8), json_values, max_size=4) | json_values,
    "$set": st.dictionaries(st.text(max_size=5), json_values, max_size=2) | json_values,
    "$set_once": json_values,
    "token": st.just("TOKEN") | json_values,
    "$ignore_sent_at": st.booleans(),
}
_mostly_valid = st.fixed_dictionaries(
    {
        "event": st.sampled_from(["click", "$identify"]),
        "distinct_id": st.text(min_size=1, max_size=9),
    },
    optional={k: v for k, v in field_values.items() if k not in ("event", "distinct_id")},
)
events = _mostly_valid | st.fixed_dictionaries({}, optional=field_values) | json_values


@st.composite
def bodies(draw: st.DrawFn) -> tuple[Any, int]:
    batch = draw(st.lists(events, min_size=0, max_size=6))
    shape = draw(st.sampled_from(["array", "batch", "single", "junk"]))
    if shape == "array":
        if batch and isinstance(batch[0], dict) and draw(st.booleans()):
            batch[0] = {**batch[0], "token": "TOKEN"}  # posthog-js puts it in each event
        return batch, len(batch)
    if shape == "batch":
        body: dict[str, Any] = {"api_key": "TOKEN", "batch": batch}
        if draw(st.booleans()):
            body["sent_at"] = draw(st.datetimes().map(lambda d: d.isoformat()) | json_values)
        return body, len(batch)
    if shape == "single":
        one = draw(events)
        if isinstance(one, dict):
            one = {**one, "api_key": "TOKEN"}
        return one, 1
    return draw(json_values), 1


ENCODINGS = ["plain", "gzip", "gzip-js", "base64", "form"]
DOCUMENTED = {400, 401, 413}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body_and_count=bodies(),
    encoding=st.sampled_from(ENCODINGS),
    path=st.sampled_from(["/batch/", "/e/", "/i/v0/e/"]),
)
def test_fuzz_posthog(app: App, body_and_count: tuple[Any, int], encoding: str, path: str) -> None:
    app.log.records.clear()
    body, count = body_and_count
    raw = orjson.dumps(body).replace(b'"TOKEN"', orjson.dumps(app.token))
    headers: dict[str, str] = {}
    if encoding == "gzip":
        raw, headers = gzip.compress(raw), {"Content-Encoding": "gzip"}
    elif encoding == "gzip-js":
        raw, path = gzip.compress(raw), path + "?compression=gzip-js"
    elif encoding == "base64":
        raw, path = base64.b64encode(raw), path + "?compression=base64"
    elif encoding == "form":
        raw = b"data=" + base64.b64encode(raw).replace(b"+", b"%2B").replace(b"/", b"%2F")
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    r = app.client.post(path, content=raw, headers=headers)
    event(f"status {r.status_code}")
    assert r.status_code == 200 or r.status_code in DOCUMENTED, r.text
    if r.status_code != 200:
        assert r.json()["detail"]
        assert app.log.records == []
        return
    assert len(app.log.records) == 1
    events_, dead = app.log.events(), app.log.dead()
    assert len(events_) + len(dead) == count
    assert [d["index"] for d in r.json().get("rejected", [])] == [d.index for d in dead]


segment_messages = (
    st.fixed_dictionaries(
        {"type": st.sampled_from(["track", "page", "screen", "identify", "alias", "group"])},
        optional={
            "event": json_values | st.just("Bought"),
            "userId": st.text(max_size=5) | json_values,
            "anonymousId": st.text(max_size=5),
            "messageId": st.text(max_size=10) | st.uuids().map(str),
            "timestamp": st.datetimes().map(lambda d: d.isoformat()) | json_values,
            "properties": json_values,
            "traits": json_values,
            "previousId": json_values,
            "groupId": json_values,
            "context": json_values,
        },
    )
    | json_values
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batch=st.lists(segment_messages, max_size=6),
    sent_at=st.none() | st.datetimes().map(lambda d: d.isoformat()),
)
def test_fuzz_segment(app: App, batch: list[Any], sent_at: str | None) -> None:
    app.log.records.clear()
    body: dict[str, Any] = {"batch": batch, "writeKey": app.token}
    if sent_at is not None:
        body["sentAt"] = sent_at
    r = app.client.post("/v1/batch", json=body)
    event(f"status {r.status_code}")
    assert r.status_code == 200 or r.status_code in DOCUMENTED, r.text
    if r.status_code == 200:
        assert len(app.log.events()) + len(app.log.dead()) == len(batch)
    else:
        assert r.json()["detail"]

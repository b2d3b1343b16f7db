"""The capture endpoints in process (ASGI): paths, methods, encodings, statuses, CORS."""

from __future__ import annotations

import base64
import gzip
import uuid
import zlib
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from tests.capture.conftest import App

POSTHOG_PATHS = ["/batch", "/e", "/i/v0/e", "/capture", "/track", "/engage"]


def ev(i: int = 0, **kw: Any) -> dict[str, Any]:
    return {"event": f"e{i}", "distinct_id": f"u{i}", "properties": {"i": i}, **kw}


@pytest.mark.parametrize("path", POSTHOG_PATHS + [p + "/" for p in POSTHOG_PATHS])
def test_every_posthog_path_accepts_a_batch(app: App, path: str) -> None:
    r = app.client.post(path, json={"api_key": app.token, "batch": [ev(1), ev(2)]})
    assert r.status_code == 200 and r.json() == {"status": 1}
    assert [e.event for e in app.log.events()] == ["e1", "e2"]
    assert app.log.decoded()[0][0] == app.project_id


def test_posthog_js_array_gzip_js(app: App) -> None:
    body = gzip.compress(orjson.dumps([ev(1, properties={"token": app.token})]))
    r = app.client.post(
        "/e/?compression=gzip-js&_=1700000000000&ver=1.0",
        content=body,
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 200, r.text
    assert app.log.events()[0].distinct_id == "u1"


def test_posthog_js_base64_form(app: App) -> None:
    data = base64.b64encode(orjson.dumps(ev(3, properties={"token": app.token}))).decode()
    r = app.client.post(
        "/e/",
        content=f"data={quote(data)}&compression=base64",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    assert app.log.events()[0].event == "e3"


def test_get_with_data(app: App) -> None:
    data = base64.b64encode(orjson.dumps(ev(4, token=app.token))).decode()
    r = app.client.get("/e/", params={"data": data, "ip": "1"})
    assert r.status_code == 200 and app.log.events()[0].event == "e4"
    r = app.client.get("/e/")
    assert r.status_code == 400 and "data=" in r.json()["detail"]


def test_content_encoding_gzip(app: App) -> None:
    body = gzip.compress(orjson.dumps({"api_key": app.token, "batch": [ev(5)]}))
    r = app.client.post("/batch/", content=body, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200 and app.log.events()[0].event == "e5"


def test_unsupported_encoding_named(app: App) -> None:
    r = app.client.post("/batch/", content=b"xx", headers={"Content-Encoding": "br"})
    assert r.status_code == 400 and "'br'" in r.json()["detail"]
    r = app.client.post("/e/?compression=lz64", content=b"xx")
    assert r.status_code == 400 and "lz64" in r.json()["detail"]


def test_mixed_valid_and_invalid_events(app: App) -> None:
    bad_uuid = ev(2, uuid="nope")
    body = {"api_key": app.token, "batch": [ev(1), bad_uuid, {"event": "x"}, ev(4)]}
    r = app.client.post("/batch/", json=body)
    assert r.status_code == 200
    rejected = r.json()["rejected"]
    assert [x["index"] for x in rejected] == [1, 2]
    assert "uuid" in rejected[0]["reason"] and "distinct_id" in rejected[1]["reason"]
    assert [e.event for e in app.log.events()] == ["e1", "e4"]
    assert [d.payload for d in app.log.dead()] == [bad_uuid, {"event": "x"}]


def test_all_invalid_still_200_and_dead_lettered(app: App) -> None:
    r = app.client.post("/e/", json={"token": app.token, "event": ""})
    assert r.status_code == 200 and len(r.json()["rejected"]) == 1
    assert len(app.log.dead()) == 1 and app.log.events() == []


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 400, "empty"),
        (b'"text"', 400, "JSON array of events"),
        (b"[]", 400, "empty"),
        (b'{"batch": 5}', 400, "batch must be a JSON array"),
    ],
)
def test_malformed_bodies(app: App, body: bytes, status: int, needle: str) -> None:
    r = app.client.post("/batch/", content=body)
    assert r.status_code == status and needle in r.json()["detail"]
    assert app.log.records == []


def test_token_problems_are_401(app: App) -> None:
    r = app.client.post("/batch/", json={"batch": [ev()]})
    assert r.status_code == 401 and "no project token" in r.json()["detail"]
    r = app.client.post("/batch/", json={"api_key": "phc_unknown", "batch": [ev()]})
    assert r.status_code == 401 and "unknown project token" in r.json()["detail"]
    r = app.client.post("/batch/", json={"api_key": app.token, "batch": [ev(token="phc_other")]})
    assert r.status_code == 401 and "batch[0].token" in r.json()["detail"]
    assert app.log.records == []


def test_project_created_while_running_is_accepted(app: App) -> None:
    r = app.client.post("/batch/", json={"api_key": "phc_soon", "batch": [ev()]})
    assert r.status_code == 401
    new = app.runtime.metadata.create_project("later").project
    r = app.client.post("/batch/", json={"api_key": new.token, "batch": [ev()]})
    assert r.status_code == 200 and app.log.decoded()[0][0] == new.id


def test_oversize_body_413(app: App) -> None:
    big = orjson.dumps({"api_key": app.token, "batch": [ev(properties={"x": "y" * 3_000_000})]})
    r = app.client.post("/e/", content=big)
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    # The same body is fine on /batch (20 MB) but its event is over 1 MB: dead-lettered.
    r = app.client.post("/batch/", content=big)
    assert r.status_code == 200 and "per-event limit" in r.json()["rejected"][0]["reason"]


def test_large_batch_under_20mb_is_accepted(app: App) -> None:
    batch = [ev(i, properties={"pad": "x" * 900_000}) for i in range(18)]  # ~16 MB
    r = app.client.post("/batch/", json={"api_key": app.token, "batch": batch})
    assert r.status_code == 200 and "rejected" not in r.json()
    assert len(app.log.events()) == 18


def test_gzip_bomb_413(app: App) -> None:
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = b"".join(comp.compress(b"\0" * (1 << 20)) for _ in range(64)) + comp.flush()
    r = app.client.post("/e/", content=bomb, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413 and "inflates" in r.json()["detail"]


def test_unavailable_log_503(app: App) -> None:
    app.log.fail = True
    r = app.client.post("/batch/", json={"api_key": app.token, "batch": [ev()]})
    assert r.status_code == 503 and r.json()["type"] == "Unavailable"


def test_wrong_method_405_and_unknown_path_404(app: App) -> None:
    r = app.client.request("PUT", "/batch/")
    assert r.status_code == 405 and "PUT" in r.json()["detail"]
    assert "POST" in r.headers["allow"]
    r = app.client.get("/v1/batch")
    assert r.status_code == 405
    r = app.client.post("/nope/")
    assert r.status_code == 404 and "/nope/" in r.json()["detail"]


def test_cors_preflight_and_headers(app: App) -> None:
    origin = {"Origin": "https://shop.example"}
    r = app.client.request(
        "OPTIONS", "/e/", headers={**origin, "Access-Control-Request-Headers": "content-type"}
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://shop.example"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-allow-headers"] == "content-type"
    r = app.client.post("/e/", json={"event": "x"}, headers=origin)  # errors carry CORS too
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == origin["Origin"]


def test_array_config_and_flags(app: App) -> None:
    r = app.client.get(f"/array/{app.token}/config")
    assert r.json()["supportedCompression"] == ["gzip-js", "base64"]
    assert r.json()["token"] == app.token and r.json()["hasFeatureFlags"] is False
    r = app.client.post("/flags/?v=4", json={"api_key": app.token, "distinct_id": "u"})
    assert r.status_code == 200 and r.json()["flags"] == {} and r.json()["featureFlags"] == {}


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def test_segment_batch_and_single_endpoints(app: App) -> None:
    mid = str(uuid.uuid4())
    body = {"batch": [{"type": "track", "event": "Bought", "userId": "u", "messageId": mid}]}
    r = app.client.post("/v1/batch", json=body, headers=_basic(app.token))
    assert r.status_code == 200 and r.json() == {"success": True}
    r = app.client.post(
        "/v1/identify/", json={"userId": "u", "traits": {"a": 1}, "writeKey": app.token}
    )
    assert r.status_code == 200
    events = app.log.events()
    assert (events[0].event, events[0].uuid) == ("Bought", mid)
    assert events[1].event == "$identify" and events[1].properties["$set"] == {"a": 1}


def test_segment_limits_are_400(app: App) -> None:
    big = {"userId": "u", "event": "x", "properties": {"b": "x" * 40_000}}
    r = app.client.post("/v1/track", json=big, headers=_basic(app.token))
    assert r.status_code == 400 and "32 KB" in r.json()["detail"]
    batch = {"batch": [big] * 14}
    r = app.client.post("/v1/batch", json=batch, headers=_basic(app.token))
    assert r.status_code == 400 and "500 KB" in r.json()["detail"]
    r = app.client.post(
        "/v1/batch", json={"batch": [big, {**big, "type": "track"}]}, headers=_basic(app.token)
    )
    assert r.status_code == 200 and len(r.json()["rejected"]) == 2


def test_segment_auth(app: App) -> None:
    body = {"batch": [{"type": "track", "event": "x", "userId": "u"}]}
    assert app.client.post("/v1/batch", json=body).status_code == 401
    r = app.client.post("/v1/batch", json=body, headers=_basic("wrong"))
    assert r.status_code == 401


def test_metrics_count_requests_and_events(app: App) -> None:
    app.client.post("/batch/", json={"api_key": app.token, "batch": [ev(), {"event": "x"}]})
    text = app.client.get("/metrics").text
    assert 'eventlens_capture_requests_total{family="posthog",status="200"}' in text
    assert 'eventlens_capture_events_total{outcome="rejected"}' in text


def test_segment_gzip(app: App) -> None:
    body = {"batch": [{"type": "track", "event": "Zipped", "userId": "u"}]}
    r = app.client.post(
        "/v1/batch",
        content=gzip.compress(orjson.dumps(body)),
        headers={**_basic(app.token), "Content-Encoding": "gzip"},
    )
    assert r.status_code == 200 and app.log.events()[0].event == "Zipped"

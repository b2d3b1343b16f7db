"""Generated query bodies against a real server: valid-shaped and mutated queries of every kind,
sent to /query and saved as insights. Never a 5xx, never past the deadline, and the server keeps
answering correctly afterwards."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import Deployment
from tests.support.query_strategies import HOSTILE, queries

DEADLINE_S = 20.0
CHECK = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview"}],
    "dateRange": {"date_from": "-7d"},
}
_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)


def _timed(c: httpx.Client, method: str, url: str, **kw: Any) -> httpx.Response:
    t0 = time.perf_counter()
    r = c.request(method, url, **kw)
    elapsed = time.perf_counter() - t0
    assert r.status_code < 500, (r.status_code, r.text[:2000], kw)
    assert elapsed < DEADLINE_S, (elapsed, kw)
    if r.status_code >= 400:
        body = r.json()
        assert body["type"] and body["detail"], body
    return r


@pytest.fixture(scope="module")
def client(deployment: Deployment) -> Any:
    with deployment.client(deployment.a["api_key"]) as c:
        yield c


@_SETTINGS
@given(q=queries(), engine=st.sampled_from(["parallel", "reference"]))
def test_generated_queries_never_5xx(
    deployment: Deployment, client: httpx.Client, q: Any, engine: str
) -> None:
    r = _timed(
        client,
        "POST",
        f"/api/projects/{deployment.a['id']}/query",
        json={"query": q, "engine": engine},
    )
    assert r.status_code in (200, 400), r.text


@_SETTINGS
@given(q=queries(), name=st.one_of(st.text(max_size=30), HOSTILE))
def test_generated_insights_never_5xx(
    deployment: Deployment, client: httpx.Client, q: Any, name: Any
) -> None:
    base = f"/api/projects/{deployment.a['id']}/insights"
    r = _timed(client, "POST", base, json={"name": name, "query": q})
    if r.status_code == 201:
        insight = r.json()
        _timed(client, "PATCH", f"{base}/{insight['id']}", json={"query": q})
        _timed(client, "DELETE", f"{base}/{insight['id']}")


@_SETTINGS
@given(
    body=st.one_of(
        HOSTILE,
        st.dictionaries(st.sampled_from(["query", "engine", "timeout", "refresh"]), HOSTILE),
    ),
    item=st.one_of(st.integers(-(2**70), 2**70).map(str), st.text(max_size=20)),
)
def test_generated_request_shapes_and_path_ids_never_5xx(
    deployment: Deployment, client: httpx.Client, body: Any, item: str
) -> None:
    pid = deployment.a["id"]
    _timed(client, "POST", f"/api/projects/{pid}/query", json=body)
    segment = quote(item, safe="") or "0"
    _timed(client, "GET", f"/api/projects/{pid}/insights/{segment}")
    _timed(client, "PATCH", f"/api/projects/{pid}/dashboards/{segment}", json={"name": "n"})
    _timed(client, "GET", f"/api/projects/{segment}/dashboards")


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000,
        b'{"query": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"query": {"kind": "TrendsQuery", "series": [{"event": 1' + b"0" * 5000 + b"}]}}",
        b"\xff\xfe not json",
        b'{"query": NaN}',
    ],
)
def test_raw_bodies_never_5xx(deployment: Deployment, client: httpx.Client, raw: bytes) -> None:
    _timed(
        client,
        "POST",
        f"/api/projects/{deployment.a['id']}/query",
        content=raw,
        headers={"content-type": "application/json"},
    )


def test_server_still_answers_correctly_afterwards(
    deployment: Deployment, client: httpx.Client
) -> None:
    r = client.post(f"/api/projects/{deployment.a['id']}/query", json={"query": CHECK})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["count"] == 3

"""PostHog's refresh modes through the real server: the envelope, polling a background
refresh with GET /api/projects/{id}/query/{query_id}, force_cache misses, and the 4xx."""

from __future__ import annotations

import time
from typing import Any

from tests.api.conftest import Deployment

QUERY = {
    "kind": "StickinessQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview"}],
    "dateRange": {"date_from": "-30d"},
}


def _post(d: Deployment, body: Any) -> Any:
    with d.client(d.a["api_key"]) as c:
        return c.post(f"/api/projects/{d.a['id']}/query", json=body)


def _status(d: Deployment, query_id: str, key: str | None = None, project: Any = None) -> Any:
    with d.client(key or d.a["api_key"]) as c:
        return c.get(f"/api/projects/{project or d.a['id']}/query/{query_id}")


def test_async_on_a_cold_cache_answers_a_status_to_poll_until_complete(
    deployment: Deployment,
) -> None:
    d = deployment
    query = {**QUERY, "series": [{"kind": "EventsNode", "event": "signup"}]}
    cold = _post(d, {"query": query, "refresh": "async"}).json()
    assert cold["results"] is None and cold["is_cached"] is False
    status = cold["query_status"]
    assert status["query_async"] is True and status["team_id"] == d.a["id"]
    for _ in range(500):
        polled = _status(d, status["id"])
        assert polled.status_code == 200, polled.text
        body = polled.json()["query_status"]
        if body["complete"]:
            break
        time.sleep(0.02)
    assert body["complete"] and not body["error"] and body["end_time"]
    blocking = _post(d, {"query": query}).json()
    assert blocking["cache"]["result"] == "hit"  # the background refresh filled the cache
    assert (
        body["results"] == blocking["results"] and body["data_version"] == blocking["data_version"]
    )
    # Another project's key cannot read it; an unknown id is a 404 too.
    assert _status(d, status["id"], d.b["api_key"], d.b["id"]).status_code == 404
    assert _status(d, "0" * 32).status_code == 404


def test_blocking_then_hit_and_the_posthog_envelope(deployment: Deployment) -> None:
    d = deployment
    first = _post(d, {"query": QUERY, "refresh": "force_blocking"}).json()
    again = _post(d, {"query": QUERY}).json()
    assert first["is_cached"] is False and again["is_cached"] is True
    assert again["cache"]["result"] == "hit" and again["results"] == first["results"]
    assert again["last_refresh"] == first["last_refresh"] == again["next_allowed_client_refresh"]
    assert again["cache_key"] == first["cache_key"] and len(again["cache_key"]) == 64
    assert again["data_version"] == again["current_data_version"]
    assert again["versions_behind"] == 0 and again["query_status"] is None


def test_presentation_fields_are_served_the_same_cached_answer(deployment: Deployment) -> None:
    d = deployment
    base = {**QUERY, "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}]}
    first = _post(d, {"query": base}).json()
    drawn = {**base, "stickinessFilter": {"showLegend": True, "showValuesOnSeries": True}}
    second = _post(d, {"query": drawn}).json()
    assert second["cache"]["result"] == "hit" and second["cache_key"] == first["cache_key"]
    assert second["fingerprint"] != first["fingerprint"]


def test_force_cache_on_a_cold_cache_is_a_miss_without_computing(deployment: Deployment) -> None:
    d = deployment
    query = {**QUERY, "series": [{"kind": "EventsNode", "event": "never-asked"}]}
    r = _post(d, {"query": query, "refresh": "force_cache"})
    assert r.status_code == 200
    body = r.json()
    assert body["results"] is None and body["cache"]["result"] == "miss"
    assert body["data_version"] is None and body["is_cached"] is False
    legacy = _post(d, {"query": query, "refresh": False}).json()  # PostHog's false: cache only
    assert legacy["results"] is None


def test_an_unknown_refresh_mode_is_a_400_naming_refresh(deployment: Deployment) -> None:
    d = deployment
    r = _post(d, {"query": QUERY, "refresh": "sometimes"})
    assert r.status_code == 400 and r.json()["field"] == "refresh"
    assert "force_blocking" in r.json()["detail"]

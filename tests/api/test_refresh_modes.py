"""PostHog's refresh modes through the real server: the envelope, polling a background
refresh with GET /api/projects/{id}/query/{query_id}, force_cache misses, and the 4xx."""

from __future__ import annotations

import time
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families

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


def _served(metrics_text: str) -> dict[tuple[str, str], float]:
    """eventlens_query_seconds observations by (cache, outcome), from a /metrics scrape."""
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "eventlens_query_seconds_count":
                key = (sample.labels["cache"], sample.labels["outcome"])
                counts[key] = counts.get(key, 0.0) + sample.value
    return counts


def test_every_served_request_is_one_sli_observation_labelled_how_it_was_served(
    deployment: Deployment,
) -> None:
    d = deployment
    query = {**QUERY, "dateRange": {"date_from": "-14d"}}
    with d.client(None) as c:
        before = _served(c.get("/metrics").text)
    first = _post(d, {"query": query, "refresh": "force_blocking"}).json()
    hits = [_post(d, {"query": query}).json() for _ in range(3)]
    assert first["cache"]["result"] == "miss"
    assert [h["cache"]["result"] for h in hits] == ["hit"] * 3
    with d.client(None) as c:
        after = _served(c.get("/metrics").text)
    # Background refreshes of other tests serve no request: they add no observation.
    assert after.get(("hit", "ok"), 0) - before.get(("hit", "ok"), 0) == 3
    assert after.get(("miss", "ok"), 0) - before.get(("miss", "ok"), 0) == 1
    assert ("off", "ok") not in after  # with the cache on, no computation observes itself
    # The query log has the computation once and each hit marked as cached (which replay and
    # warm-up skip).
    lines = [
        orjson.loads(line)
        for line in (d.data_dir / "query-log.jsonl").read_bytes().splitlines()
        if line.strip()
    ]
    ours = [x for x in lines if x["fingerprint"] == first["fingerprint"]]
    assert [x.get("cached") for x in ours] == [None, "hit", "hit", "hit"]
    assert all(x["data_version"] == first["data_version"] for x in ours)

"""Query bodies as PostHog's UI sends them (tests/fixtures/posthog_ui), and PostHog's /query
envelope, through the real server: accepted, answered with PostHog's envelope fields, and equal
to the reference engine's answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.api.bodies import TRENDS as BASE
from tests.api.conftest import Deployment

CORPUS = Path(__file__).parents[1] / "fixtures" / "posthog_ui"
FILES = sorted(CORPUS.glob("*.json"))


def _post(d: Deployment, body: Any) -> Any:
    with d.client(d.a["api_key"]) as c:
        return c.post(f"/api/projects/{d.a['id']}/query", json=body)


def test_corpus_is_there() -> None:
    kinds = {json.loads(f.read_text())["kind"] for f in FILES}
    assert kinds == {
        "TrendsQuery",
        "FunnelsQuery",
        "RetentionQuery",
        "StickinessQuery",
        "LifecycleQuery",
    }


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_posthog_ui_bodies_are_accepted_and_match_the_reference(
    deployment: Deployment, path: Path
) -> None:
    query = json.loads(path.read_text())
    parallel = _post(deployment, {"query": query, "refresh": "blocking"})
    assert parallel.status_code == 200, parallel.text
    reference = _post(deployment, {"query": query, "engine": "reference"})
    assert reference.status_code == 200, reference.text
    assert parallel.json()["results"] == reference.json()["results"]
    assert parallel.json()["fingerprint"] == reference.json()["fingerprint"]
    # The engine is part of the answer's key: asking the oracle never gets the parallel
    # engine's cached answer.
    assert parallel.json()["cache_key"] != reference.json()["cache_key"]


@pytest.mark.parametrize(
    "refresh",
    [
        "blocking",
        "async",
        "async_except_on_cache_miss",
        "force_blocking",
        "force_async",
        "force_cache",
        "lazy_async",
        True,
        False,
    ],
)
def test_every_refresh_mode_answers_once_the_answer_is_cached(
    deployment: Deployment, refresh: Any
) -> None:
    first = _post(deployment, {"query": BASE, "refresh": "blocking"})
    assert first.status_code == 200, first.text
    r = _post(deployment, {"query": BASE, "refresh": refresh})
    assert r.status_code == 200, r.text
    assert r.json()["results"] == first.json()["results"]
    assert r.json()["results"][0]["count"] >= 0
    # Only the forcing computations skip the fresh cached answer (docs/api.md "Refresh modes").
    assert r.json()["is_cached"] is (refresh not in ("force_blocking", True))


def test_envelope_has_posthogs_fields_and_echoes_client_query_id(
    deployment: Deployment,
) -> None:
    assert _post(deployment, {"query": BASE}).status_code == 200  # now it is cached
    r = _post(
        deployment,
        {"query": BASE, "client_query_id": "abc-123", "variables_override": {}, "name": "q"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["client_query_id"] == "abc-123"
    assert body["is_cached"] is True and body["query_status"] is None
    assert len(body["cache_key"]) == 64 and body["cache_key"] != body["fingerprint"]
    assert body["timezone"] == "UTC"
    assert body["last_refresh"] and body["next_allowed_client_refresh"]


def test_filters_override_dates_and_properties_apply(deployment: Deployment) -> None:
    day = deployment.now.date()
    window = {"date_from": str(day.replace(year=day.year - 1)), "date_to": str(day)}
    plain = _post(deployment, {"query": {**BASE, "dateRange": window}}).json()
    assert plain["results"][0]["count"] == 3
    none = _post(
        deployment,
        {
            "query": {**BASE, "dateRange": window},
            "filters_override": {
                "properties": [{"key": "$browser", "value": "Nope", "type": "event"}]
            },
        },
    ).json()
    assert none["results"][0]["count"] == 0
    moved = _post(
        deployment,
        {
            "query": {**BASE, "dateRange": window},
            "filters_override": {"date_from": "2001-01-01", "date_to": "2001-01-02"},
        },
    ).json()
    assert moved["results"][0]["count"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query": BASE, "filters_override": {"colour": 1}}, "filters_override.colour"),
        ({"query": {**BASE, "filterTestAccounts": True}}, "query.filterTestAccounts"),
        (
            {"query": {**BASE, "compareFilter": {"compare": True}}},
            "query.compareFilter.compare",
        ),
        (
            {"query": {**BASE, "trendsFilter": {"display": "BoldNumber"}}},
            "query.trendsFilter.display",
        ),
        (
            {"query": {**BASE, "breakdownFilter": {"breakdowns": [{"property": "$browser"}]}}},
            "query.breakdownFilter.breakdowns",
        ),
    ],
)
def test_answer_changing_fields_not_implemented_are_400_naming_them(
    deployment: Deployment, body: Any, field: str
) -> None:
    r = _post(deployment, body)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field
    assert "not supported" in r.json()["detail"]

"""Query bodies as PostHog's UI sends them (tests/fixtures/posthog_ui), and PostHog's /query
envelope, through the real server: accepted, answered with PostHog's envelope fields, and equal
to the reference engine's answer."""

from __future__ import annotations

import json
import re
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
    _check_posthog_shape(query, parallel.json()["results"])


def _check_posthog_shape(query: dict[str, Any], results: list[dict[str, Any]]) -> None:
    """The result fields PostHog's TrendsQueryRunner / StickinessQueryRunner return."""
    if query["kind"] not in ("TrendsQuery", "StickinessQuery"):
        return
    assert results
    compare = (query.get("compareFilter") or {}).get("compare") is True
    display = (query.get("trendsFilter") or {}).get("display")
    labels = [row.get("compare_label") for row in results]
    if compare:
        half = len(results) // 2
        assert labels == ["current"] * half + ["previous"] * half
    else:
        assert "compare_label" not in results[0]
    formula = (query.get("trendsFilter") or {}).get("formula")
    for row in results:
        action = row["action"]
        if formula:
            assert action is None  # PostHog's formula rows have no action
        else:
            assert action["type"] == "events" and action["id"] == action["name"]
        if display in ("BoldNumber", "ActionsPie", "ActionsTable", "ActionsBarValue"):
            assert row["data"] == [] and row["count"] == 0 and "aggregated_value" in row
        else:
            assert len(row["data"]) == len(row["days"])
    if query.get("breakdownFilter", {}).get("breakdowns"):
        assert all(isinstance(row["breakdown_value"], list) for row in results)


def test_filter_test_accounts_applies_the_projects_filters(deployment: Deployment) -> None:
    from eventlens.config import Settings
    from eventlens.projects.store import SqliteMetadataStore

    day = deployment.now.date()
    window = {"date_from": str(day.replace(year=day.year - 1)), "date_to": str(day)}
    query = {**BASE, "dateRange": window, "filterTestAccounts": True}
    store = SqliteMetadataStore(Settings().with_data_dir(deployment.data_dir).meta_db)
    project = int(deployment.a["id"])
    try:
        assert _post(deployment, {"query": query}).json()["results"][0]["count"] == 3
        # Every person counts as internal: nobody is left once test accounts are filtered out.
        store.set_test_account_filters(
            project, [{"key": "$browser", "operator": "is_not_set", "type": "event"}]
        )
        assert _post(deployment, {"query": query}).json()["results"][0]["count"] == 3
        store.set_test_account_filters(
            project, [{"key": "$browser", "operator": "is_set", "type": "event"}]
        )
        filtered = _post(deployment, {"query": query}).json()
        assert filtered["results"][0]["count"] == 0
        plain = _post(deployment, {"query": {**query, "filterTestAccounts": False}}).json()
        assert plain["results"][0]["count"] == 3
        with deployment.client(deployment.a["api_key"]) as c:
            info = c.get(f"/api/projects/{project}").json()
        assert info["test_account_filters"][0]["operator"] == "is_set"
    finally:
        store.set_test_account_filters(project, [])
        store.close()


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
        (
            {"query": {**BASE, "trendsFilter": {"display": "CalendarHeatmap"}}},
            "query.trendsFilter.display",
        ),
        (
            {
                "query": {
                    **BASE,
                    "breakdownFilter": {"breakdowns": [{"property": "$browser", "type": "group"}]},
                }
            },
            "query.breakdownFilter.breakdowns[0].type",
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


# PostHog's result fields per kind (its runners: funnels/base.py _serialize_step, the retention
# and lifecycle query runners); EventLens may add fields of its own.
STEP_FIELDS = {
    "action_id",
    "name",
    "custom_name",
    "order",
    "people",
    "count",
    "type",
    "average_conversion_time",
    "median_conversion_time",
}
ISO_DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$")
KIND_FILES = {
    kind: [f for f in FILES if json.loads(f.read_text())["kind"] == kind]
    for kind in ("FunnelsQuery", "RetentionQuery", "LifecycleQuery")
}


def _check_steps(query: dict[str, Any], steps: list[dict[str, Any]]) -> None:
    unordered = query.get("funnelsFilter", {}).get("funnelOrderType") == "unordered"
    assert len(steps) == len(query["series"])
    for i, (step, node) in enumerate(zip(steps, query["series"], strict=True)):
        assert set(step) >= STEP_FIELDS, STEP_FIELDS - set(step)
        assert step["order"] == i and step["people"] == [] and step["type"] == "events"
        assert isinstance(step["count"], int)
        if unordered:
            assert step["action_id"] is None
            assert step["name"] == f"Completed {i + 1} step{'s' if i else ''}"
        else:
            assert step["action_id"] == node.get("event")
        if i == 0:
            assert step["average_conversion_time"] is None
        if "breakdown_value" in step:
            assert step["breakdown"] == step["breakdown_value"]


@pytest.mark.parametrize("path", KIND_FILES["FunnelsQuery"], ids=lambda p: p.stem)
def test_funnel_answers_have_posthogs_step_fields(deployment: Deployment, path: Path) -> None:
    query = json.loads(path.read_text())
    r = _post(deployment, {"query": query})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    if query.get("breakdownFilter", {}).get("breakdown"):
        assert all(isinstance(group, list) for group in results)
        for group in results:
            _check_steps(query, group)
    else:
        _check_steps(query, results)


@pytest.mark.parametrize("path", KIND_FILES["RetentionQuery"], ids=lambda p: p.stem)
def test_retention_answers_have_posthogs_row_fields(deployment: Deployment, path: Path) -> None:
    query = json.loads(path.read_text())
    r = _post(deployment, {"query": query})
    assert r.status_code == 200, r.text
    rows = r.json()["results"]
    rf = query["retentionFilter"]
    period, total = rf.get("period", "Day"), rf.get("totalIntervals", 8)
    # With a breakdown, each value's cohort rows follow each other, each with breakdown_value.
    by_value: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        by_value.setdefault(row.get("breakdown_value"), []).append(row)
    bf = query.get("breakdownFilter") or {}
    assert (None in by_value) != bool(bf.get("breakdown") or bf.get("breakdowns"))
    for cohorts in by_value.values():
        assert len(cohorts) == total
        for c, row in enumerate(cohorts):
            assert ISO_DATE_TIME.match(row["date"]), row["date"]
            assert row["label"] == f"{period} {c}"
            labels = [v["label"] for v in row["values"]]
            assert labels == [f"{period} {k}" for k in range(total - c)]
            assert all(isinstance(v["count"], int) for v in row["values"])
        dates = [row["date"] for row in cohorts]
        assert dates == sorted(dates) and len(set(dates)) == total


@pytest.mark.parametrize("path", KIND_FILES["LifecycleQuery"], ids=lambda p: p.stem)
def test_lifecycle_answers_have_posthogs_row_fields(deployment: Deployment, path: Path) -> None:
    query = json.loads(path.read_text())
    r = _post(deployment, {"query": query})
    assert r.status_code == 200, r.text
    rows = r.json()["results"]
    event = query["series"][0].get("event")
    # toggledLifecycles only hides statuses in PostHog's chart: all four come back.
    assert [row["status"] for row in rows] == ["new", "returning", "resurrecting", "dormant"]
    for row in rows:
        assert row["action"] == {
            "id": event,
            "name": event or "All events",
            "type": "events",
            "order": 0,
            "math": "total",
        }
        assert row["label"] == f"{event} - {row['status']}"
        assert len(row["data"]) == len(row["days"]) == len(row["labels"])
        assert row["count"] == sum(row["data"])


def test_funnel_flow_view_is_400_naming_the_field(deployment: Deployment) -> None:
    query = json.loads((CORPUS / "funnels_ui_default_two_steps.json").read_text())
    query["funnelsFilter"]["funnelVizType"] = "flow"
    r = _post(deployment, {"query": query})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "query.funnelsFilter.funnelVizType"
    assert "not supported yet" in r.json()["detail"]


@pytest.mark.parametrize("viz", ["trends", "time_to_convert"])
def test_funnel_views_answer_and_refuse_a_breakdown(deployment: Deployment, viz: str) -> None:
    query = json.loads((CORPUS / "funnels_ui_default_two_steps.json").read_text())
    query["funnelsFilter"]["funnelVizType"] = viz
    r = _post(deployment, {"query": query})
    assert r.status_code == 200, r.text
    result = r.json()["results"]
    if viz == "time_to_convert":
        assert set(result) == {"bins", "average_conversion_time"}
    else:
        assert len(result[0]["data"]) == len(result[0]["days"]) == result[0]["count"]
    query["breakdownFilter"] = {"breakdown": "$browser", "breakdown_type": "event"}
    r = _post(deployment, {"query": query})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "query.breakdownFilter.breakdown"
    assert viz in r.json()["detail"] and "not supported yet" in r.json()["detail"]

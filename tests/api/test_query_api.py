"""POST /api/projects/{id}/query through a real server: validation, results, data version, docs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlens.config import Settings
from eventlens.query import get_engine, normalise, parse_query
from eventlens.storage.event_table import EventTable
from tests.api.bodies import FUNNEL
from tests.api.bodies import TRENDS as BASE
from tests.api.conftest import Deployment


def _post(d: Deployment, body: Any, project_id: Any = None) -> Any:
    with d.client(d.a["api_key"]) as c:
        return c.post(f"/api/projects/{project_id or d.a['id']}/query", json=body)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"query": {**BASE, "colour": 1}}, "query.colour", "unsupported field"),
        (
            {"query": {**BASE, "properties": [{"key": "p", "value": 1, "operator": "contains"}]}},
            "query.properties[0].operator",
            "exact",
        ),
        (
            {"query": {**BASE, "properties": [{"key": "p", "value": "(", "operator": "regex"}]}},
            "query.properties[0].value",
            "regular expression",
        ),
        (
            {"query": {**BASE, "dateRange": {"date_from": "2024-02-01", "date_to": "2024-01-01"}}},
            "query.dateRange.date_to",
            "before",
        ),
        ({"query": {"kind": "SqlQuery"}}, "query.kind", "TrendsQuery"),
        ({"query": BASE, "colour": 1}, "colour", "unsupported field"),
        ({}, "query", "missing"),
        ({"query": [1, 2]}, "query", "dictionary"),
        ({"query": BASE, "timeout": 10_000}, "timeout", "<= 300"),
        ({"query": BASE, "timeout": "soon"}, "timeout", "number"),
        ({"query": BASE, "engine": "quantum"}, "engine", "reference"),
        ({"query": BASE, "refresh": "maybe"}, "refresh", "blocking"),
    ],
)
def test_invalid_requests_are_400_naming_the_field(
    deployment: Deployment, body: Any, field: str, words: str
) -> None:
    r = _post(deployment, body)
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["field"] == field
    assert words in err["detail"]
    assert err["type"] in ("InvalidQuery", "InvalidInput")


def test_malformed_json_and_bad_path_are_400(deployment: Deployment) -> None:
    with deployment.client(deployment.a["api_key"]) as c:
        bad_json = c.post(
            f"/api/projects/{deployment.a['id']}/query",
            content=b'{"query": ',
            headers={"Content-Type": "application/json"},
        )
        bad_id = c.post("/api/projects/abc/query", json={"query": BASE})
    assert bad_json.status_code == 400 and bad_json.json()["field"] == "body"
    assert "not valid JSON" in bad_json.json()["detail"]
    assert bad_id.status_code == 400 and bad_id.json()["field"] == "project_id"


@pytest.mark.parametrize("query", [BASE, FUNNEL], ids=["trends", "funnel"])
def test_results_equal_the_reference_engine_on_the_same_snapshot(
    deployment: Deployment, query: dict[str, Any]
) -> None:
    # Absolute dates, so that the server's "now" and ours normalise to the same query.
    day = deployment.now.date()
    query = {
        **query,
        "dateRange": {"date_from": str(day - timedelta(days=3)), "date_to": str(day)},
    }
    r = _post(deployment, {"query": query, "engine": "reference", "refresh": True})
    assert r.status_code == 200, r.text
    body = r.json()
    table = EventTable.open_or_create(
        Settings().with_data_dir(deployment.data_dir).event_table_dir(deployment.a["id"])
    )
    assert body["data_version"] == table.version()
    snapshot = table.snapshot(body["data_version"])
    normalised = normalise(parse_query(query), timezone="UTC", week_start=0, now=datetime.now(UTC))
    expected = get_engine("reference").run(normalised, snapshot)
    assert expected  # a non-trivial result
    assert body["results"] == orjson.loads(
        orjson.dumps(expected, option=orjson.OPT_SERIALIZE_NUMPY)
    )
    assert body["engine"] == "reference" and body["kind"] == query["kind"]
    assert body["fingerprint"] == normalised.fingerprint
    timings = body["timings"]
    # cache_ms: serving through the result cache (a computation included).
    assert set(timings) == {"parse_ms", "plan_ms", "queue_ms", "execute_ms", "cache_ms", "total_ms"}
    assert all(v >= 0 for v in timings.values())
    assert timings["total_ms"] >= timings["execute_ms"]


def test_funnel_counts_persons(deployment: Deployment) -> None:
    steps = _post(deployment, {"query": FUNNEL}).json()["results"]
    assert [s["count"] for s in steps] == [3, 2]
    assert steps[1]["conversion_from_first"] == pytest.approx(2 / 3)


def test_tiny_deadline_is_504(deployment: Deployment) -> None:
    # 1 µs passes before the engine can even start (parsing alone takes longer): a 504, not a hang.
    r = _post(deployment, {"query": FUNNEL, "timeout": 0.000001})
    assert r.status_code == 504, r.text
    assert r.json()["type"] == "QueryTimeout" and "deadline" in r.json()["detail"]
    # The server is fine afterwards.
    assert _post(deployment, {"query": FUNNEL}).status_code == 200


def test_openapi_docs(deployment: Deployment) -> None:
    with deployment.client(None) as c:
        docs = c.get("/docs")
        spec = c.get("/openapi.json")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert spec.status_code == 200
    op = spec.json()["paths"]["/api/projects/{project_id}/query"]["post"]
    examples = op["requestBody"]["content"]["application/json"]["examples"]
    assert {"trends", "funnel", "retention"} <= set(examples)
    assert {"400", "401", "404", "504"} <= set(op["responses"])
    assert "PersonalAPIKey" in spec.json()["components"]["securitySchemes"]


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
_kinds = st.sampled_from(
    [
        "TrendsQuery",
        "FunnelsQuery",
        "RetentionQuery",
        "StickinessQuery",
        "LifecycleQuery",
        "PathsQuery",
        "X",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.one_of(
        _json,
        st.builds(lambda q: {"query": q}, _json),
        st.builds(
            lambda kind, extra: {"query": {"kind": kind, **extra}},
            _kinds,
            st.dictionaries(
                st.sampled_from(
                    [
                        "series",
                        "dateRange",
                        "interval",
                        "properties",
                        "breakdownFilter",
                        "funnelsFilter",
                        "retentionFilter",
                        "filterTestAccounts",
                        "pathsFilter",
                        "funnelPathsFilter",
                    ]
                ),
                _json,
                max_size=3,
            ),
        ),
    )
)
def test_any_body_is_answered_with_a_typed_error_never_a_500(
    deployment: Deployment, body: Any
) -> None:
    r = _post(deployment, body)
    assert r.status_code in (200, 400), (body, r.text)
    if r.status_code == 400:
        err = r.json()
        assert err["type"] in ("InvalidQuery", "InvalidInput") and err["detail"]


def test_default_engine_is_parallel_and_explain_shows_the_plan(deployment: Deployment) -> None:
    day = deployment.now.date()
    query = {**BASE, "dateRange": {"date_from": str(day - timedelta(days=3)), "date_to": str(day)}}
    plain = _post(deployment, {"query": query})
    with deployment.client(deployment.a["api_key"]) as c:
        # force_blocking: from scratch (else the plain run's partials are reused, below).
        explained = c.post(
            f"/api/projects/{deployment.a['id']}/query",
            params={"explain": 1},
            json={"query": query, "refresh": "force_blocking"},
        )
        again = c.post(
            f"/api/projects/{deployment.a['id']}/query",
            params={"explain": 1},
            json={"query": query},
        ).json()
    # No commit in between: every sub-task's partial is reused, none is read or computed.
    assert again["results"] == plain.json()["results"]
    assert again["explain"]["subtasks_reused"] == len(again["explain"]["subtasks"]) >= 1
    assert again["explain"]["rows_scanned"] == 0 and again["explain"]["subtasks_computed"] == 0
    assert {r["source"] for r in again["explain"]["subtask_runs"]} == {"partial-cache"}
    reference = _post(deployment, {"query": query, "engine": "reference"})
    assert plain.status_code == explained.status_code == reference.status_code == 200
    assert plain.json()["engine"] == "parallel" and "explain" not in plain.json()
    assert explained.json()["results"] == plain.json()["results"] == reference.json()["results"]
    plan = explained.json()["explain"]
    assert plan["files_kept"] + plan["files_pruned"] == plan["files_total"] >= 1
    assert plan["rows_scanned"] >= 1 and len(plan["subtask_runs"]) == len(plan["subtasks"]) >= 1
    assert plan["timings_ms"]["total"] >= plan["timings_ms"]["merge"] >= 0


def test_explain_with_the_reference_engine_is_a_400_naming_explain(deployment: Deployment) -> None:
    with deployment.client(deployment.a["api_key"]) as c:
        r = c.post(
            f"/api/projects/{deployment.a['id']}/query",
            params={"explain": "true"},
            json={"query": BASE, "engine": "reference"},
        )
    assert r.status_code == 400 and r.json()["field"] == "explain"
    assert "parallel" in r.json()["detail"]

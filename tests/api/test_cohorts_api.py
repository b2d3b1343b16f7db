"""Cohorts through the real server: CRUD, static members from distinct ids and a CSV upload
(unknown ids reported), bad input as 400s naming the field, the CSV size limit, and cohorts
used as a filter and a breakdown by the query API (an edit changes the answer at once)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from eventlens.config import Settings
from eventlens.ingest.bulk_import import import_file
from eventlens.query.cohort_service import MAX_CSV_BYTES
from tests.support.server import ServerProcess, create_project

# Six persons u0..u5: each views a page; u0..u2 are on plan "pro"; u0, u1 buy twice, u2 once.
PRO = {"u0", "u1", "u2"}


@dataclass
class World:
    server: ServerProcess
    a: dict[str, Any]
    b: dict[str, Any]

    def client(self, project: dict[str, Any]) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.server.url}/api/projects/{project['id']}",
            headers={"Authorization": f"Bearer {project['api_key']}"},
            timeout=60,
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("cohorts")
    data_dir = root / "data"
    a, b = create_project(data_dir, "alpha"), create_project(data_dir, "bravo")
    now = datetime.now(UTC).replace(microsecond=0)
    rows = []
    for i in range(6):
        d = f"u{i}"
        plan = "pro" if d in PRO else "free"
        rows.append(
            {
                "event": "$pageview",
                "distinct_id": d,
                "timestamp": (now - timedelta(days=2)).isoformat(),
                "$set": {"plan": plan},
            }
        )
        for k in range({"u0": 2, "u1": 2, "u2": 1}.get(d, 0)):
            rows.append(
                {
                    "event": "purchase",
                    "distinct_id": d,
                    "timestamp": (now - timedelta(days=1, minutes=k)).isoformat(),
                }
            )
    path = root / "events.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    import_file(Settings().with_data_dir(data_dir), int(a["id"]), path)
    server = ServerProcess(data_dir).start()
    try:
        yield World(server, a, b)
    finally:
        server.stop()


def _query(c: httpx.Client, query: dict[str, Any]) -> httpx.Response:
    return c.post("/query", json={"query": query})


def _pageviews(props: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "kind": "TrendsQuery",
        "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}],
        "dateRange": {"date_from": "-7d"},
        "trendsFilter": {"display": "BoldNumber"},
        "properties": props,
    }


def _in(cohort_id: int, operator: str = "in") -> dict[str, Any]:
    return {"type": "cohort", "key": "id", "value": cohort_id, "operator": operator}


BUYERS = {
    "properties": {
        "type": "AND",
        "values": [
            {
                "type": "behavioral",
                "key": "purchase",
                "event_type": "events",
                "value": "performed_event_multiple",
                "operator": "gte",
                "operator_value": 2,
                "time_value": 30,
                "time_interval": "day",
            }
        ],
    }
}


def test_dynamic_cohort_crud_and_as_a_filter(world: World) -> None:
    with world.client(world.a) as c:
        r = c.post("/cohorts", json={"name": "buyers", "filters": BUYERS})
        assert r.status_code == 201, r.text
        cohort = r.json()
        cid = cohort["id"]
        assert cohort["is_static"] is False and cohort["filters"]["properties"]["type"] == "AND"
        listed = {x["id"]: x for x in c.get("/cohorts").json()["results"]}
        assert listed[cid]["count"] == 2  # u0, u1
        assert c.get(f"/cohorts/{cid}").json()["count"] == 2
        persons = c.get(f"/cohorts/{cid}/persons", params={"limit": 1}).json()
        assert (
            persons["total"] == 2
            and persons["hasMore"] is True
            and persons["columns"] == ["person"]
        )
        person = persons["results"][0][0]
        assert person["distinct_ids"][0] in ("u0", "u1") and person["properties"]["plan"] == "pro"

        inside = _query(c, _pageviews([_in(cid)])).json()["results"][0]["aggregated_value"]
        outside = _query(c, _pageviews([_in(cid, "not_in")])).json()["results"][0]
        assert (inside, outside["aggregated_value"]) == (2, 4)

        # Editing the definition changes the answer at once (the cache key holds it).
        once = json.loads(json.dumps(BUYERS))
        once["properties"]["values"][0]["operator_value"] = 1
        assert c.patch(f"/cohorts/{cid}", json={"filters": once}).status_code == 200
        again = _query(c, _pageviews([_in(cid)])).json()["results"][0]["aggregated_value"]
        assert again == 3

        # Mixed with a person property, negated: "pro and did not buy" is nobody here.
        mixed = {
            "properties": {
                "type": "AND",
                "values": [
                    {"type": "person", "key": "plan", "operator": "exact", "value": "pro"},
                    {**BUYERS["properties"]["values"][0], "negation": True, "operator_value": 1},
                ],
            }
        }
        r = c.post("/cohorts", json={"name": "pro non-buyers", "filters": mixed})
        assert r.status_code == 201 and c.get(f"/cohorts/{r.json()['id']}").json()["count"] == 0

        assert c.delete(f"/cohorts/{cid}").status_code == 204
        assert c.get(f"/cohorts/{cid}").status_code == 404
        r = _query(c, _pageviews([_in(cid)]))
        assert r.status_code == 400 and r.json()["field"] == "query.properties"
        assert f"cohort {cid}" in r.json()["detail"]


def test_static_cohort_from_distinct_ids_and_csv(world: World) -> None:
    with world.client(world.a) as c:
        r = c.post(
            "/cohorts",
            json={"name": "picked", "is_static": True, "distinct_ids": ["u3", "nobody"]},
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert (body["added"], body["unknown"], body["sample_unknown"]) == (1, 1, ["nobody"])
        cid = body["id"]
        csv = b"distinct_id\nu4\nu3\nghost-1\n\nghost-2\n"
        r = c.post(f"/cohorts/{cid}/upload", content=csv, headers={"Content-Type": "text/csv"})
        assert r.status_code == 200, r.text
        assert r.json() == {"added": 1, "unknown": 2, "sample_unknown": ["ghost-1", "ghost-2"]}
        assert c.get(f"/cohorts/{cid}").json()["count"] == 2
        ids = {p[0]["distinct_ids"][0] for p in c.get(f"/cohorts/{cid}/persons").json()["results"]}
        assert ids == {"u3", "u4"}
        # As a breakdown next to "all users" (id 0): labels are the cohort names.
        query = {
            **_pageviews([]),
            "breakdownFilter": {"breakdown_type": "cohort", "breakdown": [cid, "all"]},
        }
        rows = _query(c, query).json()["results"]
        got = [(r["breakdown_value"], r["breakdown_label"], r["aggregated_value"]) for r in rows]
        assert got == [(cid, "picked", 2), (0, "All users", 6)]

        too_big = b"x\n" * (MAX_CSV_BYTES // 2 + 1)
        r = c.post(f"/cohorts/{cid}/upload", content=too_big)
        assert r.status_code == 413 and r.json()["field"] == "body"
        assert str(MAX_CSV_BYTES) in r.json()["detail"]
        r = c.post(f"/cohorts/{cid}/upload", content=b"\xff\xfe\x00bad")
        assert r.status_code == 400 and r.json()["field"] == "body"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"filters": BUYERS}, "name"),
        ({"name": "x"}, "filters"),
        (
            {"name": "x", "filters": {"properties": {"type": "AND", "values": []}}},
            "filters.properties",
        ),
        (
            {
                "name": "x",
                "filters": {
                    "properties": {
                        "type": "AND",
                        "values": [{**BUYERS["properties"]["values"][0], "operator_value": None}],
                    }
                },
            },
            "filters.properties.values[0].operator_value",
        ),
        (
            {
                "name": "x",
                "filters": {
                    "properties": {
                        "type": "OR",
                        "values": [{"type": "person", "key": "plan", "operator": "near"}],
                    }
                },
            },
            "filters.properties.values[0].operator",
        ),
        (
            {
                "name": "x",
                "filters": {
                    "properties": {
                        "type": "OR",
                        "values": [{**BUYERS["properties"]["values"][0], "time_value": 0}],
                    }
                },
            },
            "filters.properties.values[0].time_value",
        ),
        ({"name": "x", "is_static": True, "distinct_ids": "u1"}, "distinct_ids"),
        ({"name": "x", "filters": BUYERS, "distinct_ids": ["u1"]}, "distinct_ids"),
        ({"name": "x", "filters": BUYERS, "colour": "red"}, "colour"),
    ],
)
def test_bad_cohorts_are_400s_naming_the_field(
    world: World, body: dict[str, Any], field: str
) -> None:
    with world.client(world.a) as c:
        r = c.post("/cohorts", json=body)
        assert r.status_code == 400, r.text
        assert r.json()["field"] == field


def test_cohorts_belong_to_their_project(world: World) -> None:
    with world.client(world.a) as c:
        cid = c.post("/cohorts", json={"name": "mine", "filters": BUYERS}).json()["id"]
    with world.client(world.b) as c:
        assert c.get(f"/cohorts/{cid}").status_code == 404
        assert cid not in {x["id"] for x in c.get("/cohorts").json()["results"]}
        r = _query(c, _pageviews([_in(cid)]))
        assert r.status_code == 400 and r.json()["field"] == "query.properties"
        # A cohort filter in a series and a funnel step names its own path.
        funnel = {
            "kind": "FunnelsQuery",
            "series": [
                {"kind": "EventsNode", "event": "$pageview"},
                {"kind": "EventsNode", "event": "purchase", "properties": [_in(cid)]},
            ],
        }
        assert _query(c, funnel).json()["field"] == "query.series[1].properties"


def test_a_cohort_filtered_insight_can_be_saved_and_its_persons_listed(world: World) -> None:
    """The actors service and saved insights normalise as /query does (the project's cohorts
    resolved), so a cohort filter works there too."""
    with world.client(world.a) as c:
        cid = c.post("/cohorts", json={"name": "buyers-2", "filters": BUYERS}).json()["id"]
        query = _pageviews([_in(cid)])
        assert _query(c, query).json()["results"][0]["aggregated_value"] == 2
        r = c.post("/insights", json={"name": "buyers' views", "query": query})
        assert r.status_code == 201, r.text
        actors = {
            "kind": "ActorsQuery",
            "source": {"kind": "InsightActorsQuery", "source": query, "series": 0},
        }
        r = _query(c, actors)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == 2
        assert {p[0]["distinct_ids"][0] for p in body["results"]} == {"u0", "u1"}
        missing = _pageviews([_in(999_999)])
        r = c.post("/insights", json={"name": "nope", "query": missing})
        assert r.status_code == 400 and "999999" in r.json()["detail"], r.text


def test_persons_of_a_cohort_breakdown_point_are_that_cohorts(world: World) -> None:
    """A cohort breakdown point (trends value, funnel step) lists the persons of its cohort's
    run, and their count is the number the insight shows there."""
    with world.client(world.a) as c:
        cid = c.post("/cohorts", json={"name": "buyers-3", "filters": BUYERS}).json()["id"]
        trends = {
            **_pageviews([]),
            "breakdownFilter": {"breakdown_type": "cohort", "breakdown": [cid, "all"]},
        }
        funnel = {
            "kind": "FunnelsQuery",
            "series": [
                {"kind": "EventsNode", "event": "$pageview"},
                {"kind": "EventsNode", "event": "purchase"},
            ],
            "dateRange": {"date_from": "-7d"},
            "breakdownFilter": {"breakdown_type": "cohort", "breakdown": [cid, "all"]},
        }
        shown = {
            r["breakdown_value"]: r["aggregated_value"] for r in _query(c, trends).json()["results"]
        }
        steps = {
            s[1]["breakdown_value"]: s[1]["count"] for s in _query(c, funnel).json()["results"]
        }
        assert shown == {cid: 2, 0: 6} and steps == {cid: 2, 0: 3}

        def persons(source: dict[str, Any], **selector: Any) -> set[str]:
            actors = {
                "kind": "ActorsQuery",
                "source": {"kind": "InsightActorsQuery", "source": source, **selector},
            }
            r = _query(c, actors)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["total"] == len(body["results"])
            return {p[0]["distinct_ids"][0] for p in body["results"]}

        assert persons(trends, series=0, breakdown=cid) == {"u0", "u1"}
        assert len(persons(trends, series=0, breakdown="all")) == 6
        assert persons(funnel, funnelStep=2, funnelStepBreakdown=cid) == {"u0", "u1"}
        assert persons(funnel, funnelStep=2, funnelStepBreakdown=0) == {"u0", "u1", "u2"}
        r = _query(
            c,
            {
                "kind": "ActorsQuery",
                "source": {"kind": "InsightActorsQuery", "source": trends, "breakdown": 424242},
            },
        )
        assert r.status_code == 400 and r.json()["field"] == "query.source.breakdown", r.text

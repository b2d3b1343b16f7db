"""Actors through the real server: events captured by the real posthog SDK -> ingest -> the
persons behind insight numbers, the persons list, the person page, paging, search, 400s."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from posthog import Posthog

from tests.support.server import ServerProcess, create_project

FUNNEL: dict[str, Any] = {
    "kind": "FunnelsQuery",
    "series": [
        {"kind": "EventsNode", "event": "$pageview"},
        {"kind": "EventsNode", "event": "signup"},
    ],
    "dateRange": {"date_from": "-7d"},
}
DAU: dict[str, Any] = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}],
    "dateRange": {"date_from": "-7d"},
    "interval": "day",
}


class Site:
    def __init__(self, server: ServerProcess, project: dict[str, Any], now: datetime) -> None:
        self.server, self.project, self.now = server, project, now

    def post(self, query: dict[str, Any], **body: Any) -> httpx.Response:
        return httpx.post(
            f"{self.server.url}/api/projects/{self.project['id']}/query",
            json={"query": query, **body},
            headers={"Authorization": f"Bearer {self.project['api_key']}"},
            timeout=60,
        )

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(
            f"{self.server.url}/api/projects/{self.project['id']}{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.project['api_key']}"},
            timeout=60,
        )

    def actors(self, source: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
        query: dict[str, Any] = {"kind": "ActorsQuery", "source": source, **fields}
        r = self.post(query)
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        return answer


def _dids(answer: dict[str, Any]) -> list[str]:
    return [did for (person,) in answer["results"] for did in person["distinct_ids"]]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data_dir: Path = tmp_path_factory.mktemp("actors") / "data"
    project = create_project(data_dir, "actors")
    server = ServerProcess(data_dir).start()
    now = datetime.now(UTC).replace(microsecond=0)
    two, one = now - timedelta(days=2), now - timedelta(days=1)
    client = Posthog(project["token"], host=server.url, sync_mode=True)
    people = {
        "alice": {"email": "alice@example.com", "plan": "pro"},
        "bob": {"email": "bob@x.org", "plan": "free"},
        "carol": {"email": "carol@example.com", "plan": "pro"},
        "dave": {"email": "dave@y.net", "plan": "free"},
    }
    # alice: view (day -2), signup (day -1); bob: view (day -2); carol: view, signup, purchase
    # (day -1); dave: views on both days.
    script = [
        ("alice", "$pageview", two),
        ("bob", "$pageview", two),
        ("dave", "$pageview", two),
        ("alice", "signup", one),
        ("carol", "$pageview", one),
        ("carol", "signup", one + timedelta(minutes=1)),
        ("carol", "purchase", one + timedelta(minutes=2)),
        ("dave", "$pageview", one),
    ]
    for who, event, at in script:
        client.capture(event, distinct_id=who, properties={"$set": people[who]}, timestamp=at)
    client.flush()
    s = Site(server, project, now)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        r = s.post({**DAU, "series": [{"kind": "EventsNode", "event": None}]})
        if r.status_code == 200 and sum(r.json()["results"][0]["data"]) == len(script):
            break
        time.sleep(0.2)
    try:
        yield s
    finally:
        server.stop()


def test_funnel_step_actors_are_the_converted_and_dropped_persons(site: Site) -> None:
    answers = []
    for engine in ("parallel", "reference"):
        r = site.post(
            {
                "kind": "ActorsQuery",
                "source": {"kind": "InsightActorsQuery", "source": FUNNEL, "funnelStep": 2},
            },
            engine=engine,
        )
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["total"] == 2 and answer["insight_value"] == 2
        assert sorted(_dids(answer)) == ["alice", "carol"]
        assert answer["engine"] == engine
        # The envelope every query answer has (the declared QueryResponse).
        assert {"fingerprint", "cache_key", "is_cached", "timezone", "timings", "kind"} <= set(
            answer
        )
        answers.append(answer["results"])
    assert answers[0] == answers[1]
    dropped = site.actors({"kind": "InsightActorsQuery", "source": FUNNEL, "funnelStep": -2})
    assert sorted(_dids(dropped)) == ["bob", "dave"] and dropped["total"] == 2
    everyone = site.actors({"kind": "InsightActorsQuery", "source": FUNNEL, "funnelStep": 1})
    assert everyone["total"] == 4
    ids = [person["id"] for (person,) in everyone["results"]]
    assert ids == sorted(ids)  # stable order: by person id
    person = everyone["results"][0][0]
    assert set(person) >= {"id", "distinct_ids", "properties", "created_at", "is_identified"}


def test_trends_point_actors_page_and_total_equal_the_chart(site: Site) -> None:
    chart = site.post(DAU).json()["results"][0]
    day_two = chart["days"][-3]  # today - 2 days: alice, bob, dave
    assert chart["data"][-3] == 3
    sel = {"kind": "InsightActorsQuery", "source": DAU, "day": day_two, "series": 0}
    full = site.actors(sel)
    assert full["total"] == 3 and sorted(_dids(full)) == ["alice", "bob", "dave"]
    seen = []
    for offset in range(3):
        page = site.actors(sel, limit=1, offset=offset)
        assert page["total"] == 3 and len(page["results"]) == 1
        assert page["hasMore"] == (offset < 2)
        seen += [person["id"] for (person,) in page["results"]]
    assert seen == [person["id"] for (person,) in full["results"]]
    empty = site.actors({**sel, "day": chart["days"][0]})
    assert empty["total"] == 0 and empty["results"] == [] and not empty["hasMore"]


def test_search_and_person_property_filters(site: Site) -> None:
    sel = {"kind": "InsightActorsQuery", "source": FUNNEL, "funnelStep": 1}
    assert _dids(site.actors(sel, search="EXAMPLE.com")) in (["alice", "carol"], ["carol", "alice"])
    assert _dids(site.actors(sel, search="bob")) == ["bob"]  # a distinct id, exactly
    pro = [{"key": "plan", "value": "pro", "operator": "exact", "type": "person"}]
    filtered = site.actors(sel, properties=pro)
    assert sorted(_dids(filtered)) == ["alice", "carol"] and filtered["total"] == 2
    # The persons list (source null): every person, searched and filtered the same way.
    listing = site.actors(None)
    assert listing["total"] == 4 and sorted(_dids(listing)) == ["alice", "bob", "carol", "dave"]
    assert _dids(site.actors(None, search="dave")) == ["dave"]
    assert sorted(_dids(site.actors(None, properties=pro))) == ["alice", "carol"]
    assert site.actors(None, search="nobody-matches-this")["total"] == 0
    page = site.actors(None, limit=3, offset=3)
    assert len(page["results"]) == 1 and not page["hasMore"]


def test_person_page_and_timeline(site: Site) -> None:
    listing = site.actors(None, search="carol")
    carol = listing["results"][0][0]
    r = site.get(f"/persons/{carol['id']}")
    assert r.status_code == 200, r.text
    assert r.json()["distinct_ids"] == ["carol"]
    assert r.json()["properties"]["email"] == "carol@example.com"
    events = site.get(f"/persons/{carol['id']}/events").json()
    assert [e["event"] for e in events["results"]] == ["purchase", "signup", "$pageview"]
    assert not events["hasMore"]
    first = site.get(f"/persons/{carol['id']}/events", limit=1).json()
    assert [e["event"] for e in first["results"]] == ["purchase"] and first["hasMore"]
    rest = site.get(
        f"/persons/{carol['id']}/events", limit=5, before=first["results"][0]["timestamp"]
    ).json()
    assert [e["event"] for e in rest["results"]] == ["signup", "$pageview"]
    assert site.get("/persons/not-a-person").status_code == 404
    assert site.get("/persons/not-a-person/events").status_code == 404
    bad = site.get(f"/persons/{carol['id']}/events", before="yesterday-ish")
    assert bad.status_code == 400 and bad.json()["field"] == "before"


@pytest.mark.parametrize(
    ("selector", "field"),
    [
        ({"source": FUNNEL, "funnelStep": 3}, "query.source.funnelStep"),
        ({"source": FUNNEL, "funnelStep": -1}, "query.source.funnelStep"),
        ({"source": FUNNEL}, "query.source.funnelStep"),
        (
            {
                "source": {"kind": "LifecycleQuery", "series": [{"kind": "EventsNode"}]},
                "status": "zombie",
                "day": "2020-01-01",
            },
            "query.source.status",
        ),
        ({"source": DAU, "day": "1999-01-01"}, "query.source.day"),
        ({"source": DAU, "day": None}, "query.source.day"),
        ({"source": DAU, "series": 4, "day": "2020-01-01"}, "query.source.series"),
        ({"source": {**DAU, "interval": "fortnight"}}, "query.source.source.interval"),
        ({"source": DAU, "compare": "previous", "day": "2020-01-01"}, "query.source.compare"),
    ],
)
def test_bad_selectors_are_a_400_naming_the_field(
    site: Site, selector: dict[str, Any], field: str
) -> None:
    r = site.post({"kind": "ActorsQuery", "source": {"kind": "InsightActorsQuery", **selector}})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field, r.text


def test_bad_actors_fields_are_a_400(site: Site) -> None:
    for query, field in (
        ({"kind": "ActorsQuery", "limit": 0}, "query.limit"),
        ({"kind": "ActorsQuery", "limit": 10**6}, "query.limit"),
        ({"kind": "ActorsQuery", "offset": -1}, "query.offset"),
        ({"kind": "ActorsQuery", "nonsense": 1}, "query.nonsense"),
        (
            {"kind": "ActorsQuery", "properties": [{"key": "$browser", "value": "x"}]},
            "query.properties",
        ),
    ):
        r = site.post(query)
        assert r.status_code == 400, r.text
        assert r.json()["field"] == field, r.text


def test_compare_previous_point_is_its_own_list(site: Site) -> None:
    query = {**DAU, "compareFilter": {"compare": True}}
    rows = site.post(query).json()["results"]
    current = next(r for r in rows if r["compare_label"] == "current")
    previous = next(r for r in rows if r["compare_label"] == "previous")
    base = {"kind": "InsightActorsQuery", "source": query, "series": 0}
    now = site.actors({**base, "compare": "current", "day": current["days"][-3]})
    # The same bucket index of the previous week (no events then): not the current list again.
    before = site.actors({**base, "compare": "previous", "day": previous["days"][-3]})
    assert now["total"] == 3 and before["total"] == previous["data"][-3] == 0

"""The dashboard's small API: catalog, saved insights and dashboards, live events.

Same rules as the query API: 401 without a valid key, 404 for a project the key cannot read
(whether or not it exists), 400 naming the field for bad input.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.web.conftest import SECRET_EVENT, Site

TRENDS = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}


def client(site: Site, project: dict[str, Any] | None) -> httpx.Client:
    headers = {} if project is None else {"Authorization": f"Bearer {project['api_key']}"}
    return httpx.Client(base_url=site.url, headers=headers, timeout=60)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "catalog"),
        ("GET", "events/live"),
        ("GET", "insights"),
        ("POST", "insights"),
        ("GET", "insights/1"),
        ("PATCH", "insights/1"),
        ("DELETE", "insights/1"),
        ("GET", "dashboards"),
        ("POST", "dashboards"),
        ("GET", "dashboards/1"),
        ("PATCH", "dashboards/1"),
        ("DELETE", "dashboards/1"),
    ],
)
def test_auth_like_the_query_api(site: Site, method: str, path: str) -> None:
    body: dict[str, Any] | None = None
    if method in ("POST", "PATCH"):
        body = {"name": "x", "query": TRENDS} if path.startswith("insights") else {"name": "x"}
    url = f"/api/projects/{site.a['id']}/{path}"
    with client(site, None) as anon:
        r = anon.request(method, url, json=body)
        assert r.status_code == 401 and r.json()["type"] == "AuthenticationError"
    with client(site, site.b) as other:
        r = other.request(method, url, json=body)
        assert r.status_code == 404 and r.json()["detail"] == f"project {site.a['id']} not found"
        r = other.request(method, f"/api/projects/9999/{path}", json=body)
        assert r.status_code == 404 and r.json()["detail"] == "project 9999 not found"
    with client(site, site.a) as own:
        r = own.request(method, url + "?api_key=" + site.a["api_key"], json=body)
        assert r.status_code == 401  # never a key in the URL


def test_catalog_lists_own_names_only(site: Site) -> None:
    with client(site, site.a) as c:
        cat = c.get(f"/api/projects/{site.a['id']}/catalog").json()
    names = [e["name"] for e in cat["events"]]
    assert "$pageview" in names and "signup" in names and SECRET_EVENT not in names
    counts = [e["count"] for e in cat["events"]]
    assert counts == sorted(counts, reverse=True) and sum(counts) == cat["total_events"]
    assert "$browser" in cat["event_properties"] and "$current_url" in cat["event_properties"]
    assert cat["token"] == site.a["token"] and cat["data_version"] >= 1
    with client(site, site.b) as c:
        cat_b = c.get(f"/api/projects/{site.b['id']}/catalog").json()
    assert [e["name"] for e in cat_b["events"]] == [SECRET_EVENT]
    with client(site, site.empty) as c:
        cat_e = c.get(f"/api/projects/{site.empty['id']}/catalog").json()
    assert cat_e["total_events"] == 0 and cat_e["events"] == [] and cat_e["data_version"] == 0


def test_live_events_newest_first(site: Site) -> None:
    with client(site, site.a) as c:
        r = c.get(f"/api/projects/{site.a['id']}/events/live", params={"limit": 25})
        assert r.status_code == 200
        events = r.json()["events"]
        assert len(events) == 25
        stamps = [e["timestamp"] for e in events]
        assert stamps == sorted(stamps, reverse=True)
        everything = c.get(f"/api/projects/{site.a['id']}/events/live", params={"limit": 500})
        newest = max(e["timestamp"] for e in everything.json()["events"])
        assert stamps[0] == newest
        assert set(events[0]) == {
            "uuid",
            "event",
            "distinct_id",
            "person_id",
            "timestamp",
            "properties",
        }
        for bad in ("0", "501", "many"):
            r = c.get(f"/api/projects/{site.a['id']}/events/live", params={"limit": bad})
            assert r.status_code == 400 and r.json()["field"] == "limit", bad


def test_insight_and_dashboard_crud(site: Site) -> None:
    pid = site.a["id"]
    with client(site, site.a) as c:
        ins = c.post(f"/api/projects/{pid}/insights", json={"name": " Views ", "query": TRENDS})
        assert ins.status_code == 201
        insight = ins.json()
        assert insight["name"] == "Views" and insight["query"] == TRENDS
        assert c.get(f"/api/projects/{pid}/insights/{insight['id']}").json() == insight
        assert insight in c.get(f"/api/projects/{pid}/insights").json()

        dash = c.post(
            f"/api/projects/{pid}/dashboards", json={"name": "Main", "insight_ids": [insight["id"]]}
        ).json()
        got = c.get(f"/api/projects/{pid}/dashboards/{dash['id']}").json()
        assert got["insight_ids"] == [insight["id"]] and got["insights"] == [insight]

        renamed = c.patch(
            f"/api/projects/{pid}/insights/{insight['id']}", json={"name": "Page views"}
        ).json()
        assert renamed["name"] == "Page views" and renamed["query"] == TRENDS
        assert (
            c.patch(f"/api/projects/{pid}/dashboards/{dash['id']}", json={"name": "Home"}).json()[
                "name"
            ]
            == "Home"
        )

        # Deleting the insight takes it off the dashboard.
        assert c.delete(f"/api/projects/{pid}/insights/{insight['id']}").status_code == 204
        assert c.get(f"/api/projects/{pid}/insights/{insight['id']}").status_code == 404
        assert c.get(f"/api/projects/{pid}/dashboards/{dash['id']}").json()["insight_ids"] == []
        assert c.delete(f"/api/projects/{pid}/dashboards/{dash['id']}").status_code == 204
        assert c.get(f"/api/projects/{pid}/dashboards/{dash['id']}").status_code == 404


def test_rows_of_another_project_are_not_found(site: Site) -> None:
    with client(site, site.a) as a:
        insight = a.post(
            f"/api/projects/{site.a['id']}/insights", json={"name": "A only", "query": TRENDS}
        ).json()
    with client(site, site.b) as b:
        bid = site.b["id"]
        r = b.get(f"/api/projects/{bid}/insights/{insight['id']}")
        assert r.status_code == 404 and "A only" not in r.text
        assert all(i["name"] != "A only" for i in b.get(f"/api/projects/{bid}/insights").json())
        r = b.post(
            f"/api/projects/{bid}/dashboards", json={"name": "x", "insight_ids": [insight["id"]]}
        )
        assert r.status_code == 400 and r.json()["field"] == "insight_ids[0]"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "query": {**TRENDS, "colour": "red"}}, "query.colour"),
        (
            {"name": "x", "query": {**TRENDS, "series": [{"event": "a", "math": "mode"}]}},
            "query.series[0].math",
        ),
        (
            {
                "name": "x",
                "query": {
                    **TRENDS,
                    "properties": [{"key": "k", "operator": "regex", "value": "("}],
                },
            },
            "query.properties[0].value",
        ),
        ({"name": "   ", "query": TRENDS}, "name"),
        ({"query": TRENDS}, "name"),
        ({"name": "x"}, "query"),
        ({"name": "x", "query": TRENDS, "extra": 1}, "extra"),
        ({"name": "x" * 201, "query": TRENDS}, "name"),
    ],
)
def test_bad_insights_are_400_naming_the_field(
    site: Site, body: dict[str, Any], field: str
) -> None:
    with client(site, site.a) as c:
        r = c.post(f"/api/projects/{site.a['id']}/insights", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field


def test_bad_dashboards_are_400(site: Site) -> None:
    pid = site.a["id"]
    with client(site, site.a) as c:
        ins = c.post(f"/api/projects/{pid}/insights", json={"name": "n", "query": TRENDS}).json()
        r = c.post(
            f"/api/projects/{pid}/dashboards",
            json={"name": "d", "insight_ids": [ins["id"], ins["id"]]},
        )
        assert r.status_code == 400 and r.json()["field"] == "insight_ids"
        r = c.post(f"/api/projects/{pid}/dashboards", json={"name": "d", "insight_ids": ["one"]})
        assert r.status_code == 400 and r.json()["field"].startswith("insight_ids")
        r = c.get(f"/api/projects/{pid}/dashboards/0")
        assert r.status_code == 400 and r.json()["field"] == "dashboard_id"


def test_tile_layouts_over_http(site: Site) -> None:
    with client(site, site.a) as c:
        base = f"/api/projects/{site.a['id']}"
        ins = c.post(f"{base}/insights", json={"name": "sized", "query": TRENDS}).json()
        dash = c.post(f"{base}/dashboards", json={"name": "s", "insight_ids": [ins["id"]]}).json()
        assert dash["layouts"] == {}
        url = f"{base}/dashboards/{dash['id']}"
        r = c.patch(url, json={"layouts": {str(ins["id"]): {"w": 2}}})
        assert r.status_code == 200 and r.json()["layouts"] == {str(ins["id"]): {"w": 2, "h": 1}}
        assert c.get(url).json()["layouts"] == {str(ins["id"]): {"w": 2, "h": 1}}
        r = c.patch(url, json={"layouts": {str(ins["id"]): {"w": 3}}})
        assert r.status_code == 400 and "layouts" in r.json()["field"]
        r = c.patch(url, json={"layouts": {"999999": {"w": 2}}})
        assert r.status_code == 400 and r.json()["field"] == "layouts.999999"


def test_dashboard_filters_over_http(site: Site) -> None:
    with client(site, site.a) as c:
        base = f"/api/projects/{site.a['id']}"
        dash = c.post(f"{base}/dashboards", json={"name": "f"}).json()
        assert dash["filters"] == {}
        url = f"{base}/dashboards/{dash['id']}"
        filters = {"date_from": "-7d", "properties": [{"key": "plan", "value": "pro"}]}
        r = c.patch(url, json={"filters": filters})
        saved = {"date_from": "-7d", "properties": [{"key": "plan", "value": "pro"}]}
        assert r.status_code == 200 and r.json()["filters"] == saved
        assert c.get(url).json()["filters"] == saved
        # Other changes keep them; {} clears them.
        assert c.patch(url, json={"name": "f2"}).json()["filters"] == saved
        r = c.patch(url, json={"filters": {"date_from": "yesterday-ish"}})
        assert r.status_code == 400 and r.json()["field"] == "filters.date_from"
        r = c.patch(url, json={"filters": {"colour": "red"}})
        assert r.status_code == 400 and "filters" in r.json()["field"]
        r = c.patch(url, json={"filters": {"properties": [{"key": "a", "operator": "bogus"}]}})
        assert r.status_code == 400 and r.json()["field"] == "filters.properties[0].operator"
        assert c.get(url).json()["filters"] == saved  # a refused change stores nothing
        assert c.patch(url, json={"filters": {}}).json()["filters"] == {}

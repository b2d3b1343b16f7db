"""Issue 17 part 4 in a real browser: the builder's chart types, compare, per-series filters,
OR groups, funnel exclusions, the retention mean row, saved insights with search, and the
dashboard's filter override, reordering and per-tile freshness. Every shown number is checked
against the query API's answer to the query the page sent."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import Request, expect
from posthog import Posthog

from tests.web.conftest import UI, Site
from tests.web.test_insights_e2e import as_number, numbers_table, query_in_url
from tests.web.test_ui_fixes_e2e import _api, dashboard_with, open_insight

PAGEVIEWS = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}


def answer(site: Site, query: dict[str, Any], override: dict[str, Any] | None = None) -> Any:
    body: dict[str, Any] = {"query": query}
    if override is not None:
        body["filters_override"] = override
    r = httpx.post(
        f"{site.url}/api/projects/{site.a['id']}/query",
        json=body,
        headers={"Authorization": f"Bearer {site.a['api_key']}"},
        timeout=60,
    )
    r.raise_for_status()
    return r.json()


@pytest.mark.parametrize(
    ("display", "drawn"),
    [
        ("ActionsBar", "svg.bars rect"),
        ("ActionsStackedBar", "svg.bars rect"),
        ("ActionsAreaGraph", ".uplot canvas"),
        ("BoldNumber", ".bold-number .big"),
        ("ActionsPie", "svg.pie path"),
        ("ActionsTable", "table.numbers"),
    ],
)
def test_chart_types(ui: UI, display: str, drawn: str) -> None:
    page = ui.page
    open_insight(ui, PAGEVIEWS)
    page.locator(".uplot").wait_for()
    page.get_by_label("Chart").select_option(display)
    page.get_by_role("button", name="Run query").click()
    page.locator(drawn).first.wait_for(state="attached")
    query = query_in_url(page)
    assert query["trendsFilter"] == {"display": display}
    rows = ui.site.query(ui.site.a, query)["results"]
    table = numbers_table(page)
    if display in ("BoldNumber", "ActionsPie", "ActionsTable"):
        assert table[0] == ["series", "value"]
        assert as_number(table[1][1]) == rows[0]["aggregated_value"]
    else:
        assert [as_number(c) for c in table[1][1:]] == [*rows[0]["data"], rows[0]["count"]]
    if display == "BoldNumber":
        shown = page.locator(".bold-number .big").first.inner_text()
        assert as_number(shown) == rows[0]["aggregated_value"]
    if display in ("BoldNumber", "ActionsPie", "ActionsStackedBar"):
        ui.shot(f"insight-{display}")
    # The chart type survives the link.
    page.reload()
    expect(page.get_by_label("Chart")).to_have_value(display)


def test_compare_per_series_filter_and_or_group(ui: UI) -> None:
    page = ui.page
    ui.login(ui.site.a["api_key"])
    page.get_by_role("button", name="Add filter on series #1").click()
    row = page.locator('[data-series-filter="0-0"]')
    row.get_by_label("Property").fill("$browser")
    row.get_by_label("Value").fill("Chrome")
    for key, value in (("$os", "Mac OS X"), ("$os", "Windows")):
        page.get_by_role("button", name="+ Add filter").click()
        last = page.locator("[data-filter]").last
        last.get_by_label("Property").fill(key)
        last.get_by_label("Value").fill(value)
    page.get_by_label("Match").select_option("OR")
    page.get_by_label("Compare with the previous period").check()
    page.get_by_role("button", name="Run query").click()
    page.locator(".uplot").wait_for()
    query = query_in_url(page)
    assert query["series"][0]["properties"] == [
        {"key": "$browser", "operator": "exact", "type": "event", "value": "Chrome"}
    ]
    assert query["properties"] == {
        "type": "AND",
        "values": [
            {
                "type": "OR",
                "values": [
                    {"key": "$os", "operator": "exact", "type": "event", "value": "Mac OS X"},
                    {"key": "$os", "operator": "exact", "type": "event", "value": "Windows"},
                ],
            }
        ],
    }
    assert query["compareFilter"] == {"compare": True}
    expected = ui.site.query(ui.site.a, query)["results"]
    assert [r["compare_label"] for r in expected] == ["current", "previous"]
    table = numbers_table(page)
    assert [r[0] for r in table[1:]] == ["$pageview", "$pageview (previous)"]
    for row_, series in zip(table[1:], expected, strict=True):
        assert [as_number(c) for c in row_[1:]] == [*series["data"], series["count"]]
    ui.shot("insight-compare")
    # The link gives the same form back.
    page.reload()
    expect(page.get_by_label("Match")).to_have_value("OR")
    expect(page.get_by_label("Compare with the previous period")).to_be_checked()
    expect(page.locator('[data-series-filter="0-0"]').get_by_label("Value")).to_have_value("Chrome")


def test_funnel_exclusion_and_strict_order(ui: UI) -> None:
    page = ui.page
    ui.login(ui.site.a["api_key"])
    page.get_by_role("button", name="Funnel").click()
    page.get_by_label("Step 1").fill("$pageview")
    page.get_by_label("Step 2").fill("signup")
    page.get_by_label("Order").select_option("strict")
    page.get_by_role("button", name="+ Add exclusion").click()
    page.get_by_label("Exclusion 1 event").fill("$pageleave")
    page.get_by_label("Date range").select_option("-30d")
    page.get_by_role("button", name="Run query").click()
    page.locator(".fstep").first.wait_for()
    query = query_in_url(page)
    assert query["funnelsFilter"]["funnelOrderType"] == "strict"
    assert query["funnelsFilter"]["exclusions"] == [
        {"kind": "EventsNode", "event": "$pageleave", "funnelFromStep": 0, "funnelToStep": 1}
    ]
    steps = ui.site.query(ui.site.a, query)["results"]
    assert [as_number(r[3]) for r in numbers_table(page)[1:]] == [s["count"] for s in steps]
    ui.shot("insight-funnel-exclusion")
    # Unordered funnels take no exclusions (the API refuses them): the form hides them.
    page.get_by_label("Order").select_option("unordered")
    expect(page.get_by_role("button", name="+ Add exclusion")).to_have_count(0)


def test_retention_mean_row(ui: UI) -> None:
    page = ui.page
    query = {
        "kind": "RetentionQuery",
        "retentionFilter": {"period": "Day", "totalIntervals": 8},
        "dateRange": {"date_from": "-7d"},
    }
    open_insight(ui, query)
    mean = page.locator("table.retention tr.mean")
    mean.wait_for()
    cohorts = ui.site.query(ui.site.a, query_in_url(page))["results"]
    cells = mean.locator("td").all_inner_texts()
    # The range ends now: each cohort's last cell is today's, still filling, and left out of
    # the mean (as PostHog does).
    for k in (1, 2):
        shares = [
            c["values"][k]["count"] / c["values"][0]["count"]
            for c in cohorts
            if len(c["values"]) > k + 1 and c["values"][0]["count"]
        ]
        assert cells[1 + k] == f"{sum(shares) / len(shares) * 100:.1f}%"
    # The same as a curve (PostHog's retention display), the table kept under it.
    page.get_by_label("Show").select_option("curve")
    page.get_by_role("button", name="Run query").click()
    page.locator(".retention-curve .uplot").wait_for()
    assert query_in_url(page)["retentionFilter"]["display"] == "ActionsLineGraph"
    expect(page.locator("table.retention tr.mean")).to_be_visible()
    ui.shot("insight-retention-curve")
    page.reload()
    expect(page.get_by_label("Show")).to_have_value("curve")


def test_saved_insights_search(ui: UI) -> None:
    page = ui.page
    tag = uuid.uuid4().hex[:6]
    for name, event in ((f"Signups {tag}", "signup"), (f"Views {tag}", "$pageview")):
        q = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": event}]}
        _api(ui.site, "POST", "/insights", {"name": name, "query": q})
    ui.login(ui.site.a["api_key"], f"#/p/{ui.site.a['id']}/dashboards")
    items = page.get_by_role("list", name="Saved insights").locator("li")
    page.get_by_label("Search saved insights").fill(tag)
    expect(items).to_have_count(2)
    page.get_by_label("Search saved insights").fill(f"signups {tag}")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("Trends of signup")
    ui.shot("saved-insights")
    items.first.get_by_role("link").click()
    page.locator(".uplot").wait_for()
    expect(page.get_by_label("Event A")).to_have_value("signup")


def _query_bodies(requests: list[Request]) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    for r in requests:
        if r.url.endswith("/query") and r.method == "POST" and r.post_data:
            bodies.append(json.loads(r.post_data))
    return bodies


def test_dashboard_override_reorder_and_freshness(ui: UI) -> None:
    page = ui.page
    site = ui.site
    signups = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "signup"}]}
    dash = dashboard_with(site, ("Views", PAGEVIEWS), ("Signups", signups))
    seen: list[Request] = []
    page.on("request", lambda r: seen.append(r))
    ui.login(site.a["api_key"], f"#/p/{site.a['id']}/dashboards/{dash}")
    tiles = page.locator("article.tile")
    expect(tiles.nth(1).locator(".meta")).to_contain_text("updated just now")

    # The override: every tile's request carries it, and shows the API's answer to it.
    page.get_by_label("Date range (all tiles)").select_option("-14d")
    page.get_by_label("Filter property").fill("$browser")
    page.get_by_label("Value").fill("Chrome")
    seen.clear()
    page.get_by_role("button", name="Apply to all tiles").click()
    expect(tiles.nth(1).locator(".meta")).to_contain_text("updated")
    override = {
        "date_from": "-14d",
        "date_to": None,
        "properties": [
            {"key": "$browser", "operator": "exact", "type": "event", "value": "Chrome"}
        ],
    }
    posted = [r for r in seen if r.url.endswith("/query") and r.method == "POST"]
    assert [json.loads(r.post_data or "{}").get("filters_override") for r in posted] == [
        override,
        override,
    ]
    # Each tile drew the API's answer to its query with the override.
    for r in posted:
        sent = json.loads(r.post_data or "{}")
        got = r.response()
        assert got is not None
        want = answer(site, sent["query"], override)["results"]
        assert [s["data"] for s in got.json()["results"]] == [s["data"] for s in want]
        assert len(want[0]["data"]) == 15  # the override's 14 days back to today

    # Nothing new: "Refresh out-of-date" recomputes nothing.
    seen.clear()
    page.get_by_role("button", name="Refresh out-of-date").click()
    expect(page.get_by_role("button", name="Refresh out-of-date")).to_be_enabled()
    page.wait_for_timeout(300)
    modes = [b["refresh"] for b in _query_bodies(seen)]
    assert modes and set(modes) == {"force_cache"}, modes
    # A new event makes the tiles out of date: they are recomputed.
    before = answer(site, PAGEVIEWS)["data_version"]
    client = Posthog(site.a["token"], host=site.url, sync_mode=True)
    client.capture("signup", distinct_id="fresh-user", properties={"$browser": "Chrome"})
    client.flush()
    deadline = time.monotonic() + 30
    while (after := answer(site, {**PAGEVIEWS, "interval": "week"})["data_version"]) == before:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    seen.clear()
    page.get_by_role("button", name="Refresh out-of-date").click()
    # Each tile already read "Computed at ... data version <before>" (the override's compute):
    # wait for its recomputed answer at the new version, not for text that was there before.
    for i in range(2):
        expect(tiles.nth(i).locator(".meta")).to_contain_text(
            re.compile(rf"^Computed at .* · data version {after} · current")
        )
    # Both tiles were behind: each was asked from the cache, then recomputed.
    modes = sorted(b["refresh"] for b in _query_bodies(seen))
    assert modes == ["blocking", "blocking", "force_cache", "force_cache"], modes
    ui.shot("dashboard-overrides")

    # Reordering is saved with the dashboard.
    page.get_by_role("button", name="Move Views later").click()
    expect(tiles.nth(0)).to_contain_text("Signups")
    saved = _api(site, "GET", f"/dashboards/{dash}")
    assert [i["name"] for i in saved["insights"]] == ["Signups", "Views"]
    # Resizing too: a wide tile spans two columns, after a reload as well.
    narrow = tiles.nth(1).bounding_box()
    page.get_by_role("button", name="Make Views wide").click()
    expect(tiles.nth(1)).to_have_class("tile card wide")
    page.reload()
    expect(tiles.nth(1)).to_have_class("tile card wide")
    wide = tiles.nth(1).bounding_box()
    assert narrow and wide and wide["width"] > 1.8 * narrow["width"]
    views = next(i["id"] for i in saved["insights"] if i["name"] == "Views")
    assert _api(site, "GET", f"/dashboards/{dash}")["layouts"] == {str(views): {"w": 2, "h": 1}}


def test_funnel_time_to_convert_and_trends_views(ui: UI) -> None:
    """The funnel "View" select: the histogram's bars are the API's bins, the trends view draws
    a line and gets an interval."""
    page = ui.page
    ui.login(ui.site.a["api_key"])
    page.get_by_role("button", name="Funnel").click()
    page.get_by_label("Step 1").fill("$pageview")
    page.get_by_label("Step 2").fill("signup")
    page.get_by_label("Date range").select_option("-30d")
    page.get_by_label("View").select_option("time_to_convert")
    page.get_by_role("button", name="Run query").click()
    page.locator("svg.bars rect").first.wait_for(state="attached")
    query = query_in_url(page)
    assert query["funnelsFilter"]["funnelVizType"] == "time_to_convert"
    assert "interval" not in query
    bins = ui.site.query(ui.site.a, query)["results"]["bins"]
    titles = page.locator("svg.bars rect title").all_text_contents()
    assert [as_number(t.rsplit(":", 1)[1]) for t in titles] == [n for _, n in bins]
    expect(page.locator(".chart-note").first).to_contain_text("time to convert")
    ui.shot("insight-funnel-time-to-convert")
    page.get_by_label("View").select_option("trends")
    page.get_by_label("Interval").select_option("week")
    page.get_by_role("button", name="Run query").click()
    page.locator(".uplot canvas").first.wait_for(state="attached")
    query = query_in_url(page)
    assert query["funnelsFilter"]["funnelVizType"] == "trends"
    assert query["interval"] == "week"
    row = ui.site.query(ui.site.a, query)["results"][0]
    assert row["count"] == len(row["data"]) > 0
    # The view survives the link.
    page.reload()
    expect(page.get_by_label("View")).to_have_value("trends")


def _filter(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "operator": "exact", "type": "event", "value": value}


def test_filter_groups(ui: UI) -> None:
    page = ui.page
    open_insight(ui, PAGEVIEWS)
    page.locator(".uplot").wait_for()
    page.get_by_role("button", name="+ Add filter").click()
    first = page.locator('[data-filter="0"]')
    first.get_by_label("Property").fill("$os")
    first.get_by_label("Value").fill("Mac OS X")
    page.get_by_role("button", name="+ New filter group").click()
    page.get_by_role("button", name="+ Add to group 2").click()
    for i, browser in enumerate(("Chrome", "Firefox")):
        row = page.locator(f'[data-group-filter="0-{i}"]')
        row.get_by_label("Property").fill("$browser")
        row.get_by_label("Value").fill(browser)
    page.get_by_label("Group 2 match").select_option("OR")
    page.get_by_label("Join groups").select_option("OR")
    with page.expect_request(lambda r: r.url.endswith("/query") and r.method == "POST") as req:
        page.get_by_role("button", name="Run query").click()
    page.locator(".uplot").wait_for()
    sent = json.loads(req.value.post_data or "{}")["query"]
    assert sent["properties"] == {
        "type": "OR",
        "values": [
            {"type": "AND", "values": [_filter("$os", "Mac OS X")]},
            {
                "type": "OR",
                "values": [_filter("$browser", "Chrome"), _filter("$browser", "Firefox")],
            },
        ],
    }
    assert query_in_url(page) == sent
    expected = answer(ui.site, sent)["results"]
    plain = answer(ui.site, PAGEVIEWS)["results"]
    assert 0 < expected[0]["count"] < plain[0]["count"]  # the groups filtered something out
    table = numbers_table(page)
    assert [as_number(c) for c in table[1][1:]] == [*expected[0]["data"], expected[0]["count"]]
    ui.shot("insight-filter-groups")
    # The link (as a saved insight's query) gives the same groups back.
    page.reload()
    expect(page.get_by_label("Join groups")).to_have_value("OR")
    expect(page.get_by_label("Group 2 match")).to_have_value("OR")
    expect(page.locator('[data-group-filter="0-1"]').get_by_label("Value")).to_have_value("Firefox")
    expect(page.locator('[data-filter="0"]').get_by_label("Value")).to_have_value("Mac OS X")


def test_dashboard_filters_are_saved(ui: UI) -> None:
    page = ui.page
    site = ui.site
    dash = dashboard_with(site, ("Views", PAGEVIEWS))
    ui.login(site.a["api_key"], f"#/p/{site.a['id']}/dashboards/{dash}")
    tile = page.locator("article.tile").first
    expect(tile.locator(".meta")).to_contain_text("updated")
    page.get_by_label("Date range (all tiles)").select_option("-14d")
    page.get_by_label("Filter property").fill("$browser")
    page.get_by_label("Value").fill("Chrome")
    page.get_by_role("button", name="Apply to all tiles").click()
    expect(page.locator("#override-status")).to_have_text("Filters saved with the dashboard.")
    saved = {"date_from": "-14d", "properties": [_filter("$browser", "Chrome")]}
    assert _api(site, "GET", f"/dashboards/{dash}")["filters"] == saved
    # Reloaded, the dashboard opens with its filters and its tile is run with them.
    with page.expect_response(lambda r: r.url.endswith("/query")) as resp:
        page.reload()
    expect(page.get_by_label("Date range (all tiles)")).to_have_value("-14d")
    expect(page.get_by_label("Filter property")).to_have_value("$browser")
    expect(page.get_by_label("Value")).to_have_value("Chrome")
    body = json.loads(resp.value.request.post_data or "{}")
    assert body["filters_override"] == {**saved, "date_to": None}
    want = answer(site, PAGEVIEWS, body["filters_override"])["results"]
    assert [s["data"] for s in resp.value.json()["results"]] == [s["data"] for s in want]
    assert len(want[0]["data"]) == 15

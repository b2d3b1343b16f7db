"""Defects of issue 17 (part 5), one browser test each: every one failed before its fix.

They share conftest's session-scoped server (generated events in project A); dashboards and
insights they need are made through the API, which is cheaper than clicking them together.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Locator, expect
from posthog import Posthog

from tests.web.conftest import UI, Site
from tests.web.test_insights_e2e import numbers_table, query_in_url


def _api(site: Site, method: str, path: str, body: Any = None) -> Any:
    r = httpx.request(
        method,
        f"{site.url}/api/projects/{site.a['id']}{path}",
        json=body,
        headers={"Authorization": f"Bearer {site.a['api_key']}"},
        timeout=60,
    )
    r.raise_for_status()
    return r.json() if r.status_code != 204 else None


def dashboard_with(site: Site, *queries: tuple[str, dict[str, Any]]) -> int:
    """A new dashboard of project A holding one tile per (name, query); its id."""
    ids = [_api(site, "POST", "/insights", {"name": n, "query": q})["id"] for n, q in queries]
    dash: dict[str, Any] = _api(
        site, "POST", "/dashboards", {"name": f"d-{uuid.uuid4().hex[:6]}", "insight_ids": ids}
    )
    return int(dash["id"])


def open_insight(ui: UI, query: dict[str, Any]) -> None:
    """Open the insight page on `query` (logging in first if this page has not)."""
    link = f"#/p/{ui.site.a['id']}/insight?q={quote(json.dumps(query))}"
    if "#/p/" in ui.page.url:
        ui.page.goto(f"{ui.site.url}/{link}")
    else:
        ui.login(ui.site.a["api_key"], link)


def boxes(loc: Locator) -> list[dict[str, float]]:
    found: list[dict[str, float]] = loc.evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return {x: r.x, y: r.y, w: r.width, h: r.height}; })"
    )
    return found


LIFECYCLE = {
    "kind": "LifecycleQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview"}],
    "interval": "day",
    "dateRange": {"date_from": "-14d"},
}


@pytest.fixture(scope="module")
def one_off(site: Site) -> str:
    """An event sent once (its daily count is 0 or 1: a count axis must not step by 0.2)."""
    name = f"one_off_{uuid.uuid4().hex[:6]}"
    client = Posthog(site.a["token"], host=site.url, sync_mode=True)
    client.capture(name, distinct_id="one-off-user", properties={"plan": "pro"})
    client.flush()
    query = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": name}]}
    deadline = time.monotonic() + 30
    while site.query(site.a, query)["results"][0]["count"] < 1:
        assert time.monotonic() < deadline, "the one-off event never arrived"
        time.sleep(0.3)
    return name


# -- 1. saving to a new dashboard twice ------------------------------------------------------


def test_saving_twice_to_a_new_dashboard_makes_one_dashboard(ui: UI) -> None:
    page = ui.page
    ui.login(ui.site.a["api_key"])
    page.get_by_role("button", name="Run query").click()
    page.locator(".uplot").wait_for()
    name = f"Twice {uuid.uuid4().hex[:6]}"
    # A first save to a new dashboard...
    page.get_by_label("Dashboard", exact=True).select_option("")
    page.get_by_label("Insight name").fill("first")
    page.get_by_label("New dashboard name").fill(name)
    page.get_by_role("button", name="Save insight").click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_contain_text(name)
    # ...puts it in the dropdown, selected, and empties the name field.
    picker = page.get_by_label("Dashboard", exact=True)
    expect(picker.locator("option:checked")).to_have_text(name)
    expect(page.get_by_label("New dashboard name")).to_be_hidden()
    expect(page.get_by_label("New dashboard name")).to_have_value("")
    # A second save goes to the same dashboard.
    page.get_by_label("Insight name").fill("second")
    page.get_by_role("button", name="Save insight").click()
    expect(page.get_by_role("status").filter(has_text="Saved “second”")).to_contain_text(name)
    same = [d for d in _api(ui.site, "GET", "/dashboards") if d["name"] == name]
    assert len(same) == 1 and len(same[0]["insight_ids"]) == 2


# -- 2. switching the kind clears the previous chart -----------------------------------------


def test_switching_kind_clears_the_previous_chart(ui: UI) -> None:
    page = ui.page
    ui.login(ui.site.a["api_key"])
    page.get_by_role("button", name="Run query").click()
    page.locator(".uplot").wait_for()
    page.get_by_role("button", name="Funnel").click()
    expect(page.locator(".result .uplot")).to_have_count(0)
    expect(page.locator(".result table.numbers")).to_have_count(0)
    expect(page.locator(".result")).to_contain_text("Run query")


# -- 3. lifecycle labels ---------------------------------------------------------------------


def _assert_readable_ticks(ticks: Locator) -> None:
    found = boxes(ticks)
    assert len(found) >= 3
    for a, b in itertools.pairwise(found):
        assert a["x"] + a["w"] + 2 <= b["x"], f"x labels overlap: {a} {b}"
    assert min(b["h"] for b in found) >= 10, f"x labels too small to read: {found[0]}"


def test_lifecycle_labels_do_not_overlap(ui: UI) -> None:
    page = ui.page
    open_insight(ui, {**LIFECYCLE, "dateRange": {"date_from": "-30d"}})
    page.locator("svg.bars").first.wait_for()
    _assert_readable_ticks(page.locator("svg.bars text.xtick"))
    dash = dashboard_with(ui.site, ("Lifecycle", LIFECYCLE))
    page.goto(f"{ui.site.url}/#/p/{ui.site.a['id']}/dashboards/{dash}")
    page.locator("article.tile svg.bars").first.wait_for()
    _assert_readable_ticks(page.locator("article.tile svg.bars text.xtick"))


# -- 4. today's partial bucket is dashed -----------------------------------------------------


def test_the_incomplete_period_is_dashed(ui: UI) -> None:
    page = ui.page
    # Record the dash patterns the chart strokes with.
    page.add_init_script(
        "window.__dashes = []; const orig = CanvasRenderingContext2D.prototype.setLineDash;"
        "CanvasRenderingContext2D.prototype.setLineDash = function (d) {"
        " window.__dashes.push([...d]); return orig.call(this, d); };"
    )
    open_insight(
        ui, {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}
    )
    page.locator(".uplot").wait_for()
    expect(page.locator(".chart-note")).to_contain_text("incomplete")
    dashes = page.evaluate("window.__dashes")
    assert any(len(d) > 0 for d in dashes), dashes
    # A range that ended has no incomplete period.
    page.evaluate("window.__dashes = []")
    open_insight(
        ui,
        {
            "kind": "TrendsQuery",
            "series": [{"kind": "EventsNode", "event": "$pageview"}],
            "dateRange": {"date_from": "-7d", "date_to": "-1d"},
        },
    )
    page.locator(".uplot").wait_for()
    expect(page.locator(".chart-note")).to_have_count(0)
    assert not any(len(d) > 0 for d in page.evaluate("window.__dashes"))


# -- 5. funnel times in words, whole median column, stickiness trimmed ------------------------


def test_funnel_times_are_durations_and_stickiness_stops_with_the_data(ui: UI) -> None:
    page = ui.page
    funnel = {
        "kind": "FunnelsQuery",
        "series": [
            {"kind": "EventsNode", "event": "$pageview"},
            {"kind": "EventsNode", "event": "signup"},
        ],
        "dateRange": {"date_from": "-30d"},
    }
    open_insight(ui, funnel)
    page.locator(".fstep").first.wait_for()
    steps = ui.site.query(ui.site.a, funnel)["results"]
    assert steps[1]["average_conversion_time"] is not None
    rows = numbers_table(page)
    assert rows[0][-2:] == ["average time", "median time"]
    for cell in rows[2][-2:]:
        assert any(u in cell for u in (" s", " min", " h", " d")), rows[2]
        assert "." not in cell, rows[2]
    expect(page.locator(".fstats").nth(1)).to_contain_text("average ")
    # The whole table fits the result card: nothing to scroll to, the median column is seen.
    scroller = page.locator(".numbers-box .table-scroll")
    assert scroller.evaluate("e => e.scrollWidth <= e.clientWidth + 1")

    sticky = {
        "kind": "StickinessQuery",
        "series": [{"kind": "EventsNode", "event": "signup"}],
        "dateRange": {"date_from": "-30d"},
    }
    open_insight(ui, sticky)
    page.locator("svg.bars").first.wait_for()
    data = ui.site.query(ui.site.a, sticky)["results"][0]["data"]
    last_nonzero = max(i for i, v in enumerate(data) if v) + 1
    assert last_nonzero < len(data)  # the generated data stop before 31 days
    # One bar per bucket anybody reached (the numbers table keeps every bucket).
    expect(page.locator("svg.bars rect")).to_have_count(last_nonzero)
    assert len(numbers_table(page)[0]) - 2 == len(data)


# -- 6. live events: full properties, expandable ---------------------------------------------


def test_live_event_row_opens_its_properties(ui: UI) -> None:
    page = ui.page
    site = ui.site
    ui.login(site.a["api_key"], f"#/p/{site.a['id']}/live")
    name = f"long_props_{uuid.uuid4().hex[:6]}"
    props = {f"key_{i}": f"value number {i} " * 3 for i in range(12)}
    client = Posthog(site.a["token"], host=site.url, sync_mode=True)
    client.capture(name, distinct_id="long-user", properties=props)
    client.flush()
    row = page.locator("table.live tbody tr.event-row", has_text=name)
    expect(row).to_be_visible(timeout=20_000)
    expect(row).not_to_contain_text("…")
    row.get_by_role("button").click()
    detail = row.locator("xpath=following-sibling::tr[1]").locator("pre")
    expect(detail).to_be_visible()
    shown = json.loads(detail.inner_text())
    assert {k: shown[k] for k in props} == props
    # It stays open across the next refreshes.
    page.wait_for_timeout(2000)
    expect(detail).to_be_visible()
    expect(row.get_by_role("button")).to_have_attribute("aria-expanded", "true")


# -- 7. retention follows the date range -----------------------------------------------------


def test_retention_shows_the_cohorts_of_the_date_range(ui: UI) -> None:
    page = ui.page
    ui.login(ui.site.a["api_key"])
    page.get_by_role("button", name="Retention").click()
    page.get_by_label("Date range").select_option("-30d")
    page.get_by_role("button", name="Run query").click()
    page.locator("table.retention").wait_for()
    query = query_in_url(page)
    assert query["dateRange"]["date_from"] == "-30d"
    cohorts = ui.site.query(ui.site.a, query)["results"]
    # 30 days back to today: 31 daily cohorts.
    assert len(cohorts) == 31
    expect(page.locator("table.retention tbody tr:not(.mean)")).to_have_count(31)


# -- 8. compact legends, whole retention tiles, integer count axes ----------------------------


def test_tiles_fit_their_content_and_counts_step_by_integers(ui: UI, one_off: str) -> None:
    page = ui.page
    breakdown = {
        "kind": "TrendsQuery",
        "series": [{"kind": "EventsNode", "event": "$pageview"}],
        "breakdownFilter": {"breakdown": "$browser", "breakdown_type": "event"},
        "dateRange": {"date_from": "-14d"},
    }
    retention = {
        "kind": "RetentionQuery",
        "retentionFilter": {"period": "Day", "totalIntervals": 8},
        "dateRange": {"date_from": "-7d"},
    }
    once = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": one_off}]}
    dash = dashboard_with(ui.site, ("By browser", breakdown), ("Ret", retention), ("Once", once))
    ui.login(ui.site.a["api_key"], f"#/p/{ui.site.a['id']}/dashboards/{dash}")
    tiles = page.locator("article.tile")
    tiles.nth(0).locator(".uplot").wait_for()
    # The breakdown legend wraps values side by side: a few lines, not one per value.
    entries = boxes(tiles.nth(0).locator(".u-legend .u-series"))
    assert len(entries) >= 5
    assert len({round(e["y"]) for e in entries}) <= len(entries) / 2
    legend = tiles.nth(0).locator(".u-legend").bounding_box()
    plot = tiles.nth(0).locator(".uplot canvas").bounding_box()
    assert legend and plot and legend["height"] <= plot["height"] / 4, (legend, plot)
    # The retention tile shows its last period: the table fits the tile, nothing cut off.
    table = tiles.nth(1).locator("table.retention")
    table.wait_for()
    expect(table.locator("thead th").last).to_have_text("Day 7")
    scroller = tiles.nth(1).locator(".table-scroll")
    assert scroller.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
    # A count of at most 1 has integer axis steps.
    chart = tiles.nth(2).locator(".chart")
    chart.locator(".uplot").wait_for()
    expect(chart).to_have_attribute("data-y-ticks", re.compile(r"\d"))
    ticks = [float(t) for t in (chart.get_attribute("data-y-ticks") or "").split(",")]
    assert ticks and all(t == int(t) for t in ticks), ticks
    ui.shot("dashboard-tiles")

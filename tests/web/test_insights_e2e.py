"""The insight builder in a real browser: trends with a breakdown, funnel, retention,
stickiness, lifecycle, shared links, CSV export, errors, layout at phone width."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote, unquote

from playwright.sync_api import Page, Route, expect

from tests.web.conftest import UI

NULL = "$$_posthog_breakdown_null_$$"
OTHER = "$$_posthog_breakdown_other_$$"


def numbers_table(page: Page) -> list[list[str]]:
    """The numbers table under the chart, as text (header row first)."""
    table = page.locator("table.numbers")
    table.wait_for()
    rows: list[list[str]] = table.evaluate(
        "t => [...t.rows].map(r => [...r.cells].map(c => c.textContent))"
    )
    return rows


def as_number(text: str) -> float:
    return float(text.replace(",", "").replace("%", ""))


def query_in_url(page: Page) -> dict[str, Any]:
    """The query the page put in its URL (what a shared link carries)."""
    fragment = page.url.split("#", 1)[1]
    q = fragment.split("?q=", 1)[1]
    result: dict[str, Any] = json.loads(unquote(q))
    return result


def label(value: str) -> str:
    return {NULL: "(not set)", OTHER: "Other values"}.get(value, value)


def test_trends_with_breakdown_shows_the_api_numbers(ui: UI) -> None:
    page = ui.page
    ui.login(ui.site.a["api_key"])
    expect(page.locator("#project-tz")).to_have_text("Timezone: America/New_York")
    page.get_by_label("Event A").fill("$pageview")
    page.get_by_label("By property").fill("$browser")
    page.get_by_label("Top").fill("3")
    page.get_by_label("Date range").select_option("-14d")
    page.get_by_role("button", name="Run query").click()
    page.locator(".uplot canvas").first.wait_for()

    query = query_in_url(page)
    assert query["breakdownFilter"] == {
        "breakdown": "$browser",
        "breakdown_type": "event",
        "breakdown_limit": 3,
    }
    expected = ui.site.query(ui.site.a, query)["results"]
    rows = numbers_table(page)
    assert rows[0][1:-1] == expected[0]["labels"]
    assert len(rows) - 1 == len(expected) == 4  # top 3 browsers + "other"
    for row, series in zip(rows[1:], expected, strict=True):
        assert row[0] == f"$pageview · {label(series['breakdown_value'])}"
        assert [as_number(c) for c in row[1:]] == [*series["data"], series["count"]]
    # One line per breakdown value in the legend, "other" in words.
    legend = page.locator(".u-legend").inner_text()
    assert "Other values" in legend and OTHER not in legend
    assert page.locator(".u-legend .u-series").count() == 1 + len(expected)
    # Hovering the chart shows the values of that bucket in the legend.
    box = page.locator(".uplot .u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] - 5, box["y"] + box["height"] / 2)
    first_value = page.locator(".u-legend .u-series").nth(1).locator(".u-value").inner_text()
    assert as_number(first_value) == expected[0]["data"][-1]
    ui.shot("insight-trends")

    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    text = open(download.value.path(), encoding="utf-8").read()  # noqa: SIM115
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["series", *expected[0]["labels"], "total"]
    assert [float(x) for x in table[1][1:]] == [*expected[0]["data"], expected[0]["count"]]


def test_shared_link_reproduces_the_chart(ui: UI) -> None:
    query = {
        "kind": "TrendsQuery",
        "series": [{"kind": "EventsNode", "event": "signup", "math": "dau"}],
        "interval": "week",
        "dateRange": {"date_from": "-30d"},
    }
    link = f"#/p/{ui.site.a['id']}/insight?q={quote(json.dumps(query))}"
    # A fresh browser session: the link asks for the key, then shows the chart it names.
    ui.login(ui.site.a["api_key"], link)
    page = ui.page
    page.locator(".uplot").wait_for()
    expect(page.get_by_label("Event A")).to_have_value("signup")
    expect(page.get_by_label("Measure")).to_have_value("dau")
    expect(page.get_by_label("Interval")).to_have_value("week")
    expected = ui.site.query(ui.site.a, query)["results"]
    rows = numbers_table(page)
    assert [as_number(c) for c in rows[1][1:]] == [*expected[0]["data"], expected[0]["count"]]
    assert query_in_url(page) == query
    assert ui.site.a["api_key"] not in page.url


def test_bad_query_names_the_filter(ui: UI) -> None:
    ui.allow(r"Failed to load resource: the server responded with a status of 400")
    page = ui.page
    ui.login(ui.site.a["api_key"])
    page.get_by_role("button", name="+ Add filter").click()
    page.get_by_label("Property", exact=True).last.fill("$current_url")
    page.get_by_label("Operator").select_option("regex")
    page.get_by_label("Value").fill("(unclosed")
    page.get_by_role("button", name="Run query").click()
    alert = page.locator(".result [role=alert]")
    expect(alert).to_contain_text("Filter 1")
    expect(alert).to_contain_text("invalid RE2 regular expression")
    expect(page.locator('[data-filter="0"]')).to_have_class("row filter-row has-error")
    ui.shot("insight-error")
    # Fixing the filter clears the error.
    page.get_by_label("Value").fill("example")
    page.get_by_role("button", name="Run query").click()
    page.locator(".uplot").wait_for()
    expect(alert).to_have_count(0)


def test_stickiness_and_lifecycle_draw_bars(ui: UI) -> None:
    page = ui.page
    ui.login(ui.site.a["api_key"])
    page.get_by_role("button", name="Stickiness").click()
    # Absolute dates, in the project's timezone.
    page.get_by_label("Date range").select_option("custom")
    start, end = date.today() - timedelta(days=10), date.today() - timedelta(days=1)
    page.get_by_label("From").fill(start.isoformat())
    page.get_by_label("To").fill(end.isoformat())
    page.get_by_role("button", name="Run query").click()
    page.locator("svg.bars rect").first.wait_for()
    query = query_in_url(page)
    assert query["dateRange"] == {"date_from": start.isoformat(), "date_to": end.isoformat()}
    expected = ui.site.query(ui.site.a, query)["results"]
    assert len(expected[0]["data"]) == 10
    rows = numbers_table(page)
    assert [as_number(c) for c in rows[1][1:]] == [*expected[0]["data"], expected[0]["count"]]
    ui.shot("insight-stickiness")

    page.get_by_role("button", name="Lifecycle").click()
    page.get_by_role("button", name="Run query").click()
    page.locator("svg.bars rect").first.wait_for()
    expected = ui.site.query(ui.site.a, query_in_url(page))["results"]
    rows = {r[0]: [as_number(c) for c in r[1:]] for r in numbers_table(page)[1:]}
    assert [s["status"] for s in expected] == ["new", "returning", "resurrecting", "dormant"]
    assert list(rows) == [s["label"] for s in expected]
    for series in expected:
        assert rows[series["label"]] == [*series["data"], series["count"]]
    dormant = rows["$pageview - dormant"]
    assert all(v <= 0 for v in dormant) and min(dormant) < 0
    # Dormant bars hang below the zero line.
    zero_y = float(page.locator("svg.bars line.zero").get_attribute("y1") or "nan")
    red = page.locator('svg.bars rect[fill="#dc2626"]')
    assert red.count() > 0
    assert all(float(red.nth(i).get_attribute("y") or "nan") >= zero_y - 0.01 for i in range(3))
    ui.shot("insight-lifecycle")


def test_phone_width_and_keyboard(ui: UI) -> None:
    page = ui.page
    page.set_viewport_size({"width": 390, "height": 844})
    ui.open()
    # Keyboard only: type the key, Enter submits.
    page.get_by_label("Personal API key").focus()
    page.keyboard.type(ui.site.a["api_key"])
    page.keyboard.press("Enter")
    page.locator("#top").wait_for(state="visible")
    funnel = page.get_by_role("button", name="Funnel")
    funnel.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Step 2")).to_be_visible()
    page.get_by_label("Step 2").fill("signup")
    page.get_by_label("Step 2").press("Enter")  # Enter in a field runs the query
    page.locator(".fstep").first.wait_for()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, "the page scrolls sideways at phone width"
    ui.shot("phone-funnel")


def test_formula_of_two_series(ui: UI) -> None:
    page = ui.page
    ui.login(ui.site.a["api_key"])
    page.get_by_role("button", name="+ Add series").click()
    page.get_by_label("Event B").fill("signup")
    page.get_by_label("Formula").fill("B/A*100")
    page.get_by_role("button", name="Run query").click()
    page.locator(".uplot").wait_for()
    query = query_in_url(page)
    assert query["trendsFilter"] == {"formula": "B/A*100"}
    assert [s["event"] for s in query["series"]] == ["$pageview", "signup"]
    expected = ui.site.query(ui.site.a, query)["results"]
    rows = numbers_table(page)
    assert len(rows) - 1 == len(expected)
    for row, series in zip(rows[1:], expected, strict=True):
        shown = [as_number(c) for c in row[1:]]
        wanted = [*series["data"], series["count"]]
        # The table shows 2 decimals.
        assert all(abs(a - b) <= 0.0051 for a, b in zip(shown, wanted, strict=True))


def test_loading_indicator_while_the_query_runs(ui: UI) -> None:
    page = ui.page
    ui.login(ui.site.a["api_key"])
    held: list[Route] = []
    page.route("**/api/projects/*/query", lambda route: held.append(route))  # hold it back
    page.get_by_role("button", name="Run query").click()
    expect(page.locator(".result .loading")).to_contain_text("Computing")
    expect(page.get_by_role("button", name="Run query")).to_be_disabled()
    expect(page.locator(".result-body")).to_have_attribute("aria-busy", "true")
    assert len(held) == 1
    held[0].continue_()
    page.locator(".uplot").wait_for()
    expect(page.locator(".result .loading")).to_have_count(0)
    expect(page.get_by_role("button", name="Run query")).to_be_enabled()

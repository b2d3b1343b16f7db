"""Persons behind every number, in a real browser against a real server: a trends point, a
funnel step (converted and dropped off), a retention cell, a stickiness bar and a lifecycle bar
each open a modal whose total is the number clicked (the query API's answer); the modal pages
and saves a static cohort; the persons list searches and a person's page lists their events
newest first (every insight page reads the cohort list, and the modal saves one)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import httpx
from playwright.sync_api import Locator, Page, expect

from tests.web.conftest import UI
from tests.web.test_insights_e2e import query_in_url

TRENDS = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}],
    "interval": "day",
    "dateRange": {"date_from": "-7d"},
}
FUNNEL = {
    "kind": "FunnelsQuery",
    "series": [
        {"kind": "EventsNode", "event": "$pageview"},
        {"kind": "EventsNode", "event": "signup"},
    ],
    "dateRange": {"date_from": "-14d"},
    "funnelsFilter": {
        "funnelWindowInterval": 14,
        "funnelWindowIntervalUnit": "day",
        "funnelOrderType": "ordered",
    },
}


def open_insight(ui: UI, query: dict[str, Any]) -> Page:
    ui.login(ui.site.a["api_key"], f"#/p/{ui.site.a['id']}/insight?q={quote(json.dumps(query))}")
    return ui.page


def modal_total(page: Page) -> int:
    """The total the persons modal shows (once loaded)."""
    total = page.locator("dialog.persons-modal .persons-total")
    expect(total).to_have_attribute("data-total", re.compile(r"^\d+$"))
    return int(total.get_attribute("data-total") or "-1")


def modal_rows(page: Page) -> Locator:
    return page.locator("dialog.persons-modal table.persons tbody tr")


def close_modal(page: Page) -> None:
    page.locator("dialog.persons-modal").get_by_role("button", name="Close").click()
    expect(page.locator("dialog.persons-modal")).to_have_count(0)


def api_get(ui: UI, path: str) -> Any:
    r = httpx.get(
        f"{ui.site.url}/api/projects/{ui.site.a['id']}{path}",
        headers={"Authorization": f"Bearer {ui.site.a['api_key']}"},
        timeout=60,
    )
    r.raise_for_status()
    return r.json()


def test_trends_point_opens_its_persons_and_saves_a_cohort(ui: UI) -> None:
    page = open_insight(ui, TRENDS)
    page.locator(".uplot canvas").first.wait_for()
    series = ui.site.query(ui.site.a, TRENDS)["results"][0]
    # The numbers table's cells open their persons: the last day's unique persons.
    last = len(series["data"]) - 1
    page.locator("table.numbers tbody tr").first.locator("button.cell-pick").nth(last).click()
    assert modal_total(page) == series["data"][last] > 0
    expect(page.locator("dialog.persons-modal h2")).to_contain_text(series["labels"][last])
    assert modal_rows(page).count() == min(50, series["data"][last])
    ui.shot("persons-modal", full_page=False)
    # Pages of 50, ordered by person id: the next page holds other persons.
    first_page = modal_rows(page).evaluate_all("rs => rs.map(r => r.dataset.person)")
    if series["data"][last] > 50:
        page.locator("dialog.persons-modal").get_by_role("button", name="Next").click()
        expect(page.locator("dialog.persons-modal .page-where")).to_contain_text("51\u2013")
        second = modal_rows(page).evaluate_all("rs => rs.map(r => r.dataset.person)")
        assert not set(first_page) & set(second)
    # Save them as a static cohort: the cohort holds exactly these persons.
    page.get_by_label("Cohort name").fill("Last day's visitors")
    page.get_by_role("button", name="Save as static cohort").click()
    link = page.locator("dialog.persons-modal .save-cohort a")
    expect(link).to_have_text("Last day's visitors")
    cohort_id = int((link.get_attribute("href") or "").rsplit("/", 1)[1])
    members = api_get(ui, f"/cohorts/{cohort_id}/persons?limit=1000&offset=0")
    assert members["total"] == series["data"][last]
    close_modal(page)

    # A click on the chart itself picks the point under the pointer (here the first day).
    box = page.locator(".uplot .u-over").bounding_box()
    assert box is not None
    n = len(series["data"])
    top = max(series["data"]) * 1.08
    x = box["x"] + box["width"] * 0.5 / n
    y = box["y"] + box["height"] * (1 - series["data"][0] / top)
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    assert modal_total(page) == series["data"][0]


def test_funnel_steps_open_converted_and_dropped_persons(ui: UI) -> None:
    page = open_insight(ui, FUNNEL)
    page.locator(".fstep").first.wait_for()
    steps = ui.site.query(ui.site.a, FUNNEL)["results"]
    page.get_by_role("button", name="Persons at step 2").click()
    assert modal_total(page) == steps[1]["count"] > 0
    expect(page.locator("dialog.persons-modal .clicked")).to_contain_text(f"{steps[1]['count']:,}")
    close_modal(page)
    page.locator("button.dropped").first.click()
    dropped = steps[0]["count"] - steps[1]["count"]
    expect(page.locator("dialog.persons-modal h2")).to_contain_text("Dropped off before step 2")
    assert modal_total(page) == dropped > 0
    close_modal(page)
    page.get_by_role("button", name="Persons at step 1").click()
    assert modal_total(page) == steps[0]["count"]


def test_retention_stickiness_and_lifecycle_open_their_persons(ui: UI) -> None:
    retention = {
        "kind": "RetentionQuery",
        "dateRange": {"date_from": "-7d"},
        "retentionFilter": {
            "targetEntity": {"id": "$pageview", "type": "events"},
            "returningEntity": {"id": "$pageview", "type": "events"},
            "period": "Day",
            "totalIntervals": 5,
            "retentionType": "retention_recurring",
        },
    }
    page = open_insight(ui, retention)
    page.locator("table.retention").wait_for()
    # The builder asks for one cohort per period of the date range (its totalIntervals):
    # the page's own query is what the numbers on screen answer.
    rows = ui.site.query(ui.site.a, query_in_url(page))["results"]
    page.locator("table.retention tbody tr").first.locator("td.pick").nth(1).click()
    assert modal_total(page) == rows[0]["values"][1]["count"]
    expect(page.locator("dialog.persons-modal h2")).to_contain_text(rows[0]["date"])
    close_modal(page)

    stickiness = {
        **TRENDS,
        "kind": "StickinessQuery",
        "series": [{"kind": "EventsNode", "event": "$pageview"}],
    }
    page.goto(f"{ui.site.url}/#/p/{ui.site.a['id']}/insight?q={quote(json.dumps(stickiness))}")
    page.locator("svg.bars rect.pick").first.wait_for()
    sticky = ui.site.query(ui.site.a, stickiness)["results"][0]
    page.locator('svg.bars rect[data-series="0"][data-index="0"]').click()
    assert modal_total(page) == sticky["data"][0] > 0
    close_modal(page)

    lifecycle = {**stickiness, "kind": "LifecycleQuery"}
    page.goto(f"{ui.site.url}/#/p/{ui.site.a['id']}/insight?q={quote(json.dumps(lifecycle))}")
    page.locator("svg.bars rect.pick").first.wait_for()
    statuses = ui.site.query(ui.site.a, lifecycle)["results"]
    for j, s in enumerate(statuses):
        i = max(range(len(s["data"])), key=lambda k: abs(s["data"][k]))
        if not s["data"][i]:
            continue
        page.locator(f'svg.bars rect[data-series="{j}"][data-index="{i}"]').click(force=True)
        # Dormant persons are drawn below zero; the modal counts them.
        assert modal_total(page) == abs(s["data"][i]), s["status"]
        close_modal(page)


def test_persons_list_search_and_person_page(ui: UI) -> None:
    page = ui.page
    ui.login(ui.site.a["api_key"], f"#/p/{ui.site.a['id']}/persons")
    everyone = ui.site.query(
        ui.site.a, {"kind": "ActorsQuery", "source": None, "limit": 1, "offset": 0}
    )
    expect(page.locator(".persons-total")).to_have_attribute("data-total", str(everyone["total"]))
    expect(page.locator("table.persons tbody tr")).to_have_count(min(50, everyone["total"]))
    ui.shot("persons-list", full_page=False)
    page_one = ui.site.query(
        ui.site.a, {"kind": "ActorsQuery", "source": None, "limit": 50, "offset": 0}
    )["results"]
    # An identified person shows more (properties, several distinct ids).
    person = next((p for [p] in page_one if p["is_identified"]), page_one[0][0])
    distinct = person["distinct_ids"][0]
    page.get_by_label("Search", exact=True).fill(distinct)
    page.get_by_role("button", name="Search", exact=True).click()
    found = ui.site.query(
        ui.site.a,
        {"kind": "ActorsQuery", "source": None, "search": distinct, "limit": 100, "offset": 0},
    )
    expect(page.locator(".persons-total")).to_have_attribute("data-total", str(found["total"]))
    assert "search=" in page.url
    page.locator(f'table.persons tr[data-person="{person["id"]}"] a').click()

    page.locator("table.person-events tbody tr").first.wait_for()
    expect(page.locator(".distinct-ids")).to_contain_text(distinct)
    events = api_get(ui, f"/persons/{person['id']}/events?limit=100")
    shown = page.locator("table.person-events tbody tr").evaluate_all(
        "rs => rs.map(r => r.dataset.ts)"
    )
    assert shown == [e["timestamp"] for e in events["results"]]
    assert shown == sorted(shown, reverse=True)
    expect(page.locator("#older-events")).to_be_visible(visible=events["hasMore"])
    ui.shot("person-page")

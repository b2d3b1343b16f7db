"""Cohorts in a real browser against a real server: the list, a dynamic cohort made in the
editor (person property and behavioural conditions in AND/OR groups) stored as PostHog's filter
JSON, a static cohort from a CSV upload, and cohorts in the insight builder as a filter and as a
breakdown (the chart equals the query API's answer). Needs the cohorts API (branch h-cohorts)."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import FilePayload, Page, expect

from tests.web.conftest import UI
from tests.web.test_insights_e2e import query_in_url


def api(ui: UI, method: str, path: str, body: Any = None) -> Any:
    r = httpx.request(
        method,
        f"{ui.site.url}/api/projects/{ui.site.a['id']}{path}",
        json=body,
        headers={"Authorization": f"Bearer {ui.site.a['api_key']}"},
        timeout=60,
    )
    r.raise_for_status()
    return r.json() if r.content else None


def cohorts(ui: UI) -> list[dict[str, Any]]:
    res = api(ui, "GET", "/cohorts")
    return res if isinstance(res, list) else res["results"]


def numbers(page: Page) -> list[list[str]]:
    table = page.locator("table.numbers")
    table.wait_for()
    rows: list[list[str]] = table.evaluate(
        "t => [...t.rows].map(r => [...r.cells].map(c => c.textContent))"
    )
    return rows


def test_dynamic_cohort_from_the_editor(ui: UI) -> None:
    page = ui.page
    ui.login(ui.site.a["api_key"], f"#/p/{ui.site.a['id']}/cohorts")
    page.locator("#new-cohort").click()
    page.get_by_label("Name").fill("Engaged free users")
    page.get_by_label("Persons who match").select_option("OR")
    # Group 1: person property plan = free AND did $pageview at least 3 times in 30 days.
    group = page.locator('[data-group="0"]')
    group.get_by_label("Property").fill("plan")
    group.get_by_label("Value").fill("free")
    group.get_by_role("button", name="+ Behaviour").click()
    cond = page.locator('[data-condition="0-1"]')
    cond.get_by_label("Event").fill("$pageview")
    cond.get_by_label("How often").select_option("gte")
    cond.get_by_label("Times").fill("3")
    cond.get_by_label("In the last").fill("30")
    # Group 2: did not do signup in the last 2 weeks.
    page.get_by_role("button", name="+ Add group").click()
    g2 = page.locator('[data-group="1"]')
    g2.get_by_label("Condition 1", exact=True).select_option("behavioral")
    c2 = page.locator('[data-condition="1-0"]')
    c2.get_by_label("Person").select_option("did_not")
    expect(c2.get_by_label("Times")).to_be_hidden()
    c2.get_by_label("Event").fill("signup")
    c2.get_by_label("In the last").fill("2")
    c2.get_by_label("Unit").select_option("week")
    ui.shot("cohort-editor")
    page.get_by_role("button", name="Create cohort").click()

    expect(page.locator("h1")).to_have_text("Engaged free users")
    cohort_id = int(page.url.rsplit("/", 1)[1])
    stored = api(ui, "GET", f"/cohorts/{cohort_id}")
    assert stored["is_static"] is False
    assert stored["filters"]["properties"] == {
        "type": "OR",
        "values": [
            {
                "type": "AND",
                "values": [
                    {
                        "type": "person",
                        "key": "plan",
                        "operator": "exact",
                        "value": "free",
                        "negation": False,  # the server's canonical form adds it
                    },
                    {
                        "type": "behavioral",
                        "key": "$pageview",
                        "event_type": "events",
                        "value": "performed_event_multiple",
                        "operator": "gte",
                        "operator_value": 3,
                        "time_value": 30,
                        "time_interval": "day",
                        "negation": False,
                    },
                ],
            },
            {
                "type": "AND",
                "values": [
                    {
                        "type": "behavioral",
                        "key": "signup",
                        "event_type": "events",
                        "value": "performed_event",
                        "time_value": 2,
                        "time_interval": "week",
                        "negation": True,
                    }
                ],
            },
        ],
    }
    members = api(ui, "GET", f"/cohorts/{cohort_id}/persons?limit=1&offset=0")
    expect(page.locator(".persons-total")).to_have_attribute("data-total", str(members["total"]))
    expect(page.locator(".card").first).to_contain_text("did not do signup in the last 2 weeks")
    expect(page.locator("main")).not_to_contain_text("null")
    ui.shot("cohort-page", full_page=False)

    page.get_by_role("link", name="← Cohorts").click()
    row = page.locator(f'table.cohorts tr[data-cohort="{cohort_id}"]')
    expect(row).to_contain_text("dynamic")
    listed = next(c for c in cohorts(ui) if c["id"] == cohort_id)
    expect(row.locator("td.num")).to_have_text(f"{listed['count']:,}")
    ui.shot("cohorts-list")


def test_static_cohort_from_a_csv_upload(ui: UI) -> None:
    page = ui.page
    live = api(ui, "GET", "/events/live?limit=200")["events"]
    known = sorted({e["distinct_id"] for e in live})[:3]
    assert len(known) == 3
    csv = "distinct_id\n" + "\n".join([*known, "nobody-has-this-id"]) + "\n"
    ui.login(ui.site.a["api_key"], f"#/p/{ui.site.a['id']}/cohorts")
    page.locator("#new-static-cohort").click()
    page.get_by_label("Name").fill("Uploaded three")
    page.locator("#cohort-csv").set_input_files(
        files=FilePayload(name="ids.csv", mimeType="text/csv", buffer=csv.encode())
    )
    page.get_by_role("button", name="Create cohort").click()
    expect(page.locator("h1")).to_have_text("Uploaded three")
    expect(page.get_by_role("status").first).to_contain_text("1 unknown distinct id")
    cohort_id = int(page.url.rsplit("/", 1)[1])
    members = api(ui, "GET", f"/cohorts/{cohort_id}/persons?limit=100&offset=0")
    assert {d for [p] in members["results"] for d in p["distinct_ids"]} >= set(known)
    expect(page.locator(".persons-total")).to_have_attribute("data-total", str(members["total"]))
    # Another upload on the cohort's page adds to it.
    page.locator("#cohort-csv").set_input_files(
        files=FilePayload(name="more.csv", mimeType="text/csv", buffer=b"also-unknown\n")
    )
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(".upload-status")).to_contain_text("Added 0 persons; 1 unknown")


def test_cohort_as_filter_and_breakdown_in_the_builder(ui: UI) -> None:
    page = ui.page
    cohort = api(
        ui,
        "POST",
        "/cohorts",
        {
            "name": "Pageview regulars",
            "description": "",
            "is_static": False,
            "filters": {
                "properties": {
                    "type": "AND",
                    "values": [
                        {
                            "type": "behavioral",
                            "key": "$pageview",
                            "event_type": "events",
                            "value": "performed_event_multiple",
                            "operator": "gte",
                            "operator_value": 5,
                            "time_value": 30,
                            "time_interval": "day",
                            "negation": False,
                        }
                    ],
                }
            },
        },
    )
    ui.login(ui.site.a["api_key"])
    page.get_by_label("Measure").select_option("dau")
    page.get_by_role("button", name="+ Add filter").click()
    page.get_by_label("Of").first.select_option("cohort")
    page.get_by_label("Cohort").select_option(str(cohort["id"]))
    page.get_by_label("Person", exact=True).select_option("in")
    page.get_by_role("button", name="Run query").click()
    page.locator(".uplot").wait_for()
    query = query_in_url(page)
    assert query["properties"] == [
        {"key": "id", "type": "cohort", "operator": "in", "value": cohort["id"]}
    ]
    expected = ui.site.query(ui.site.a, query)["results"]
    rows = numbers(page)
    assert [float(c.replace(",", "")) for c in rows[1][1:]] == [
        *expected[0]["data"],
        expected[0]["count"],
    ]

    # Breakdown by the cohort and all users (id 0).
    page.get_by_role("button", name="Remove filter 1").click()
    breakdown = page.locator("fieldset", has=page.locator("legend", has_text="Breakdown"))
    breakdown.get_by_label("Of").select_option("cohort")
    breakdown.get_by_label("All users").check()
    breakdown.get_by_label("Pageview regulars").check()
    page.get_by_role("button", name="Run query").click()
    page.locator(".uplot").wait_for()
    query = query_in_url(page)
    assert query["breakdownFilter"] == {"breakdown_type": "cohort", "breakdown": [0, cohort["id"]]}
    expected = ui.site.query(ui.site.a, query)["results"]
    rows = numbers(page)[1:]
    assert len(rows) == len(expected) == 2
    for row, series in zip(rows, expected, strict=True):
        assert [float(c.replace(",", "")) for c in row[1:]] == [*series["data"], series["count"]]
    names = [r[0] for r in rows]
    assert any("Pageview regulars" in n for n in names) and any("All users" in n for n in names)
    # The link keeps the cohort picks.
    page.reload()
    page.locator(".uplot").wait_for()
    expect(breakdown.get_by_label("Pageview regulars")).to_be_checked()

"""Dashboards, the live view, empty states and project isolation in a real browser."""

from __future__ import annotations

import re
import time
import uuid

import httpx
from playwright.sync_api import Browser, expect
from posthog import Posthog

from tests.web.conftest import SECRET_EVENT, UI
from tests.web.test_insights_e2e import as_number, numbers_table, query_in_url


def test_funnel_and_retention_saved_to_a_dashboard(ui: UI) -> None:
    page = ui.page
    site = ui.site
    ui.login(site.a["api_key"])
    # Funnel: $pageview -> signup.
    page.get_by_role("button", name="Funnel").click()
    page.get_by_label("Step 1").fill("$pageview")
    page.get_by_label("Step 2").fill("signup")
    page.get_by_label("Date range").select_option("-30d")
    page.get_by_role("button", name="Run query").click()
    page.locator(".fstep").first.wait_for()
    funnel_query = query_in_url(page)
    steps = site.query(site.a, funnel_query)["results"]
    rows = numbers_table(page)[1:]
    assert [as_number(r[3]) for r in rows] == [s["count"] for s in steps]
    expect(page.locator(".fstats").nth(1)).to_contain_text(
        f"{steps[1]['conversion_from_first'] * 100:.1f}% of step 1"
    )
    expect(page.locator(".fstats").nth(1)).to_contain_text("median ")
    ui.shot("insight-funnel")
    page.get_by_label("Insight name").fill("Signup funnel")
    page.get_by_label("New dashboard name").fill("Growth")
    page.get_by_role("button", name="Save insight").click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_contain_text("Growth")

    # Retention: weekly, signup -> $pageview.
    page.get_by_role("button", name="Retention").click()
    page.get_by_label("Start event").fill("signup")
    page.get_by_label("Returning event").fill("$pageview")
    page.get_by_label("Period", exact=True).select_option("Day")
    # The cohorts are the date range's days: the last 7 days and today.
    page.get_by_label("Date range").select_option("-7d")
    page.get_by_role("button", name="Run query").click()
    page.locator("table.retention").wait_for()
    retention_query = query_in_url(page)
    assert retention_query["retentionFilter"]["totalIntervals"] == 8
    cohorts = site.query(site.a, retention_query)["results"]
    body = page.locator("table.retention tbody tr:not(.mean)")
    assert body.count() == len(cohorts) == 8
    sizes = [as_number(body.nth(i).locator("td").first.inner_text()) for i in range(8)]
    assert sizes == [c["values"][0]["count"] for c in cohorts]
    first = cohorts[0]["values"]
    if first[0]["count"]:
        shown = body.nth(0).locator("td.shade").nth(1).inner_text()
        assert shown == f"{first[1]['count'] / first[0]['count'] * 100:.1f}%"
    ui.shot("insight-retention")
    page.get_by_label("Insight name").fill("Signup retention")
    expect(page.get_by_label("Dashboard", exact=True)).to_have_value(
        page.get_by_label("Dashboard", exact=True).locator("option").last.get_attribute("value")
        or ""
    )
    page.get_by_role("button", name="Save insight").click()
    saved = page.get_by_role("status").filter(has_text="Saved")
    saved.get_by_role("link", name="Growth").click()

    # The dashboard: both tiles, with how fresh each is (computed or cached, when, which data
    # version, and that it is the current one).
    tiles = page.locator("article.tile")
    expect(tiles).to_have_count(2)
    version = re.compile(r"(Computed|Cached) at \d\d:\d\d:\d\d · data version \d+ · current")
    expect(tiles.nth(0).locator(".meta")).to_have_text(version)
    expect(tiles.nth(1).locator(".meta")).to_have_text(version)
    expect(tiles.nth(0)).to_contain_text("Signup funnel")
    expect(tiles.nth(1).locator("table.retention")).to_be_visible()
    ui.shot("dashboard")
    # Reload: still logged in (session storage), same tiles, served from the result cache (no
    # commit since: the cached answers are at the current data version).
    page.reload()
    expect(tiles).to_have_count(2)
    expect(tiles.nth(1).locator(".meta")).to_contain_text("Cached at")
    page.get_by_role("button", name="Refresh all").click()  # force_blocking: computed again
    expect(tiles.nth(0).locator(".fstep")).to_have_count(2)
    expect(tiles.nth(0).locator(".meta")).to_contain_text("Computed at")
    # A tile's title opens its insight with the saved query.
    tiles.nth(0).get_by_role("link", name="Signup funnel").click()
    page.locator(".fstep").first.wait_for()
    assert query_in_url(page) == funnel_query
    page.get_by_role("link", name="Dashboards").click()
    expect(page.get_by_role("link", name="Growth")).to_be_visible()
    ui.shot("dashboards")


def test_live_view_shows_a_posthog_python_event(ui: UI) -> None:
    page = ui.page
    site = ui.site
    ui.login(site.a["api_key"], f"#/p/{site.a['id']}/live")
    expect(page.locator("table.live tbody tr").first).to_be_visible()
    name = f"live_check_{uuid.uuid4().hex[:8]}"
    client = Posthog(site.a["token"], host=site.url, sync_mode=True)
    client.capture(name, distinct_id="live-user-1", properties={"plan": "pro"})
    client.flush()
    started = time.monotonic()
    row = page.locator("table.live tbody tr", has_text=name)
    expect(row).to_be_visible(timeout=20_000)  # generous: committed every 0.5 s, polled 1.5 s
    assert time.monotonic() - started < 20
    expect(row).to_contain_text("live-user-1")
    expect(row).to_contain_text('"plan":"pro"')
    ui.shot("live", full_page=False)
    # Leaving the page stops the polling.
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/events/live" in r.url else None)
    page.get_by_role("link", name="Insights").click()
    expect(page.get_by_role("button", name="Run query")).to_be_visible()
    page.wait_for_timeout(3500)  # more than two polling intervals
    assert len(polls) <= 1, polls  # at most one already scheduled before the click


def test_project_switcher_and_empty_state(ui: UI) -> None:
    page = ui.page
    site = ui.site
    ui.login(site.a["api_key"])
    select = page.get_by_label("Project")
    assert select.locator("option").all_inner_texts() == [
        f"Demo (#{site.a['id']})",
        f"empty (#{site.empty['id']})",
    ]
    select.select_option(str(site.empty["id"]))
    page.wait_for_url(f"**/#/p/{site.empty['id']}/insight")
    empty = page.locator("section.empty")
    expect(empty).to_contain_text("No events yet")
    expect(empty.locator("code")).to_contain_text(site.empty["token"])
    expect(empty.locator("code")).to_contain_text(f'host="{site.url}"')
    expect(page.locator("#project-tz")).to_have_text("Timezone: UTC")
    ui.shot("empty-project")
    page.get_by_role("link", name="Live events").click()
    expect(page.locator("section.empty")).to_contain_text("No events yet")


def test_wrong_key_never_shows_another_projects_data(ui: UI) -> None:
    page = ui.page
    site = ui.site
    ui.allow(r"status of 401")
    # An unknown key is refused.
    ui.open()
    page.get_by_label("Personal API key").fill("phx_not_a_real_key")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    ui.shot("login")
    # B's key, then a link to A's insight: no name, no number of A.
    ui.login(site.b["api_key"], f"#/p/{site.a['id']}/insight")
    expect(page.get_by_role("alert")).to_contain_text(f"Project {site.a['id']} not found")
    options = page.locator("#project-select option").all_inner_texts()
    assert options == [f"bravo (#{site.b['id']})"]
    for path in ("insight", "dashboards", "live"):
        page.goto(f"{site.url}/#/p/{site.a['id']}/{path}")
        expect(page.get_by_role("alert")).to_contain_text("not found")
        text = page.locator("body").inner_text()
        assert "Demo" not in text and "$pageview" not in text
    ui.shot("wrong-project")
    # B's own page lists B's events only; A's key never sees B's secret event.
    page.goto(f"{site.url}/#/p/{site.b['id']}/live")
    expect(page.locator("table.live")).to_contain_text(SECRET_EVENT)
    page.get_by_role("button", name="Log out").click()
    ui.login(site.a["api_key"])
    page.locator("#dl-events option").first.wait_for(state="attached")
    names = page.locator("#dl-events option").evaluate_all("os => os.map(o => o.value)")
    assert "$pageview" in names and SECRET_EVENT not in names
    page.goto(f"{site.url}/#/p/{site.b['id']}/live")
    expect(page.get_by_role("alert")).to_contain_text(f"Project {site.b['id']} not found")
    assert SECRET_EVENT not in page.locator("body").inner_text()


def test_key_is_never_in_a_url(ui: UI, browser: Browser) -> None:
    """Every request the page makes carries the key in the header only."""
    urls: list[str] = []
    ui.page.on("request", lambda r: urls.append(r.url))
    ui.login(ui.site.a["api_key"])
    ui.page.get_by_role("button", name="Run query").click()
    ui.page.locator(".uplot").wait_for()
    assert urls and not [u for u in urls if ui.site.a["api_key"] in u]
    assert ui.site.a["api_key"] not in ui.page.url
    # And the stored key does not outlive the tab: a new context starts logged out.
    other = browser.new_context()
    try:
        fresh = other.new_page()
        fresh.goto(ui.site.url + "/")
        expect(fresh.get_by_label("Personal API key")).to_be_visible()
    finally:
        other.close()


def test_pages_send_security_headers(ui: UI) -> None:
    for path in ("/", "/static/js/main.js", "/static/css/app.css", "/favicon.ico"):
        r = httpx.get(ui.site.url + path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
    html = httpx.get(ui.site.url + "/").text
    assert "<style" not in html and " style=" not in html
    assert "<script>" not in html  # every script has a src
    assert "cdn" not in html.lower() and "https://" not in html

"""The paths insight in a real browser against a real server: the builder's paths controls
make the PathsQuery, the Sankey draws the API's edges (a node per step and name, drop-offs),
and clicking an edge, a node or a drop-off opens its persons, whose total is the number shown.
Clicking an edge or a drop-off opens the persons whose total is the number shown; a node's bar
opens the persons who reached it (its number sums its edges, so it claims none)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.web.conftest import SCREENSHOTS, UI
from tests.web.test_insights_e2e import query_in_url
from tests.web.test_persons_e2e import close_modal, modal_total


def node_values(edges: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """Per node: (the sum of its edges in, or out at step 1; persons whose path ends there,
    the server's `target_dropoffs`), what the view shows."""
    into: dict[str, int] = {}
    out: dict[str, int] = {}
    drops: dict[str, int] = {}
    for e in edges:
        into[e["target"]] = into.get(e["target"], 0) + e["value"]
        out[e["source"]] = out.get(e["source"], 0) + e["value"]
        drops[e["target"]] = e["target_dropoffs"]
    return {n: (max(into.get(n, 0), out.get(n, 0)), drops.get(n, 0)) for n in {*into, *out}}


def test_paths_builder_and_sankey(ui: UI) -> None:
    page = ui.page
    ui.login(ui.site.a["api_key"])
    page.get_by_role("button", name="Paths").click()
    expect(page.get_by_label("Interval")).to_have_count(0)
    page.get_by_label("Steps").fill("4")
    page.get_by_label("Max edges").fill("1000")
    page.get_by_label("Exclude events (a, b)").fill("$pageleave, $autocapture")
    page.get_by_role("button", name="+ Add cleaning rule").click()
    page.get_by_label("Rule 1 regex").fill(r"\?.*$")
    page.get_by_label("Alias").fill("")
    page.get_by_label("Date range").select_option("-14d")
    page.get_by_role("button", name="Run query").click()
    page.locator("svg.sankey path.edge").first.wait_for()

    query = query_in_url(page)
    assert query["kind"] == "PathsQuery" and "series" not in query and "interval" not in query
    assert query["pathsFilter"] == {
        "includeEventTypes": ["$pageview"],
        "stepLimit": 4,
        "edgeLimit": 1000,
        "excludeEvents": ["$pageleave", "$autocapture"],
        "localPathCleaningFilters": [{"alias": "", "regex": r"\?.*$"}],
        "pathReplacements": True,
    }
    edges = ui.site.query(ui.site.a, query)["results"]
    assert edges, "the generated project has page-view paths"
    # One SVG edge per API edge, widths ordered like the values; one node per step and name.
    assert page.locator("svg.sankey path.edge").count() == len(edges)
    nodes = node_values(edges)
    assert page.locator("svg.sankey g.node").count() == len(nodes)
    steps = {int(k.split("_", 1)[0]) for k in nodes}
    assert max(steps) <= 4
    rows = page.locator("table.paths-edges tbody tr").evaluate_all(
        "rs => rs.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert [(r[0], r[1], int(r[2].replace(",", ""))) for r in rows] == [
        (e["source"], e["target"], e["value"]) for e in edges
    ]
    dropoffs = {k: d for k, (_, d) in nodes.items() if d}
    assert page.locator("svg.sankey rect.dropoff").count() == len(dropoffs)


def test_paths_edges_nodes_and_dropoffs_open_their_persons(ui: UI) -> None:
    page = ui.page
    ui.login(ui.site.a["api_key"])
    page.get_by_role("button", name="Paths").click()
    page.get_by_label("Steps").fill("3")
    page.get_by_label("Max edges").fill("1000")
    page.get_by_role("button", name="Run query").click()
    page.locator("svg.sankey path.edge").first.wait_for()
    query = query_in_url(page)
    edges = ui.site.query(ui.site.a, query)["results"]
    nodes = node_values(edges)
    dropoffs = {k: d for k, (_, d) in nodes.items() if d}
    # An edge's persons (its count in the table; the SVG path opens the same).
    page.locator("table.paths-edges button.edge-persons").first.click()
    expect(page.locator("dialog.persons-modal h2")).to_contain_text("→")
    assert modal_total(page) == edges[0]["value"]
    close_modal(page)
    first = f'[data-source="{edges[0]["source"]}"][data-target="{edges[0]["target"]}"]'
    # The edge's own click handler (a pointer click at a curve's bounding-box centre can land
    # on another edge drawn over it).
    page.locator(f"svg.sankey path.edge{first}").first.dispatch_event("click")
    assert modal_total(page) == edges[0]["value"]
    close_modal(page)
    # A node of step 2: the persons who reached it.
    key, (value, _) = max(
        ((k, v) for k, v in nodes.items() if k.startswith("2_")), key=lambda kv: kv[1][0]
    )
    page.locator(f'svg.sankey g.node[data-node="{key}"] rect.node-bar').click(force=True)
    expect(page.locator("dialog.persons-modal h2")).to_contain_text("Reached")
    reached = {**query, "pathsFilter": {**query["pathsFilter"], "pathEndKey": key}}
    actors = ui.site.query(
        ui.site.a,
        {
            "kind": "ActorsQuery",
            "source": {"kind": "InsightActorsQuery", "source": reached},
            "limit": 1,
            "offset": 0,
        },
    )
    # The node's height sums its edges in; a person who came in by two ways is one person, so
    # the dialog claims no chart number for a node, and the table's node numbers open nothing.
    assert modal_total(page) == actors["total"] <= value
    assert page.locator("dialog.persons-modal p.clicked").count() == 0
    close_modal(page)
    assert page.locator("table.paths-nodes button.node-persons").count() == 0
    page.locator("svg.sankey g.node text.node-label").first.click(force=True)
    page.wait_for_timeout(300)  # a click that opened a dialog would show it by now
    assert page.locator("dialog.persons-modal").count() == 0
    # A drop-off: the persons whose path ends at that node.
    key, drop = max(dropoffs.items(), key=lambda kv: kv[1])
    page.locator(f'svg.sankey rect.dropoff[data-dropoff="{key}"]').click(force=True)
    expect(page.locator("dialog.persons-modal h2")).to_contain_text("Dropped off after")
    assert modal_total(page) == drop


def test_paths_link_round_trips_the_controls(ui: UI) -> None:
    page = ui.page
    ui.login(ui.site.a["api_key"])
    page.get_by_role("button", name="Paths").click()
    page.get_by_label("Custom events").check()
    page.get_by_label("Start point").fill("signup")
    page.get_by_label("Group paths (wildcards, e.g. /product/*)").fill("/docs/*")
    page.get_by_label("Min persons per edge").fill("2")
    page.get_by_role("button", name="Run query").click()
    expect(page.locator(".result .meta")).to_contain_text("data version")
    query = query_in_url(page)
    assert query["pathsFilter"]["includeEventTypes"] == ["$pageview", "custom_event"]
    assert query["pathsFilter"]["startPoint"] == "signup"
    assert query["pathsFilter"]["pathGroupings"] == ["/docs/*"]
    assert query["pathsFilter"]["minEdgeWeight"] == 2
    # A reload shows the same controls (the link carries them).
    page.reload()
    expect(page.get_by_label("Start point")).to_have_value("signup")
    expect(page.get_by_label("Custom events")).to_be_checked()
    expect(page.get_by_label("Min persons per edge")).to_have_value("2")
    edges = ui.site.query(ui.site.a, query)["results"]
    assert all(
        e["source"].startswith("1_signup") or not e["source"].startswith("1_") for e in edges
    )
    assert page.locator("svg.sankey path.edge").count() == len(edges)
    # The documentation's picture: page views only, the 14 heaviest edges.
    page.get_by_label("Custom events").uncheck()
    page.get_by_label("Start point").fill("")
    page.get_by_label("Group paths (wildcards, e.g. /product/*)").fill("")
    page.get_by_label("Min persons per edge").fill("")
    page.get_by_label("Steps").fill("4")
    page.get_by_label("Max edges").fill("14")
    page.get_by_role("button", name="Run query").click()
    expect(page.locator("svg.sankey path.edge")).to_have_count(14)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(".insight").screenshot(path=str(SCREENSHOTS / "insight-paths.png"))

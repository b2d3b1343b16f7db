"""The Rich tables of `eventlens query`, one per insight kind, on real reference results."""

from __future__ import annotations

from typing import Any

import pytest

from eventlens.cli.common import console
from eventlens.cli.query import render
from eventlens.query.testing import run_on_events

NOW = "2024-01-10T12:00:00Z"
EVENTS: list[dict[str, Any]] = [
    {
        "event": "$pageview",
        "distinct_id": "a",
        "timestamp": "2024-01-07T10:00:00Z",
        "properties": {"plan": "pro"},
    },
    {
        "event": "$pageview",
        "distinct_id": "a",
        "timestamp": "2024-01-08T10:00:00Z",
        "properties": {"plan": "pro"},
    },
    {"event": "$pageview", "distinct_id": "b", "timestamp": "2024-01-08T11:00:00Z"},
    {"event": "signup", "distinct_id": "a", "timestamp": "2024-01-08T12:30:00Z"},
]
RANGE = {"date_from": "2024-01-07", "date_to": "2024-01-09"}
PV = {"kind": "EventsNode", "event": "$pageview"}


def _table(query: dict[str, Any], width: int = 160) -> str:
    results = run_on_events(EVENTS, query, now=NOW)
    response = {
        "results": results,
        "data_version": 3,
        "engine": "reference",
        "timings": {"total_ms": 1.5},
    }
    with console.capture() as cap:
        old = console.width
        console.width = width
        try:
            render(response, query["kind"])
        finally:
            console.width = old
    return cap.get()


def _row(text: str, first: str) -> list[str]:
    """The cells of the table row whose first cell is `first`."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").strip("│ ").split("│")]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n{text}")


def test_trends_periods_down_series_across() -> None:
    text = _table(
        {"kind": "TrendsQuery", "series": [PV, {**PV, "math": "dau"}], "dateRange": RANGE}
    )
    assert "$pageview (dau)" in text
    assert _row(text, "total")[1:] == ["3", "3"]
    assert "data version 3 · engine reference · 1.5 ms" in text


def test_trends_breakdown_labels() -> None:
    text = _table(
        {
            "kind": "TrendsQuery",
            "series": [PV],
            "dateRange": RANGE,
            "breakdownFilter": {"breakdown": "plan", "breakdown_type": "event"},
        }
    )
    assert "$pageview / pro" in text and "$pageview / (none)" in text


def test_funnel_steps_with_conversion_and_time() -> None:
    text = _table(
        {
            "kind": "FunnelsQuery",
            "series": [PV, {"kind": "EventsNode", "event": "signup"}],
            "dateRange": RANGE,
        }
    )
    assert _row(text, "1")[1:4] == ["$pageview", "2", "100.0%"]
    # Both of a's attempts reach signup; the earliest (7th, 10:00) supplies the time: 26.5 h.
    assert _row(text, "2")[1:] == ["signup", "1", "50.0%", "50.0%", "1.1d", "1.1d"]


def test_retention_cohorts_with_percentages() -> None:
    text = _table(
        {
            "kind": "RetentionQuery",
            "dateRange": {"date_to": "2024-01-09"},
            "retentionFilter": {"period": "Day", "totalIntervals": 3},
        }
    )
    assert _row(text, "2024-01-07")[1:3] == ["1", "1 (100%)"]


def test_stickiness_and_lifecycle() -> None:
    sticky = _table({"kind": "StickinessQuery", "series": [PV], "dateRange": RANGE})
    assert _row(sticky, "1 day")[1] == "1" and _row(sticky, "2 days")[1] == "1"
    life = _table({"kind": "LifecycleQuery", "series": [PV], "dateRange": RANGE})
    assert {"new", "returning", "resurrecting", "dormant"} <= set(_row(life, "period"))


def test_empty_results() -> None:
    with console.capture() as cap:
        render({"results": [], "data_version": 0, "engine": "reference"}, "TrendsQuery")
    assert "no results" in cap.get()


def test_unknown_kind_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    with console.capture():
        render({"results": [{"x": 1}], "data_version": 0, "engine": "e"}, "SomethingElse")
    assert '"x": 1' in capsys.readouterr().out


def test_paths() -> None:
    events = [
        {
            "event": "$pageview",
            "distinct_id": d,
            "timestamp": f"2024-01-08T10:0{m}:00Z",
            "properties": {"$current_url": url},
        }
        for d in ("a", "b")
        for m, url in ((0, "/home"), (2, "/pricing"))
    ]
    query = {"kind": "PathsQuery", "dateRange": RANGE}
    response = {"results": run_on_events(events, query, now=NOW), "data_version": 1}
    with console.capture() as cap:
        render(response, "PathsQuery")
    # from, to, persons, avg time (2 minutes), drop-offs at the target
    assert _row(cap.get(), "1_/home") == ["1_/home", "2_/pricing", "2", "2.0m", "2"]


def test_funnel_time_to_convert_and_trends_views() -> None:
    funnel = {
        "kind": "FunnelsQuery",
        "series": [PV, {"kind": "EventsNode", "event": "signup"}],
        "dateRange": RANGE,
    }
    text = _table({**funnel, "funnelsFilter": {"funnelVizType": "time_to_convert"}})
    # One sample: a's earliest attempt, 26.5 h = 95400 s; bins start 95400 and 95401.
    assert "average 1.1d" in text
    assert _row(text, "1.1d")[1:] == ["1"]  # the first bin (95400 s) holds it
    text = _table({**funnel, "funnelsFilter": {"funnelVizType": "trends"}})
    # Jan 8: a (converted) and b (not) entered.
    assert _row(text, "8-Jan-2024")[1:] == ["2", "1", "50"]

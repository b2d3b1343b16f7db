"""Reference funnels on hand-computed cases (insights.md "Funnels")."""

from __future__ import annotations

from typing import Any

import pytest

from tests.query.engine_support import ev, run

RANGE = {"date_from": "2024-01-01", "date_to": "2024-01-31"}


def funnel(*steps: str, **ff: Any) -> dict[str, Any]:
    query: dict[str, Any] = {
        "kind": "FunnelsQuery",
        "series": [{"event": s} for s in steps],
        "dateRange": RANGE,
    }
    breakdown = ff.pop("breakdownFilter", None)
    if breakdown:
        query["breakdownFilter"] = breakdown
    if ff:
        query["funnelsFilter"] = ff
    return query


def counts(result: list[dict[str, Any]]) -> list[int]:
    return [s["count"] for s in result]


def test_conversion_rates_and_times() -> None:
    events = [
        ev("a", "p1", "2024-01-01T00:00:00Z"),
        ev("b", "p1", "2024-01-01T00:01:00Z"),
        ev("a", "p2", "2024-01-01T00:00:00Z"),
        ev("b", "p2", "2024-01-01T00:03:00Z"),
        ev("c", "p2", "2024-01-01T00:04:00Z"),
        ev("a", "p3", "2024-01-01T00:00:00Z"),
        ev("a", "p4", "2024-01-01T00:00:00Z"),
        ev("b", "p4", "2024-01-01T00:08:00Z"),
    ]
    result = run(events, funnel("a", "b", "c"))
    assert counts(result) == [4, 3, 1]
    assert [s["conversion_from_first"] for s in result] == [1.0, 0.75, 0.25]
    assert result[2]["conversion_from_previous"] == pytest.approx(1 / 3)
    assert result[0]["average_conversion_time"] is None
    assert result[1]["average_conversion_time"] == pytest.approx(240.0)  # (60+180+480)/3
    assert result[1]["median_conversion_time"] == pytest.approx(180.0)
    assert result[2]["average_conversion_time"] == pytest.approx(60.0)


def test_window_is_inclusive_at_exactly_the_window_from_step_one() -> None:
    events = [
        ev("a", "in", "2024-01-01T00:00:00Z"),
        ev("b", "in", "2024-01-01T00:30:00Z"),
        ev("c", "in", "2024-01-01T01:00:00Z"),  # exactly 1 hour after step 1: inside
        ev("a", "out", "2024-01-01T00:00:00Z"),
        ev("b", "out", "2024-01-01T00:59:00Z"),
        ev("c", "out", "2024-01-01T01:00:00.000001Z"),  # 1 µs too late
    ]
    result = run(
        events, funnel("a", "b", "c", funnelWindowInterval=1, funnelWindowIntervalUnit="hour")
    )
    assert counts(result) == [2, 2, 1]


def test_a_later_step_one_re_anchors() -> None:
    # The first attempt times out; the step-1 event on day 20 opens a newer one that converts.
    events = [
        ev("a", "p", "2024-01-01T00:00:00Z"),
        ev("a", "p", "2024-01-20T00:00:00Z"),
        ev("b", "p", "2024-01-21T00:00:00Z"),
    ]
    result = run(events, funnel("a", "b"))
    assert counts(result) == [1, 1]
    assert result[1]["average_conversion_time"] == 86400.0


def test_tie_uses_the_earliest_attempt_for_timings() -> None:
    events = [
        ev("a", "p", "2024-01-01T00:00:00Z"),
        ev("a", "p", "2024-01-01T00:10:00Z"),
        ev("b", "p", "2024-01-01T00:20:00Z"),
    ]
    result = run(events, funnel("a", "b"))
    assert result[1]["average_conversion_time"] == 1200.0


def test_equal_timestamps_and_one_event_fills_one_step() -> None:
    events = [
        ev("a", "same", "2024-01-01T00:00:00Z"),
        ev("b", "same", "2024-01-01T00:00:00Z"),
        ev("a", "once", "2024-01-02T00:00:00Z"),  # a -> a needs two a events
    ]
    assert counts(run(events, funnel("a", "b"))) == [2, 1]
    assert counts(run(events, funnel("a", "a"))) == [2, 0]


def test_every_step_must_be_inside_the_date_range() -> None:
    events = [ev("a", "p", "2024-01-31T23:00:00Z"), ev("b", "p", "2024-02-01T01:00:00Z")]
    assert counts(run(events, funnel("a", "b"))) == [1, 0]


def test_strict_breaks_on_any_other_event() -> None:
    events = [
        ev("a", "p1", "2024-01-01T00:00:00Z"),
        ev("x", "p1", "2024-01-01T00:01:00Z"),
        ev("b", "p1", "2024-01-01T00:02:00Z"),
        ev("a", "p2", "2024-01-01T00:00:00Z"),
        ev("b", "p2", "2024-01-01T00:02:00Z"),
    ]
    assert counts(run(events, funnel("a", "b"))) == [2, 2]
    assert counts(run(events, funnel("a", "b", funnelOrderType="strict"))) == [2, 1]


def test_unordered_counts_steps_in_any_order() -> None:
    events = [
        ev("c", "p", "2024-01-01T00:00:00Z"),
        ev("b", "p", "2024-01-01T00:01:00Z"),
        ev("a", "p", "2024-01-01T00:02:00Z"),
        ev("b", "q", "2024-01-01T00:00:00Z"),
    ]
    assert counts(run(events, funnel("a", "b", "c", funnelOrderType="unordered"))) == [2, 1, 1]
    assert counts(run(events, funnel("a", "b", "c"))) == [1, 0, 0]


def test_exclusion_between_steps_removes_the_person() -> None:
    events = [
        ev("a", "p1", "2024-01-01T00:00:00Z"),
        ev("x", "p1", "2024-01-01T00:01:00Z"),
        ev("b", "p1", "2024-01-01T00:02:00Z"),
        ev("a", "p2", "2024-01-01T00:00:00Z"),
        ev("b", "p2", "2024-01-01T00:02:00Z"),
        ev("x", "p2", "2024-01-01T00:03:00Z"),  # after step 2: not between 0 and 1
    ]
    exclusions = [{"event": "x", "funnelFromStep": 0, "funnelToStep": 1}]
    assert counts(run(events, funnel("a", "b", exclusions=exclusions))) == [1, 1]


NULL = "$$_posthog_breakdown_null_$$"


def test_breakdown_attribution() -> None:
    events = [
        ev("a", "p1", "2024-01-01T00:00:00Z", src="ads"),
        ev("b", "p1", "2024-01-01T00:01:00Z", src="mail"),
        ev("a", "p2", "2024-01-01T00:00:00Z"),
        ev("b", "p2", "2024-01-01T00:01:00Z", src="mail"),
        ev("a", "p3", "2024-01-01T00:00:00Z"),
    ]
    bd = {"breakdown": "src"}

    def shape(result: list[list[dict[str, Any]]]) -> list[tuple[str, list[int]]]:
        return [(steps[0]["breakdown_value"], counts(steps)) for steps in result]

    assert shape(run(events, funnel("a", "b", breakdownFilter=bd))) == [
        ("mail", [1, 1]),
        ("ads", [1, 1]),
        (NULL, [1, 0]),
    ]
    last = funnel("a", "b", breakdownFilter=bd, breakdownAttributionType="last_touch")
    assert shape(run(events, last)) == [("mail", [2, 2]), (NULL, [1, 0])]
    step0 = funnel(
        "a", "b", breakdownFilter=bd, breakdownAttributionType="step", breakdownAttributionValue=0
    )
    assert shape(run(events, step0)) == [("ads", [1, 1]), (NULL, [2, 1])]
    every = funnel("a", "b", breakdownFilter=bd, breakdownAttributionType="all_events")
    # p1: ads has only a, mail only b; p2: mail has only b (no step 1); nulls: p2's and p3's a.
    assert shape(run(events, every)) == [("ads", [1, 0]), (NULL, [2, 0])]

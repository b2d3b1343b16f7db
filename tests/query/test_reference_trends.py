"""Reference trends on hand-computed cases (insights.md "Trends", "Common rules")."""

from __future__ import annotations

from typing import Any

import pytest

from eventlens.query.testing import run_on_events
from tests.query.engine_support import ev, run

RANGE = {"date_from": "2024-01-01", "date_to": "2024-01-03"}
NULL = "$$_posthog_breakdown_null_$$"
OTHER = "$$_posthog_breakdown_other_$$"


def trends(*series: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"kind": "TrendsQuery", "series": list(series), "dateRange": RANGE, **extra}


EVENTS = [
    ev("pv", "u1", "2024-01-01T10:00:00Z", price=10, browser="Chrome"),
    ev("pv", "u1", "2024-01-01T11:00:00Z", price="20", browser="Chrome"),
    ev("pv", "u2", "2024-01-01T12:00:00Z", price="n/a", browser="Firefox"),
    ev("pv", "u2", "2024-01-02T12:00:00Z", price=40),
    ev("pv", "u3", "2024-01-03T23:59:59Z", price=5, browser=""),
    ev("pv", "u3", "2024-01-04T00:00:00Z", price=1000),  # after date_to's day: outside
    ev("buy", "u1", "2024-01-02T09:00:00Z"),
]


@pytest.mark.parametrize(
    ("math", "data"),
    [
        ("total", [3, 1, 1]),
        ("dau", [2, 1, 1]),
        ("sum", [30.0, 40.0, 5.0]),  # "n/a" is not numeric: ignored
        ("avg", [15.0, 40.0, 5.0]),
        ("min", [10.0, 40.0, 5.0]),
        ("max", [20.0, 40.0, 5.0]),
        ("median", [15.0, 40.0, 5.0]),
        ("p90", [19.0, 40.0, 5.0]),  # linear interpolation: 10 + 0.9 * (20 - 10)
        ("avg_count_per_actor", [1.5, 1.0, 1.0]),
        ("max_count_per_actor", [2, 1, 1]),
        ("first_time_for_user", [2, 0, 1]),
    ],
)
def test_maths(math: str, data: list[float]) -> None:
    node: dict[str, Any] = {"event": "pv", "math": math}
    if math in ("sum", "avg", "min", "max", "median", "p90"):
        node["math_property"] = "price"
    [row] = run(EVENTS, trends(node))
    assert row["data"] == pytest.approx(data)
    assert row["count"] == pytest.approx(sum(data))
    assert row["days"] == ["2024-01-01", "2024-01-02", "2024-01-03"]


def test_first_time_for_user_is_all_time() -> None:
    events = [ev("pv", "old", "2023-06-01T00:00:00Z"), *EVENTS]
    events.append(ev("pv", "old", "2024-01-02T00:00:00Z"))
    [row] = run(events, trends({"event": "pv", "math": "first_time_for_user"}))
    assert row["data"] == [2, 0, 1]


def test_weekly_active_reads_before_date_from() -> None:
    # Window (d-6d, d+1d]: an event 6 days before d at noon is inside, 7 days before is not.
    events = [
        ev("pv", "a", "2023-12-26T12:00:00Z"),  # inside for d=2024-01-01, not for d=01-02
        ev("pv", "b", "2023-12-25T12:00:00Z"),  # never inside
        ev("pv", "c", "2024-01-03T08:00:00Z"),
    ]
    [row] = run(events, trends({"event": "pv", "math": "weekly_active"}))
    assert row["data"] == [1, 0, 1]


def test_breakdown_ranks_values_then_null_then_other() -> None:
    events = [
        ev("pv", "u1", "2024-01-01T00:00:00Z", b="x"),
        ev("pv", "u1", "2024-01-01T00:00:00Z", b="x"),
        ev("pv", "u2", "2024-01-01T00:00:00Z", b="y"),
        ev("pv", "u2", "2024-01-02T00:00:00Z", b="z"),
        ev("pv", "u2", "2024-01-02T00:00:00Z", b=None),
        ev("pv", "u2", "2024-01-02T00:00:00Z", b=""),
        ev("pv", "u3", "2024-01-03T00:00:00Z", b=7),
    ]
    result = run(
        events, trends({"event": "pv"}, breakdownFilter={"breakdown": "b", "breakdown_limit": 2})
    )
    # x=2, null 2 (None and ""), y, z, 7 at 1. Null is ranked (PostHog): x and null tie at 2,
    # the real value first; keep x, null; y, z and 7 go to other. Null is shown after x.
    assert [r["breakdown_value"] for r in result] == ["x", NULL, OTHER]
    assert [r["count"] for r in result] == [2, 2, 3]
    assert result[-1]["data"] == [1, 1, 1]
    # With limit 1 the null group loses the tie to x and is folded into other too.
    result = run(
        events, trends({"event": "pv"}, breakdownFilter={"breakdown": "b", "breakdown_limit": 1})
    )
    assert [(r["breakdown_value"], r["count"]) for r in result] == [("x", 2), (OTHER, 5)]


def test_formula_combines_series_and_division_by_zero_is_zero() -> None:
    result = run(
        EVENTS, trends({"event": "buy"}, {"event": "pv"}, trendsFilter={"formula": "A/B*100"})
    )
    assert [r["label"] for r in result] == ["A/B*100"]
    assert result[0]["data"] == pytest.approx([0.0, 100.0, 0.0])
    zero = run(
        EVENTS, trends({"event": "pv"}, {"event": "nothing"}, trendsFilter={"formula": "A/B"})
    )
    assert zero[0]["data"] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("prop", "hits"),
    [
        ({"key": "browser", "value": ["Chrome", "Firefox"], "operator": "exact"}, 3),
        ({"key": "browser", "value": "Chrome", "operator": "is_not"}, 3),  # missing matches
        ({"key": "browser", "value": "FIRE", "operator": "icontains"}, 1),
        ({"key": "browser", "value": "fire", "operator": "not_icontains"}, 4),
        ({"key": "browser", "value": "^Chr", "operator": "regex"}, 2),
        ({"key": "browser", "value": "^Chr", "operator": "not_regex"}, 3),
        ({"key": "price", "value": "15", "operator": "gt"}, 2),  # "20" and 40; "n/a" false
        ({"key": "price", "value": 10, "operator": "lte"}, 2),
        ({"key": "browser", "operator": "is_set"}, 4),
        ({"key": "browser", "operator": "is_not_set"}, 1),
    ],
)
def test_property_operators(prop: dict[str, Any], hits: int) -> None:
    [row] = run(EVENTS, trends({"event": "pv"}, properties=[prop]))
    assert row["count"] == hits


def test_or_group_and_person_properties() -> None:
    events = [
        {**ev("pv", "a", "2024-01-01T00:00:00Z", k=1), "person_properties": {"plan": "pro"}},
        {**ev("pv", "b", "2024-01-01T00:00:00Z", k=2), "person_properties": {"plan": "free"}},
        ev("pv", "c", "2024-01-01T00:00:00Z", k=3),
    ]
    group = {
        "type": "OR",
        "values": [
            {"key": "plan", "value": "pro", "type": "person"},
            {"key": "k", "value": 3, "operator": "exact"},
        ],
    }
    [row] = run(events, trends({"event": "pv"}, properties=group))
    assert row["count"] == 2


def test_date_filters() -> None:
    events = [
        ev("pv", "a", "2024-01-01T00:00:00Z", at="2023-05-01T10:00:00Z"),
        ev("pv", "b", "2024-01-01T00:00:00Z", at="2023-06-01"),
        ev("pv", "c", "2024-01-01T00:00:00Z", at="not a date"),
    ]
    for op, expected in (("is_date_before", 1), ("is_date_after", 1), ("is_date_exact", 1)):
        value = "2023-05-01" if op == "is_date_exact" else "2023-05-15"
        [row] = run(
            events,
            trends({"event": "pv"}, properties=[{"key": "at", "value": value, "operator": op}]),
        )
        assert row["count"] == expected, op


def test_through_a_real_delta_table_with_timezone() -> None:
    # 23:30 UTC on Jan 1 is Jan 2 in Berlin.
    events = [ev("pv", "a", "2024-01-01T23:30:00Z"), ev("pv", "a", "2024-01-01T12:00:00Z")]
    [row] = run_on_events(
        events, trends({"event": "pv"}), timezone="Europe/Berlin", now="2024-01-05T00:00:00Z"
    )
    assert row["data"] == [1, 1, 0]


def test_empty_group_filters_nothing_and_event_null_is_all_events() -> None:
    query = trends({"event": None}, properties={"type": "OR", "values": []})
    [row] = run(EVENTS, query)
    assert row["label"] == "All events"
    assert row["count"] == 6  # every event in range, any name

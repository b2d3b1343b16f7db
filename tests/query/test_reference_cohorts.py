"""Reference retention, stickiness and lifecycle on hand-computed cases (insights.md)."""

from __future__ import annotations

from typing import Any

from tests.query.engine_support import ev, run


def retention(**rf: Any) -> dict[str, Any]:
    base = {
        "targetEntity": {"id": "s", "type": "events"},
        "returningEntity": {"id": "r", "type": "events"},
    }
    return {
        "kind": "RetentionQuery",
        "dateRange": {"date_to": "2024-01-03"},
        "retentionFilter": {**base, **rf},
    }


RET_EVENTS = [
    ev("s", "p1", "2023-12-31T10:00:00Z"),  # first-ever start before the range
    ev("s", "p1", "2024-01-01T10:00:00Z"),
    ev("r", "p1", "2024-01-01T20:00:00Z"),  # return inside its own period: never counted
    ev("r", "p1", "2024-01-03T10:00:00Z"),
    ev("s", "p2", "2024-01-01T10:00:00Z"),
    ev("r", "p2", "2024-01-02T10:00:00Z"),
    ev("s", "p2", "2024-01-02T11:00:00Z"),
    ev("r", "p2", "2024-01-03T11:00:00Z"),
]


def test_recurring_retention() -> None:
    result = run(RET_EVENTS, retention(totalIntervals=3))
    assert [r["date"] for r in result] == [f"2024-01-0{d}T00:00:00Z" for d in (1, 2, 3)]
    assert [r["label"] for r in result] == ["Day 0", "Day 1", "Day 2"]
    assert [[v["count"] for v in r["values"]] for r in result] == [[2, 1, 2], [1, 1], [0]]


def test_first_time_retention_only_counts_first_ever_period_in_range() -> None:
    result = run(RET_EVENTS, retention(totalIntervals=3, retentionType="retention_first_time"))
    assert [[v["count"] for v in r["values"]] for r in result] == [[1, 1, 1], [0, 0], [0]]


def test_weekly_retention_uses_calendar_weeks() -> None:
    events = [ev("s", "p", "2024-01-01T00:00:00Z"), ev("r", "p", "2024-01-07T00:00:00Z")]
    # Weeks start on Sunday: Jan 7 is the next week; with Monday weeks it is the same week.
    sunday = run(
        events,
        retention(period="Week", totalIntervals=2) | {"dateRange": {"date_to": "2024-01-08"}},
    )
    monday = run(
        events,
        retention(period="Week", totalIntervals=2) | {"dateRange": {"date_to": "2024-01-08"}},
        week_start=1,
    )
    assert sunday[0]["date"] == "2023-12-31T00:00:00Z" and sunday[0]["values"][1]["count"] == 1
    assert monday[0]["date"] == "2024-01-01T00:00:00Z" and monday[0]["values"][1]["count"] == 0


def test_stickiness_counts_persons_by_active_intervals() -> None:
    events = [
        ev("pv", "a", "2024-01-01T01:00:00Z"),
        ev("pv", "a", "2024-01-01T02:00:00Z"),
        ev("pv", "a", "2024-01-03T02:00:00Z"),
        ev("pv", "b", "2024-01-02T02:00:00Z"),
        ev("pv", "c", "2023-12-31T02:00:00Z"),  # outside the range
    ]
    query = {
        "kind": "StickinessQuery",
        "series": [{"event": "pv"}],
        "dateRange": {"date_from": "2024-01-01", "date_to": "2024-01-03"},
    }
    [row] = run(events, query)
    assert row["days"] == [1, 2, 3]
    assert row["labels"] == ["1 day", "2 days", "3 days"]
    assert row["data"] == [1, 1, 0]
    assert row["count"] == 2


def test_lifecycle_statuses_with_dormant_negative() -> None:
    events = [
        ev("pv", "old", "2023-12-01T00:00:00Z"),  # first-ever, long before
        ev("pv", "old", "2024-01-02T00:00:00Z"),  # resurrecting
        ev("pv", "prev", "2023-12-31T12:00:00Z"),  # the interval before the range
        ev("pv", "prev", "2024-01-01T12:00:00Z"),  # returning
        ev("pv", "new", "2024-01-01T00:00:00Z"),  # new, then dormant on the 2nd
    ]
    query = {
        "kind": "LifecycleQuery",
        "series": [{"event": "pv"}],
        "dateRange": {"date_from": "2024-01-01", "date_to": "2024-01-03"},
    }
    result = run(events, query)
    assert [r["status"] for r in result] == ["new", "returning", "resurrecting", "dormant"]
    assert [r["label"] for r in result] == [
        f"pv - {s}" for s in ("new", "returning", "resurrecting", "dormant")
    ]
    data = {r["status"]: r["data"] for r in result}
    assert data == {
        "new": [1, 0, 0],
        "returning": [1, 0, 0],
        "resurrecting": [0, 1, 0],
        "dormant": [0, -2, -1],
    }

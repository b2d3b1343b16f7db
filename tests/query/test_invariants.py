"""Property tests of the reference engine's invariants (insights.md), on random event sets."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlens.query import get_engine, normalise, parse_query
from eventlens.query.testing import event_rows, parse_instant
from tests.query.engine_support import rows, run

START = datetime(2024, 1, 1, tzinfo=UTC)
NAMES = ["a", "b", "c", "x"]

event_st = st.fixed_dictionaries(
    {
        "event": st.sampled_from(NAMES),
        "distinct_id": st.sampled_from(["p1", "p2", "p3", "p4", "p5"]),
        # Minutes over 12 days, so windows, day edges and equal timestamps all occur.
        "timestamp": st.integers(0, 12 * 24 * 60 - 1).map(
            lambda m: (START + timedelta(minutes=m)).isoformat()
        ),
        "properties": st.fixed_dictionaries({"v": st.sampled_from(["x", "y", "z", None, ""])}),
    }
)
events_st = st.lists(event_st, max_size=40)
fast = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RANGE = {"date_from": "2024-01-01", "date_to": "2024-01-10"}
NOW = "2024-01-15T00:00:00Z"


@fast
@given(
    events_st,
    st.lists(st.sampled_from(NAMES), min_size=2, max_size=4),
    st.sampled_from(["ordered", "strict", "unordered"]),
    st.integers(1, 48),
)
def test_funnel_step_counts_never_increase(
    events: list[dict[str, Any]], steps: list[str], order: str, hours: int
) -> None:
    query = {
        "kind": "FunnelsQuery",
        "series": [{"event": s} for s in steps],
        "dateRange": RANGE,
        "funnelsFilter": {
            "funnelOrderType": order,
            "funnelWindowInterval": hours,
            "funnelWindowIntervalUnit": "hour",
        },
    }
    result = run(events, query, now=NOW)
    counts = [s["count"] for s in result]
    assert all(a >= b for a, b in itertools.pairwise(counts))
    assert all(0.0 <= s["conversion_from_previous"] <= 1.0 for s in result)
    # Entering the funnel needs step 1 (unordered: any of the steps) inside the range.
    entry = set(steps) if order == "unordered" else {steps[0]}
    persons = {e["distinct_id"] for e in events if e["event"] in entry}
    assert counts[0] <= len(persons)


@fast
@given(events_st, st.sampled_from(["day", "week", "hour"]))
def test_trend_total_equals_sum_over_breakdown_values(
    events: list[dict[str, Any]], interval: str
) -> None:
    base = {
        "kind": "TrendsQuery",
        "series": [{"event": "a"}],
        "dateRange": RANGE,
        "interval": interval,
    }
    [total] = run(events, base, now=NOW)
    rows = run(
        events, {**base, "breakdownFilter": {"breakdown": "v", "breakdown_limit": 100}}, now=NOW
    )
    summed = [sum(r["data"][i] for r in rows) for i in range(len(total["data"]))]
    assert summed == total["data"]
    values = [r["breakdown_value"] for r in rows]
    assert len(values) == len(set(values))


@fast
@given(events_st, st.integers(0, 2))
def test_trend_limit_folds_the_rest_into_other_without_losing_events(
    events: list[dict[str, Any]], limit: int
) -> None:
    base = {"kind": "TrendsQuery", "series": [{"event": "a"}], "dateRange": RANGE}
    [total] = run(events, base, now=NOW)
    rows = run(
        events,
        {**base, "breakdownFilter": {"breakdown": "v", "breakdown_limit": max(limit, 1)}},
        now=NOW,
    )
    assert sum(r["count"] for r in rows) == total["count"]


@fast
@given(events_st)
def test_retention_k0_is_the_cohort_size(events: list[dict[str, Any]]) -> None:
    query = {
        "kind": "RetentionQuery",
        "dateRange": {"date_to": "2024-01-10"},
        "retentionFilter": {
            "targetEntity": {"id": "a"},
            "returningEntity": {"id": "b"},
            "totalIntervals": 10,
        },
    }
    result = run(events, query, now=NOW)
    for c, row in enumerate(result):
        day = (START + timedelta(days=c)).date().isoformat()
        cohort = {
            e["distinct_id"] for e in events if e["event"] == "a" and e["timestamp"][:10] == day
        }
        assert row["date"] == f"{day}T00:00:00Z"  # the project timezone here is UTC
        assert row["values"][0]["count"] == len(cohort)
        assert len(row["values"]) == 10 - c
        assert all(v["count"] <= len(cohort) for v in row["values"])


@fast
@given(events_st, st.integers(1, 9))
def test_a_range_equals_the_union_of_its_halves_for_daily_totals(
    events: list[dict[str, Any]], split: int
) -> None:
    def daily(date_from: str, date_to: str, math: str) -> list[int]:
        query = {
            "kind": "TrendsQuery",
            "series": [{"event": None, "math": math}],
            "dateRange": {"date_from": date_from, "date_to": date_to},
        }
        return list(run(events, query, now=NOW)[0]["data"])

    middle = (START + timedelta(days=split)).date()
    before = (middle - timedelta(days=1)).isoformat()
    for math in ("total", "dau"):
        whole = daily("2024-01-01", "2024-01-10", math)
        assert whole == daily("2024-01-01", before, math) + daily(
            middle.isoformat(), "2024-01-10", math
        )


@fast
@given(events_st, st.sampled_from(["day", "week"]))
def test_lifecycle_active_statuses_add_up_to_daily_actives(
    events: list[dict[str, Any]], interval: str
) -> None:
    common = {"series": [{"event": "a"}], "dateRange": RANGE, "interval": interval}
    lifecycle = {
        r["status"]: r["data"] for r in run(events, {"kind": "LifecycleQuery", **common}, now=NOW)
    }
    [dau] = run(
        events,
        {"kind": "TrendsQuery", **common, "series": [{"event": "a", "math": "dau"}]},
        now=NOW,
    )
    active = [
        n + r + s
        for n, r, s in zip(
            lifecycle["new"], lifecycle["returning"], lifecycle["resurrecting"], strict=True
        )
    ]
    assert active == dau["data"]
    assert all(d <= 0 for d in lifecycle["dormant"])
    # Dormant in bucket i are those active in i-1 but not in i: at most the actives of i-1.
    assert all(-d <= prev for d, prev in zip(lifecycle["dormant"][1:], dau["data"], strict=False))


@fast
@given(events_st)
def test_stickiness_counts_every_active_person_once(events: list[dict[str, Any]]) -> None:
    query = {"kind": "StickinessQuery", "series": [{"event": "b"}], "dateRange": RANGE}
    [row] = run(events, query, now=NOW)
    persons = {
        e["distinct_id"]
        for e in events
        if e["event"] == "b" and e["timestamp"][:10] <= "2024-01-10"
    }
    assert row["count"] == len(persons)
    assert sum(n * c for n, c in zip(row["days"], row["data"], strict=True)) == len(
        {
            (e["distinct_id"], e["timestamp"][:10])
            for e in events
            if e["event"] == "b" and e["timestamp"][:10] <= "2024-01-10"
        }
    )


@fast
@given(
    events_st,
    st.sampled_from(["first_touch", "last_touch", "step"]),
    st.sampled_from(["ordered", "strict", "unordered"]),
)
def test_funnel_breakdown_partitions_persons(
    events: list[dict[str, Any]], attribution: str, order: str
) -> None:
    # Each person gets exactly one value, so the rows add up to the funnel without breakdown.
    query: dict[str, Any] = {
        "kind": "FunnelsQuery",
        "series": [{"event": "a"}, {"event": "b"}, {"event": "c"}],
        "dateRange": RANGE,
        "funnelsFilter": {"funnelOrderType": order},
    }
    plain = [s["count"] for s in run(events, query, now=NOW)]
    query["breakdownFilter"] = {"breakdown": "v", "breakdown_limit": 2}
    query["funnelsFilter"]["breakdownAttributionType"] = attribution
    if attribution == "step":
        query["funnelsFilter"]["breakdownAttributionValue"] = 1
    rows = run(events, query, now=NOW)
    summed = [sum(steps[i]["count"] for steps in rows) for i in range(3)]
    assert summed == plain
    assert all(steps[0]["count"] > 0 for steps in rows)


def _furthest_by_search(times_names: list[tuple[int, str]], steps: list[str], window: int) -> int:
    """Longest chain of distinct events matching steps 1..k in time order within the window of
    its first event: an exhaustive search, independent of the engine's attempt bookkeeping."""
    best = 0

    def extend(pos: int, level: int, anchor: int) -> None:
        nonlocal best
        best = max(best, level)
        if level == len(steps):
            return
        for j in range(pos, len(times_names)):
            t, name = times_names[j]
            if name == steps[level] and t - anchor <= window:
                extend(j + 1, level + 1, anchor)

    for i, (t, name) in enumerate(times_names):
        if name == steps[0]:
            extend(i + 1, 1, t)
    return best


@fast
@given(
    st.lists(
        st.tuples(st.sampled_from(["p1", "p2", "p3"]), st.sampled_from(["a", "b", "c"])),
        max_size=18,
    ),
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=2, max_size=4),
    st.integers(1, 30),
)
def test_ordered_funnel_equals_exhaustive_search(
    seq: list[tuple[str, str]], steps: list[str], window_minutes: int
) -> None:
    # Distinct minutes (no ties), so "time order" is unambiguous for the search.
    events = [
        {
            "event": name,
            "distinct_id": p,
            "timestamp": (START + timedelta(minutes=7 * i)).isoformat(),
        }
        for i, (p, name) in enumerate(seq)
    ]
    query = {
        "kind": "FunnelsQuery",
        "series": [{"event": s} for s in steps],
        "dateRange": RANGE,
        "funnelsFilter": {
            "funnelWindowInterval": window_minutes,
            "funnelWindowIntervalUnit": "minute",
        },
    }
    counts = [s["count"] for s in run(events, query, now=NOW)]
    levels = []
    for person in ("p1", "p2", "p3"):
        mine = [(7 * i, name) for i, (p, name) in enumerate(seq) if p == person]
        levels.append(_furthest_by_search(mine, steps, window_minutes))
    assert counts == [sum(1 for lv in levels if lv > s) for s in range(len(steps))]


def _unordered_by_search(times_names: list[tuple[int, str]], steps: list[str], window: int) -> int:
    """Most steps (each by its own event, any order) inside the window from some step event."""

    def most(step: int, used: frozenset[int], lo: int) -> int:
        if step == len(steps):
            return 0
        skip = most(step + 1, used, lo)
        take = max(
            (
                1 + most(step + 1, used | {j}, lo)
                for j, (t, name) in enumerate(times_names)
                if j not in used and name == steps[step] and lo <= t <= lo + window
            ),
            default=0,
        )
        return max(skip, take)

    return max(
        (most(0, frozenset(), t) for t, name in times_names if name in steps),
        default=0,
    )


@fast
@given(
    st.lists(
        st.tuples(st.sampled_from(["p1", "p2"]), st.sampled_from(["a", "b", "c", "x"])),
        max_size=10,
    ),
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=2, max_size=4),
    st.integers(1, 30),
)
def test_unordered_funnel_equals_exhaustive_search(
    seq: list[tuple[str, str]], steps: list[str], window_minutes: int
) -> None:
    events = [
        {
            "event": name,
            "distinct_id": p,
            "timestamp": (START + timedelta(minutes=7 * i)).isoformat(),
        }
        for i, (p, name) in enumerate(seq)
    ]
    query = {
        "kind": "FunnelsQuery",
        "series": [{"event": s} for s in steps],
        "dateRange": RANGE,
        "funnelsFilter": {
            "funnelOrderType": "unordered",
            "funnelWindowInterval": window_minutes,
            "funnelWindowIntervalUnit": "minute",
        },
    }
    counts = [s["count"] for s in run(events, query, now=NOW)]
    levels = []
    for person in ("p1", "p2"):
        mine = [(7 * i, name) for i, (p, name) in enumerate(seq) if p == person]
        levels.append(_unordered_by_search(mine, steps, window_minutes))
    assert counts == [sum(1 for lv in levels if lv > s) for s in range(len(steps))]


QUERIES: list[dict[str, Any]] = [
    {"kind": "TrendsQuery", "series": [{"event": "a", "math": "dau"}, {"event": "b"}]},
    {"kind": "TrendsQuery", "series": [{"event": "a", "math": "weekly_active"}]},
    {"kind": "TrendsQuery", "series": [{"event": "a", "math": "first_time_for_user"}]},
    {"kind": "TrendsQuery", "series": [{}], "breakdownFilter": {"breakdown": "v"}},
    {"kind": "FunnelsQuery", "series": [{"event": "a"}, {"event": "b"}]},
    {
        "kind": "FunnelsQuery",
        "series": [{"event": "a"}, {"event": "b"}],
        "funnelsFilter": {"funnelOrderType": "strict"},
    },
    {
        "kind": "FunnelsQuery",
        "series": [{"event": "a"}, {"event": "b"}, {"event": "c"}],
        "funnelsFilter": {"exclusions": [{"event": "x", "funnelFromStep": 0, "funnelToStep": 2}]},
    },
    {
        "kind": "RetentionQuery",
        "retentionFilter": {"targetEntity": {"id": "a"}, "returningEntity": {"id": "c"}},
    },
    {"kind": "StickinessQuery", "series": [{"event": "c"}], "interval": "week"},
    {"kind": "LifecycleQuery", "series": [{"event": "b"}]},
]


@fast
@given(
    events_st,
    st.sampled_from(QUERIES),
    st.sampled_from([{"date_from": "all"}, RANGE, {"date_from": "-5d"}]),
)
def test_snapshot_pushdown_gives_the_same_result(
    events: list[dict[str, Any]], query: dict[str, Any], date_range: dict[str, str]
) -> None:
    # The engine's only shortcut (dropping rows of events the query does not name, resolving
    # `all` first) must not change any result.
    query = {**query, "dateRange": date_range}
    events = [{**e, "uuid": f"{i:08d}"} for i, e in enumerate(events)]  # same tie order
    nq = normalise(
        parse_query(query), timezone="Europe/Berlin", week_start=0, now=parse_instant(NOW)
    )
    engine = get_engine("reference")
    from_rows = engine.run(nq, rows(events))
    from_table = engine.run(nq, event_rows(events)) if events else from_rows
    assert from_table == from_rows

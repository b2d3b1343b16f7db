"""The per-person delta refresh (eventlens/query/parallel/delta.py, ADR 0008): after a commit that
only adds files, a sub-task's partial is the old one minus the touched persons' old contribution
plus their new one. Checked against the reference engine at every version, for every kind, with
the delta actually taken (explain says so), plus the combination rules on their own: multiset
removal, minima/maxima that cannot be subtracted, entries a delta empties."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlens.cache import Mode
from eventlens.query import normalise, parse_query
from eventlens.query.parallel import delta
from eventlens.query.parallel.kernels.cells import Cells
from eventlens.query.parallel.kernels.funnels import StepStats
from eventlens.query.reference import ReferenceEngine
from eventlens.query.testing import event_rows, parse_instant
from eventlens.storage.event_table import EventTable
from tests.cache.support import Harness, jsonable
from tests.parallel import strategies as s
from tests.parallel.strategies import BASE, person_uuid
from tests.query.golden.compare import mismatches

RANGE = {"date_from": "2024-03-05", "date_to": "2024-03-20"}
SERIES = {"kind": "EventsNode", "event": "$pageview"}
QUERIES: dict[str, dict[str, Any]] = {
    "trends_breakdown": {
        "kind": "TrendsQuery",
        "series": [SERIES, {"kind": "EventsNode", "event": "$pageview", "math": "dau"}],
        "interval": "day",
        "dateRange": RANGE,
        "breakdownFilter": {
            "breakdown": "$browser",
            "breakdown_type": "event",
            "breakdown_limit": 2,
        },
    },
    "trends_values": {
        "kind": "TrendsQuery",
        "series": [
            {**SERIES, "math": math, "math_property": "revenue"}
            for math in ("sum", "min", "max", "median")
        ]
        + [{**SERIES, "math": "max_count_per_actor"}],
        "interval": "day",
        "dateRange": RANGE,
    },
    "funnel": {
        "kind": "FunnelsQuery",
        "series": [SERIES, {"kind": "EventsNode", "event": "signup"}],
        "dateRange": RANGE,
        "breakdownFilter": {"breakdown": "$browser", "breakdown_type": "event"},
    },
    "retention": {
        "kind": "RetentionQuery",
        "dateRange": RANGE,
        "retentionFilter": {
            "period": "Day",
            "totalIntervals": 16,
            "targetEntity": {"id": "$pageview", "type": "events"},
            "returningEntity": {"id": "$pageview", "type": "events"},
        },
    },
    "stickiness": {
        "kind": "StickinessQuery",
        "series": [SERIES],
        "interval": "day",
        "dateRange": RANGE,
    },
    "lifecycle": {
        "kind": "LifecycleQuery",
        "series": [SERIES],
        "interval": "day",
        "dateRange": RANGE,
    },
}


def _events(day: int, persons: range, k: int, revenue: float) -> list[dict[str, Any]]:
    out = []
    for p in persons:
        for j, name in enumerate(("$pageview", "signup", "$pageview")):
            out.append(
                {
                    "uuid": f"{k:03d}-{p:03d}-{j}",
                    "event": name,
                    "distinct_id": f"d{p}",
                    "person_id": person_uuid(p),
                    "timestamp": (BASE + timedelta(days=day, hours=p, minutes=j)).isoformat(),
                    "properties": {
                        "$browser": ("Chrome", "Safari", "Firefox")[p % 3],
                        "revenue": revenue + p,
                    },
                    "person_properties": {},
                }
            )
    return out


@pytest.fixture
def table() -> Iterator[EventTable]:
    with tempfile.TemporaryDirectory(prefix="eventlens-delta-") as tmp:
        yield EventTable.open_or_create(Path(tmp) / "events", buckets=2)


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_a_commit_inside_the_range_is_a_delta_equal_to_the_reference(
    table: EventTable, name: str
) -> None:
    nq = normalise(parse_query(QUERIES[name]), timezone="UTC", now=parse_instant(s.NOW))
    harness = Harness()
    commits = [
        _events(0, range(12), 0, 5.0),
        _events(3, range(12), 1, 7.5),
        _events(6, range(3, 8), 2, 1.25),  # some persons only; revenue below the minimum
        _events(2, range(10, 14), 3, 99.0),  # late events in an old day; two new persons
    ]
    deltas = 0
    for k, rows in enumerate(commits):
        table.append(event_rows(rows), log_offset=None)
        snapshot = table.snapshot()
        served = harness.cache.serve(harness.request("k", nq, snapshot, explain=True))
        assert served.answer is not None
        expected = jsonable(ReferenceEngine().run(nq, snapshot))
        problems = mismatches(expected, served.answer.results)
        assert not problems, f"commit {k} {served.result}: {problems[:5]}"
        assert served.explain is not None
        runs = served.explain["subtask_runs"]
        if k:
            # Nothing is computed from scratch when a commit only added files, unless a delta
            # could not be exact (then the sub-task recomputes, which explain shows).
            assert served.result == "incremental"
            deltas += sum(1 for r in runs if r["source"] == "delta")
            # At most the persons of the commit, once per pass over the sub-tasks.
            assert served.explain["persons_recomputed"] <= len(rows) // 3 * served.explain["passes"]
    assert deltas >= 2, f"{name}: the delta path was never taken"


def test_a_person_merge_recomputes_the_rewritten_buckets(table: EventTable) -> None:
    nq = normalise(
        parse_query(QUERIES["trends_breakdown"]), timezone="UTC", now=parse_instant(s.NOW)
    )
    harness = Harness()
    table.append(event_rows(_events(0, range(8), 0, 1.0)), log_offset=None)
    harness.serve("k", nq, table.snapshot())
    table.rewrite_persons({person_uuid(1): person_uuid(2)})
    snapshot = table.snapshot()
    served = harness.cache.serve(harness.request("k", nq, snapshot, explain=True))
    assert served.answer is not None and served.explain is not None
    assert not any(r["source"] == "delta" for r in served.explain["subtask_runs"])
    expected = jsonable(ReferenceEngine().run(nq, snapshot))
    assert not mismatches(expected, served.answer.results)


SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(
    s.event_sets(),
    st.lists(st.integers(0, 45), min_size=2, max_size=5),
    st.one_of(
        s.trends_queries(),
        s.funnels_queries(),
        s.retention_queries(),
        s.stickiness_queries(),
        s.lifecycle_queries(),
    ),
)
def test_appends_only_every_version_equals_the_reference(
    events: list[dict[str, Any]], cuts: list[int], query: dict[str, Any]
) -> None:
    """Append-only histories (where the delta path applies), split in 2-6 commits at random
    points of a stream over a month: later commits add late events to old days."""
    _check_history(events, cuts, query)


@settings(SETTINGS, max_examples=20)
@given(
    s.event_sets(), st.lists(st.integers(0, 45), min_size=2, max_size=5), s.funnel_view_queries()
)
def test_funnel_views_deltas_equal_the_reference(
    events: list[dict[str, Any]], cuts: list[int], query: dict[str, Any]
) -> None:
    """The time_to_convert samples and trends per-bucket counts subtract and add exactly."""
    _check_history(events, cuts, query)


def _check_history(events: list[dict[str, Any]], cuts: list[int], query: dict[str, Any]) -> None:
    nq = normalise(parse_query(query), timezone="UTC", now=parse_instant(s.NOW))
    harness = Harness()
    bounds = [0, *sorted(min(c, len(events)) for c in cuts), len(events)]
    with tempfile.TemporaryDirectory(prefix="eventlens-delta-") as tmp:
        table = EventTable.open_or_create(Path(tmp) / "events", buckets=2)
        for lo, hi in itertools.pairwise(bounds):
            if hi <= lo:
                continue
            table.append(event_rows(events[lo:hi]), log_offset=None)
            snapshot = table.snapshot()
            served = harness.serve("k", nq, snapshot, Mode.BLOCKING)
            assert served.answer is not None
            expected = jsonable(ReferenceEngine().run(nq, snapshot))
            problems = mismatches(expected, served.answer.results)
            assert not problems, f"v{snapshot.version} {served.result}: {problems[:5]}\n{query}"


# -- the combination rules --------------------------------------------------------------------


def _cells(
    events: list[int], low: list[float], high: list[float], lists: list[list[float]] | None = None
) -> Cells:
    n = len(events)
    return Cells(
        events=np.array(events, np.int64),
        count=np.array(events, np.int64),
        total=np.zeros(n),
        low=np.array(low, np.float64),
        high=np.array(high, np.float64),
        lists=None if lists is None else [[np.array(v, np.float64)] for v in lists],
    )


def test_a_minimum_the_removed_persons_did_not_hold_stands() -> None:
    have = _cells([3], [1.0], [9.0])
    out = delta.subtract_add(have, _cells([1], [4.0], [5.0]), _cells([2], [4.0], [6.0]))
    assert out is not None and out.low[0] == 1.0 and out.high[0] == 9.0


def test_a_removed_extreme_is_settled_only_by_a_new_one_reaching_as_far() -> None:
    have = _cells([3], [1.0], [9.0])
    # The removed person held the maximum and now reaches further: the new maximum is theirs.
    out = delta.subtract_add(have, _cells([1], [2.0], [9.0]), _cells([2], [2.0], [11.0]))
    assert out is not None and out.high[0] == 11.0
    # ... but if they fall short, the rest's maximum is unknown: no delta.
    assert delta.subtract_add(have, _cells([1], [2.0], [9.0]), _cells([1], [2.0], [8.0])) is None


def test_value_lists_lose_one_occurrence_per_removed_value() -> None:
    have = _cells([4], [1.0], [3.0], [[1.0, 2.0, 2.0, 3.0]])
    out = delta.subtract_add(
        have, _cells([1], [2.0], [2.0], [[2.0]]), _cells([1], [5.0], [5.0], [[5.0]])
    )
    assert out is not None and out.lists is not None
    assert out.lists[0][0].tolist() == [1.0, 2.0, 3.0, 5.0]
    # Removing a value that is not there is a broken premise, never a silent answer.
    bad = _cells([1], [7.0], [7.0], [[7.0]])
    assert delta.subtract_add(have, bad, None) is None


def test_emptied_entries_trends_cells_drop_other_kinds_give_up() -> None:
    cells = _cells([1], [1.0], [1.0])
    assert delta.subtract_add({0: {"x": cells}}, {0: {"x": cells}}, {0: {}}) == {0: {}}
    steps = StepStats(np.array([1, 0]), [[], []])
    assert delta.subtract_add({"x": steps}, {"x": steps}, {}) is None
    # Counts never go negative: a contribution that was not part of the partial.
    assert (
        delta.subtract_add({"x": steps}, {"x": StepStats(np.array([2, 0]), [[], []])}, {}) is None
    )

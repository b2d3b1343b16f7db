"""The comparison: exact where it must be, tolerant where floats are, and blind to order only
where order means nothing."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from eventlens.shadow.compare import compare, values_equal
from eventlens.shadow.store import MAX_DIFFS, Discrepancy, ShadowStore, bounded, loads_maybe

DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]
numbers = st.one_of(
    st.integers(-(10**6), 10**6), st.floats(allow_nan=True, allow_infinity=True, width=64)
)


def series(label: str, data: list[Any], breakdown: str | None = None) -> dict[str, Any]:
    s: dict[str, Any] = {"label": label, "series_index": 0, "days": DAYS, "data": data}
    s["labels"] = DAYS
    s["count"] = sum(x for x in data if isinstance(x, int))
    if breakdown is not None:
        s["breakdown_value"] = breakdown
    return s


@given(st.lists(st.lists(numbers, min_size=3, max_size=3), min_size=1, max_size=5), st.randoms())
def test_a_result_equals_itself_in_any_series_order(rows: list[list[Any]], rnd: Any) -> None:
    result = [series("$pageview", d, breakdown=f"b{i}") for i, d in enumerate(rows)]
    shuffled = list(result)
    rnd.shuffle(shuffled)
    assert compare("TrendsQuery", result, shuffled) == []


@given(
    st.lists(st.integers(0, 1000), min_size=3, max_size=3),
    st.integers(0, 2),
    st.integers(1, 5),
)
def test_one_changed_cell_is_the_one_diff(data: list[int], cell: int, delta: int) -> None:
    got = list(data)
    got[cell] += delta
    a, b = [series("$pageview", data, "Chrome")], [series("$pageview", got, "Chrome")]
    b[0]["count"] = a[0]["count"]
    [diff] = compare("TrendsQuery", a, b)
    assert diff.path == f"series[$pageview|Chrome].data[{DAYS[cell]}]"
    assert (diff.expected, diff.got) == (data[cell], got[cell])


@given(st.floats(min_value=1e-300, max_value=1e300), st.floats(-0.9, 0.9))
def test_float_tolerance_is_relative(x: float, frac: float) -> None:
    assert values_equal(x, x * (1 + frac * 1e-10), 1e-9)
    assert not values_equal(x, x * (1 + 1e-6), 1e-9)


def test_special_values_are_exact() -> None:
    nan, inf = float("nan"), float("inf")
    assert values_equal(nan, nan) and not values_equal(nan, 0.0) and not values_equal(1.0, nan)
    assert values_equal(inf, inf) and not values_equal(inf, -inf) and not values_equal(inf, 1e308)
    assert values_equal(1, 1.0) and not values_equal(True, 1) and not values_equal(None, 0)
    assert not values_equal("Chrome", "chrome")
    numpy_result = [series("x", [np.int64(3), np.float64(0.5), 0])]
    numpy_result[0]["count"] = np.int64(3)
    assert compare("TrendsQuery", numpy_result, [series("x", [3, 0.5, 0])]) == []


def test_funnel_retention_lifecycle_paths() -> None:
    steps = [{"order": 0, "name": "a", "count": 3}, {"order": 1, "name": "b", "count": 2}]
    wrong = [{"order": 0, "name": "a", "count": 3}, {"order": 1, "name": "b", "count": 1}]
    assert [d.path for d in compare("FunnelsQuery", steps, wrong)] == ["steps[1].count"]
    by_value = [[{**s, "breakdown_value": v} for s in steps] for v in ("x", "y")]
    swapped = [by_value[1], by_value[0]]  # ranking order is display order: not a difference
    assert compare("FunnelsQuery", by_value, swapped) == []
    cohorts = [{"date": "2026-11-01", "label": "Day 0", "values": [{"count": 4}, {"count": 2}]}]
    other = [{"date": "2026-11-01", "label": "Day 0", "values": [{"count": 4}, {"count": 3}]}]
    [diff] = compare("RetentionQuery", cohorts, other)
    assert (diff.path, diff.expected, diff.got) == ("cohort[2026-11-01].values[1]", 2, 3)
    life = [{"label": "x - new", "status": "new", "days": DAYS, "data": [1, 2, 3], "count": 6}]
    gone = [{"label": "x - new", "status": "new", "days": DAYS[:2], "data": [1, 2], "count": 6}]
    paths = {d.path for d in compare("LifecycleQuery", life, gone)}
    assert "series[new].data[2026-11-03]" in paths and "series[new].days[2]" in paths


def test_stored_results_are_bounded_and_keep_special_floats(tmp_path: Any) -> None:
    text, cut = bounded([float("nan"), float("inf"), 1.5], 1000)
    back = loads_maybe(text)
    assert not cut and math.isnan(back[0]) and back[1] == math.inf
    text, cut = bounded(list(range(10_000)), 100)
    assert cut and len(text.encode()) <= 100 and loads_maybe(text) == text
    store = ShadowStore(tmp_path / "shadow.db", max_result_bytes=64)
    record = Discrepancy(
        project=1,
        kind="TrendsQuery",
        outcome="mismatch",
        fingerprint="f",
        query={"kind": "TrendsQuery"},
        now="2026-11-01T00:00:00+00:00",
        timezone="UTC",
        week_start=0,
        data_version=3,
        primary_engine="a",
        candidate_engine="b",
        primary_result=list(range(1000)),
        candidate_result=[1],
        diff=[{"path": f"x[{i}]", "expected": i, "got": 0} for i in range(500)],
    )
    back_record = store.get(store.add_discrepancy(record))
    assert back_record.results_truncated and back_record.candidate_result == [1]
    assert len(back_record.diff) == MAX_DIFFS and back_record.diff_count == 500
    store.close()

"""The benchmark's method at tiny sizes: the interleaved, rotated schedule, and the every-cell
check of a trends breakdown (order, null, other) catching a wrong "other" row."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from eventlens.bench.method import BreakdownCounts, breakdown_mismatches, schedule
from eventlens.query.semantics.filters import NULL_BREAKDOWN, OTHER_BREAKDOWN


def test_schedule_runs_every_engine_on_a_query_before_the_next_and_rotates() -> None:
    engines, queries = ["a", "b", "c"], ["q1", "q2"]
    order = list(schedule(engines, queries, rounds=3))
    assert len(order) == 3 * 2 * 3
    for r in range(3):
        rnd = [(q, e) for rr, q, e in order if rr == r]
        # Query by query: all engines on q1, then all on q2.
        assert [q for q, _ in rnd] == ["q1"] * 3 + ["q2"] * 3
        # Engine order rotated by one per round, the same for every query of the round.
        want = engines[r:] + engines[:r]
        assert [e for q, e in rnd if q == "q1"] == want == [e for q, e in rnd if q == "q2"]
    # Each engine goes first exactly once over n rounds.
    firsts = [next(e for rr, _, e in order if rr == r) for r in range(3)]
    assert sorted(firsts) == engines


def _peer() -> BreakdownCounts:
    # Two days. Values: x (3 events, persons p1 p2), y (1, p3), z (1, p1), null (2, p4).
    cells = {
        (0, "x"): (2, 2),
        (1, "x"): (1, 1),
        (0, "y"): (1, 1),
        (1, "z"): (1, 1),
        (1, None): (2, 1),
    }
    totals = {"x": (3, 2), "y": (1, 1), "z": (1, 1), None: (2, 1)}
    persons = {"y": {0: {"p3"}}, "z": {1: {"p1"}}, None: {1: {"p4"}}, "x": {0: {"p1", "p2"}}}

    def other_persons(values: set[str | None]) -> dict[int, int]:
        out: dict[int, set[str]] = {}
        for v in values:
            for d, ps in persons.get(v, {}).items():
                out.setdefault(d, set()).update(ps)
        return {d: len(ps) for d, ps in out.items()}

    return BreakdownCounts(cells, totals, other_persons)


def _ours() -> list[dict[str, Any]]:
    # limit 2: total ranks x 3, null 2, then z 1 / y 1 (value desc) -> x, null, other (y + z).
    # dau ranks x 2, then y, z and null at 1: z, y by value desc, null last -> x, z, other.
    return [
        {"math": "total", "breakdown_value": "x", "data": [2, 1]},
        {"math": "total", "breakdown_value": NULL_BREAKDOWN, "data": [0, 2]},
        {"math": "total", "breakdown_value": OTHER_BREAKDOWN, "data": [1, 1]},
        {"math": "dau", "breakdown_value": "x", "data": [2, 1]},
        {"math": "dau", "breakdown_value": "z", "data": [0, 1]},
        {"math": "dau", "breakdown_value": OTHER_BREAKDOWN, "data": [1, 1]},
    ]


def test_every_cell_agrees_including_null_and_other() -> None:
    assert breakdown_mismatches(_peer(), _ours(), limit=2) == []


def test_a_differing_other_row_or_order_is_caught() -> None:
    wrong = copy.deepcopy(_ours())
    wrong[2]["data"] = [1, 2]  # total's other row off by one
    assert breakdown_mismatches(_peer(), wrong, limit=2) == [
        f"total {OTHER_BREAKDOWN}: [1, 2] != [1, 1]"
    ]
    wrong = copy.deepcopy(_ours())
    wrong[5]["data"] = [1, 2]  # dau's other: persons, not a sum of the values' rows
    assert breakdown_mismatches(_peer(), wrong, limit=2)
    swapped = copy.deepcopy(_ours())
    swapped[0], swapped[1] = swapped[1], swapped[0]
    assert "breakdown order" in breakdown_mismatches(_peer(), swapped, limit=2)[0]
    wrong = copy.deepcopy(_ours())
    wrong[1]["data"] = [0, 1]  # the null row
    assert breakdown_mismatches(_peer(), wrong, limit=2)


def test_bench_on_a_user_file_of_another_shape_agrees_in_every_cell(tmp_path: Path) -> None:
    """`bench query --data FILE` on the saas shape (binary uuids, > 25 browser values, so the
    trends breakdown has null and other rows): imported, then every peer agrees in every cell."""
    from eventlens.bench.query import run_bench
    from eventlens.generate.saas import write_saas

    data = tmp_path / "saas.parquet"
    write_saas(data, 3000, seed=5)
    report = run_bench(
        0,
        tmp_path / "bench",
        ["parallel", "duckdb", "chdb"],
        runs=1,
        progress=lambda _: None,
        data=data,
    )
    assert report["rows"] == 3000 and report["data"] == str(data)
    rows = [r for r in report["results"] if r.get("expressible", True)]
    assert rows and all(r["equal_to_parallel"] for r in rows), [
        (r["engine"], r["query"]) for r in rows if not r["equal_to_parallel"]
    ]

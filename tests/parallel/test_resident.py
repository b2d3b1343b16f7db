"""Resident buckets (eventlens/query/parallel/resident.py): decoded once per file set, reused,
never stale (new files are a new key), bounded by bytes, built once under concurrency, and
skipped (Parquet scan) when a plan does not fit the budget."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from eventlens.query import normalise, parse_query
from eventlens.query.parallel import ParallelEngine
from eventlens.query.parallel.kernels.compiled import distinct_per_cell, select_rows
from eventlens.query.parallel.resident_cache import CACHE, ResidentCache
from eventlens.query.testing import event_rows, parse_instant
from eventlens.storage.event_table import EventTable
from tests.parallel.strategies import person_uuid
from tests.parallel.support import resident_budget

QUERY = {
    "kind": "TrendsQuery",
    "series": [{"event": "$pageview"}, {"event": "$pageview", "math": "dau"}],
    "dateRange": {"date_from": "2024-03-01", "date_to": "2024-03-11"},
    "breakdownFilter": {"breakdown": "$browser"},
}


def _events(persons: range, day: int, browser: str = "Chrome") -> list[dict[str, Any]]:
    return [
        {
            "event": "$pageview",
            "distinct_id": f"d{p}",
            "person_id": person_uuid(p),
            "timestamp": f"2024-03-{day:02d}T10:00:00Z",
            "properties": {"$browser": browser},
        }
        for p in persons
    ]


def _table(tmp_path: Path) -> EventTable:
    table = EventTable.open_or_create(tmp_path / "events", buckets=4)
    table.append(
        event_rows(_events(range(12), 1) + _events(range(6), 2, "Safari")), log_offset=None
    )
    return table


def _run(table: EventTable) -> tuple[Any, Any]:
    nq = normalise(parse_query(QUERY), timezone="UTC", now=parse_instant("2024-03-12T00:00:00Z"))
    return ParallelEngine("local", min_task_rows=0).explain(nq, table.snapshot())


def _total(result: Any) -> int:
    return sum(row["count"] for row in result if row["math"] == "total")


def test_buckets_are_built_once_then_reused(tmp_path: Path) -> None:
    table = _table(tmp_path)
    misses = CACHE.misses
    first, report = _run(table)
    built = CACHE.misses - misses
    assert built == len(report.tasks) > 0
    assert all(t.resident for t in report.tasks)
    hits = CACHE.hits
    again, _ = _run(table)
    assert again == first
    assert CACHE.misses - misses == built  # nothing rebuilt
    assert CACHE.hits - hits == built
    assert _total(first) == 18


def test_new_files_extend_the_buckets_and_are_seen_at_once(tmp_path: Path) -> None:
    table = _table(tmp_path)
    before, _ = _run(table)
    extended = CACHE.extended
    table.append(event_rows(_events(range(5), 3, "Firefox")), log_offset=None)
    after, report = _run(table)
    assert _total(after) == _total(before) + 5
    assert "Firefox" in {row["breakdown_value"] for row in after}
    assert CACHE.extended > extended  # read only the new files, merged into the sorted rows
    assert report.tasks and all(t.resident for t in report.tasks)
    with resident_budget(0):
        scanned, _ = _run(table)
    assert after == scanned


def test_a_new_row_tied_with_an_old_one_rebuilds_the_bucket(tmp_path: Path) -> None:
    table = _table(tmp_path)
    _run(table)
    extended, misses = CACHE.extended, CACHE.misses
    # Same person, same instant as a stored row: only the uuids can order them.
    table.append(event_rows(_events(range(1), 1, "Opera")), log_offset=None)
    after, _ = _run(table)
    assert CACHE.extended == extended and CACHE.misses > misses
    with resident_budget(0):
        scanned, _ = _run(table)
    assert after == scanned
    assert _total(after) == 19


def test_a_plan_larger_than_the_budget_reads_parquet_with_the_same_answer(tmp_path: Path) -> None:
    table = _table(tmp_path)
    resident, _ = _run(table)
    with resident_budget(1):  # one byte: nothing fits
        scanned, report = _run(table)
    assert scanned == resident
    assert report.tasks and not any(t.resident for t in report.tasks)
    assert {r["source"] for r in report.to_dict()["subtask_runs"]} == {"parquet"}


def test_the_cache_stays_within_its_byte_budget(tmp_path: Path) -> None:
    table = _table(tmp_path)
    cache = ResidentCache(max_bytes=10**9)
    by_bucket: dict[int, list[str]] = {}
    for f in table.snapshot().files:
        by_bucket.setdefault(f.bucket, []).append(f.path)
    keys = [tuple(sorted(paths)) for paths in by_bucket.values()]
    sizes = [cache.bucket(k).nbytes for k in keys]
    assert cache.nbytes == sum(sizes)
    cache.resize(sizes[-1])  # room for the most recently used bucket only
    assert cache.nbytes <= sizes[-1]
    before = cache.misses
    cache.bucket(keys[-1])
    assert cache.misses == before  # the survivor is the most recently used one
    cache.bucket(keys[0])
    assert cache.misses == before + 1  # evicted, so rebuilt


def test_concurrent_lookups_build_a_bucket_once(tmp_path: Path) -> None:
    table = _table(tmp_path)
    cache = ResidentCache()
    paths = tuple(sorted(f.path for f in table.snapshot().files if f.bucket == 0))
    seen: list[Any] = []
    threads = [threading.Thread(target=lambda: seen.append(cache.bucket(paths))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.misses == 1 and cache.hits == 5
    assert all(b is seen[0] for b in seen)
    bucket = seen[0]
    # Sorted by (person, ts): person codes ascending, time ascending within a person.
    key = bucket.person.astype(np.int64) * 10**16 + bucket.ts
    assert np.all(key[1:] >= key[:-1])


@given(
    hnp.arrays(np.int64, st.integers(0, 300), elements=st.integers(-50, 50)),
    st.integers(-60, 60),
    st.integers(-60, 60),
    st.data(),
)
def test_select_rows_is_the_numpy_mask(ts: np.ndarray, lo: int, hi: int, data: Any) -> None:
    events = data.draw(hnp.arrays(np.int32, ts.shape, elements=st.integers(0, 4)))
    wanted = np.array(data.draw(st.lists(st.booleans(), min_size=5, max_size=5)))
    expected = np.flatnonzero((ts >= lo) & (ts < hi) & wanted[events])
    assert np.array_equal(select_rows(ts, events, lo, hi, wanted), expected)
    unbounded = np.flatnonzero(wanted[events])
    assert np.array_equal(select_rows(ts, events, None, None, wanted), unbounded)


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 2), st.integers(0, 3)), max_size=80))
def test_distinct_per_cell_counts_distinct_persons(rows: list[tuple[int, int, int]]) -> None:
    rows.sort()  # person-major: each person's rows adjacent
    person = np.array([r[0] for r in rows], np.int64)
    group = np.array([r[1] for r in rows], np.int64)
    slot = np.array([r[2] for r in rows], np.int64)
    per_cell, per_group = distinct_per_cell(group * 4 + slot, group, person, 12, 3)
    for g in range(3):
        assert per_group[g] == len({p for p, gg, _ in rows if gg == g})
        for s in range(4):
            assert per_cell[g * 4 + s] == len({p for p, gg, ss in rows if (gg, ss) == (g, s)})

"""Executors: results in task order, one retry, ExecutionError naming the partition, deadlines."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from eventlens.errors import ExecutionError, QueryTimeout
from eventlens.query import normalise, parse_query
from eventlens.query.deadline import Deadline, using
from eventlens.query.parallel import ParallelEngine, get_executor
from eventlens.query.testing import event_rows, parse_instant
from eventlens.storage.event_table import EventTable
from tests.parallel.strategies import person_uuid

EXECUTORS = ("inline", "local")


@pytest.mark.parametrize("name", EXECUTORS)
def test_results_come_back_in_task_order(name: str) -> None:
    out = get_executor(name).map(lambda x: x * x, list(range(20)), None)
    assert out == [x * x for x in range(20)]


@pytest.mark.parametrize("name", EXECUTORS)
def test_a_failing_subtask_is_retried_once(name: str) -> None:
    calls: dict[int, int] = {}
    lock = threading.Lock()

    def flaky(x: int) -> int:
        with lock:
            calls[x] = calls.get(x, 0) + 1
            first = calls[x] == 1
        if first and x % 2:
            raise OSError("transient")
        return x

    assert get_executor(name).map(flaky, [1, 2, 3], None) == [1, 2, 3]
    assert calls == {1: 2, 2: 1, 3: 2}


@pytest.mark.parametrize("name", EXECUTORS)
def test_past_the_deadline_the_query_times_out(name: str) -> None:
    started: list[int] = []

    def slow(x: int) -> int:
        started.append(x)
        end = time.monotonic() + 5
        while time.monotonic() < end:  # a cooperative kernel: checks its deadline
            from eventlens.query import deadline

            deadline.check()
            time.sleep(0.01)
        return x

    deadline = Deadline(0.2)
    t0 = time.monotonic()
    with pytest.raises(QueryTimeout):
        get_executor(name).map(slow, list(range(10)), deadline)
    assert time.monotonic() - t0 < 3  # generous: the point is "not 10 x 5 s"
    assert len(started) < 10  # outstanding sub-tasks were cancelled, not run


def _table(tmp_path: Path, buckets: int = 4) -> EventTable:
    events = [
        {
            "event": "$pageview",
            "distinct_id": f"d{p}",
            "person_id": person_uuid(p),
            "timestamp": f"2024-03-{day:02d}T10:00:00Z",
        }
        for p in range(8)
        for day in (1, 2, 3, 10, 11)
    ]
    table = EventTable.open_or_create(tmp_path / "events", buckets=buckets)
    table.append(event_rows(events), log_offset=None)
    return table


def _nq(query: dict[str, Any]) -> Any:
    return normalise(parse_query(query), timezone="UTC", now=parse_instant("2024-03-12T00:00:00Z"))


def test_a_partition_failing_twice_is_an_execution_error_naming_it(tmp_path: Path) -> None:
    snapshot = _table(tmp_path).snapshot()
    victim = snapshot.files[0]
    os.remove(victim.path)  # the sub-task reading it fails on both attempts
    q = _nq(
        {
            "kind": "TrendsQuery",
            "series": [{"event": "$pageview"}],
            "dateRange": {"date_from": "-30d"},
        }
    )
    with pytest.raises(ExecutionError) as info:
        ParallelEngine("local", min_task_rows=0).run(q, snapshot)
    assert f"bucket(s) [{victim.bucket}]" in info.value.message
    assert victim.path.split("/")[-1] in info.value.message


def test_the_engine_honours_the_current_deadline(tmp_path: Path) -> None:
    snapshot = _table(tmp_path).snapshot()
    q = _nq({"kind": "TrendsQuery", "series": [{"event": "$pageview"}]})
    expired = Deadline(0.0)
    with using(expired), pytest.raises(QueryTimeout):
        ParallelEngine("local").run(q, snapshot)


def test_time_pruning_and_explain(tmp_path: Path) -> None:
    snapshot = _table(tmp_path).snapshot()
    q = _nq(
        {
            "kind": "TrendsQuery",
            "series": [{"event": "$pageview", "math": "dau"}],
            "dateRange": {"date_from": "2024-03-10", "date_to": "2024-03-11"},
        }
    )
    result, report = ParallelEngine("inline", min_task_rows=0).explain(q, snapshot)
    assert result[0]["data"] == [8, 8]
    info = report.to_dict()
    days = {f.day.isoformat() for f in snapshot.files}
    assert days == {"2024-03-01", "2024-03-02", "2024-03-03", "2024-03-10", "2024-03-11"}
    kept_days = 2 / 5
    assert info["files_kept"] == round(info["files_total"] * kept_days)
    assert info["files_pruned"] == info["files_total"] - info["files_kept"]
    assert info["rows_scanned"] == 16
    assert len(info["subtask_runs"]) == len(info["subtasks"]) >= 2
    assert set(info["timings_ms"]) == {"plan", "execute", "merge", "finish", "total"}

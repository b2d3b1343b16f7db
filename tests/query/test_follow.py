"""The commit follower: after a commit, the resident buckets of a recently queried project are
extended in the background, so the next query builds or extends none itself."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from eventlens.config import Settings
from eventlens.query import normalise, parse_query
from eventlens.query.follow import CommitFollower
from eventlens.query.parallel import ParallelEngine
from eventlens.query.parallel.resident_cache import CACHE
from eventlens.query.reference import ReferenceEngine
from eventlens.query.testing import event_rows, parse_instant
from eventlens.storage import tables
from eventlens.storage.event_table import EventTable
from tests.parallel.strategies import person_uuid
from tests.parallel.support import resident_budget

QUERY = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}],
    "dateRange": {"date_from": "2024-03-01", "date_to": "2024-03-10"},
}


def _events(day: int, persons: range) -> list[dict[str, object]]:
    return [
        {
            "event": "$pageview",
            "distinct_id": f"d{p}",
            "person_id": person_uuid(p),
            "timestamp": f"2024-03-{day:02d}T{p % 24:02d}:00:00Z",
        }
        for p in persons
    ]


def test_the_next_query_after_a_commit_finds_its_buckets_extended(tmp_path: Path) -> None:
    settings = replace(Settings(), data_dir=tmp_path)
    table = EventTable.open_or_create(settings.event_table_dir(1), buckets=4)
    table.append(event_rows(_events(2, range(40))), log_offset=None)
    nq = normalise(parse_query(QUERY), timezone="UTC", now=parse_instant("2024-04-01T00:00:00Z"))
    engine = ParallelEngine("inline", min_task_rows=0)
    follower = CommitFollower(settings, interval=0.02)
    with resident_budget(1 << 30):
        try:
            first = tables.snapshot(settings, 1)
            engine.run(nq, first)
            follower.touch(1, first.version)
            table.append(event_rows(_events(4, range(10, 30))), log_offset=None)
            for _ in range(500):
                if follower.warmed:
                    break
                time.sleep(0.01)
            assert follower.warmed == 1
            built = CACHE.misses  # builds and extensions so far
            snapshot = tables.snapshot(settings, 1)
            result, report = engine.explain(nq, snapshot)
            assert CACHE.misses == built  # nothing built or extended on the query's path
            assert all(t.resident for t in report.tasks)
            assert result == ReferenceEngine().run(nq, snapshot)
        finally:
            follower.close()

"""Run one query on the reference and on the parallel engine over the same real event table."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eventlens.query import normalise, parse_query
from eventlens.query.cohorts import CohortLookup
from eventlens.query.parallel import Executor, ParallelEngine
from eventlens.query.parallel.resident_cache import CACHE
from eventlens.query.reference import ReferenceEngine
from eventlens.query.testing import event_rows, parse_instant
from eventlens.storage.event_table import EventTable
from eventlens.storage.object_store import Location
from tests.parallel.strategies import person_uuid
from tests.query.golden.compare import mismatches


def compare_engines(
    events: list[dict[str, Any]],
    query: dict[str, Any],
    *,
    buckets: int,
    executor: str | Executor,
    timezone: str = "UTC",
    week_start: int = 0,
    now: str,
    min_task_rows: int = 0,
    resident: bool = True,
    appends: int = 1,
    location: Callable[[str], Location] | None = None,
    cohorts: CohortLookup | None = None,
) -> Any:
    """Assert parallel == reference (floats within 1e-9 relative) on a fresh table with
    `buckets` person buckets; returns the reference result. `resident`: the parallel engine
    reads resident buckets (else its Parquet scan path), and the report must say so.
    `appends`: the events arrive in that many appends, the parallel engine running the query
    after each (so resident buckets are extended with the new files, as under live ingest).
    `location`: the table's location given the temporary directory (default: a directory in
    it; e.g. an s3:// prefix instead). `cohorts`: the cohorts the query may name."""
    nq = normalise(
        parse_query(query),
        timezone=timezone,
        week_start=week_start,
        now=parse_instant(now),
        cohorts=cohorts,
    )
    with tempfile.TemporaryDirectory(prefix="eventlens-par-") as tmp:
        where = location(tmp) if location is not None else Path(tmp) / "events"
        table = EventTable.open_or_create(where, buckets=buckets)
        engine = ParallelEngine(executor, min_task_rows=min_task_rows)
        step = -(-len(events) // appends) if events else 1
        with resident_budget(CACHE.max_bytes if resident else 0):
            for start in range(0, len(events), step):
                table.append(event_rows(events[start : start + step]), log_offset=None)
                got, report = engine.explain(nq, table.snapshot())
            snapshot = table.snapshot()
            got, report = engine.explain(nq, snapshot)
        expected = ReferenceEngine().run(nq, snapshot)
        sources = {t.resident for t in report.tasks if t.files or t.rows_scanned}
        assert sources <= {resident}, f"sub-tasks read {sources}, expected resident={resident}"
    got = json.loads(json.dumps(got))  # JSON-able, as the API serves it
    problems = mismatches(expected, got)
    assert not problems, f"{problems[:5]}\nquery={query}\nreport={report.to_dict()}"
    return expected


@contextmanager
def resident_budget(max_bytes: int) -> Iterator[None]:
    """The resident cache with another byte budget (0: off) for the duration."""
    before = CACHE.max_bytes
    CACHE.resize(max_bytes)
    try:
        yield
    finally:
        CACHE.resize(before)


def seed_pageviews(table_dir: Path, persons: int, days_back: tuple[int, ...]) -> None:
    """A fresh 4-bucket event table at `table_dir`: one `$pageview` per person and day, at
    noon UTC `days_back` days before today."""
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    events = [
        {
            "event": "$pageview",
            "distinct_id": f"d{p}",
            "person_id": person_uuid(p),
            "timestamp": (today - timedelta(days=back)).isoformat(),
        }
        for p in range(persons)
        for back in days_back
    ]
    EventTable.open_or_create(table_dir, buckets=4).append(event_rows(events), log_offset=None)

"""Run one query on the reference and on the parallel engine over the same real event table."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from eventlens.query import normalise, parse_query
from eventlens.query.parallel import ParallelEngine
from eventlens.query.reference import ReferenceEngine
from eventlens.query.testing import event_rows, parse_instant
from eventlens.storage.event_table import EventTable
from tests.query.golden.compare import mismatches


def compare_engines(
    events: list[dict[str, Any]],
    query: dict[str, Any],
    *,
    buckets: int,
    executor: str,
    timezone: str = "UTC",
    week_start: int = 0,
    now: str,
    min_task_rows: int = 0,
) -> Any:
    """Assert parallel == reference (floats within 1e-9 relative) on a fresh table with
    `buckets` person buckets; returns the reference result."""
    nq = normalise(
        parse_query(query), timezone=timezone, week_start=week_start, now=parse_instant(now)
    )
    with tempfile.TemporaryDirectory(prefix="eventlens-par-") as tmp:
        table = EventTable.open_or_create(Path(tmp) / "events", buckets=buckets)
        if events:
            table.append(event_rows(events), log_offset=None)
        snapshot = table.snapshot()
        expected = ReferenceEngine().run(nq, snapshot)
        engine = ParallelEngine(executor, min_task_rows=min_task_rows)
        got, report = engine.explain(nq, snapshot)
    got = json.loads(json.dumps(got))  # JSON-able, as the API serves it
    problems = mismatches(expected, got)
    assert not problems, f"{problems[:5]}\nquery={query}\nreport={report.to_dict()}"
    return expected

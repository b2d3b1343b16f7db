"""Planning reuses per-snapshot work: the table shares one Snapshot per version, and a plan's
file layout is built once per (snapshot, read range), so a repeated query plans in time that
does not grow with the table's file count; a new commit gives a new snapshot and layout."""

from __future__ import annotations

import datetime
from pathlib import Path

from eventlens.query.model import parse_query
from eventlens.query.normalise import normalise
from eventlens.query.parallel.planner import plan_query
from eventlens.storage.event_table import EventTable
from tests.storage.support import DAY, ev, event_rows

QUERY = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "view"}],
    "dateRange": {"date_from": "2023-11-14", "date_to": "2023-11-20"},
}


def test_snapshot_is_shared_per_version_and_plans_reuse_the_layout(tmp_path: Path) -> None:
    table = EventTable.open_or_create(tmp_path / "t", buckets=4)
    for k in range(3):
        person = f"{k:08x}-0000-4000-8000-000000000000"  # one bucket per append
        table.append(
            event_rows([ev("view", f"u{i}", k * DAY + i) for i in range(8)], person),
            log_offset=None,
        )
    first = table.snapshot()
    assert table.snapshot() is first  # nothing committed since: the same object
    nq = normalise(parse_query(QUERY), now=datetime.datetime(2023, 12, 1))
    a, b = plan_query(nq, first), plan_query(nq, first)
    assert a.tasks is b.tasks and a.files_kept == len(first.files)
    late = "00000003-0000-4000-8000-000000000000"
    table.append(event_rows([ev("view", "late", 4 * DAY)], late), log_offset=None)
    second = table.snapshot()
    assert second is not first and second.version == first.version + 1
    c = plan_query(nq, second)
    assert c.tasks is not a.tasks and c.files_total == len(first.files) + 1
    # An old pinned version is still planned from its own file list.
    assert plan_query(nq, table.snapshot(first.version)).files_total == len(first.files)

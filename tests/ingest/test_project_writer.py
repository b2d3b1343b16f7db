"""ProjectWriter: exactly-once apply, dedupe, dead letters, crash recovery (real subprocess
killed with os._exit at chosen points, then the same records re-applied)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from eventlens.capture.model import DeadLetter
from eventlens.config import Settings
from eventlens.ingest import project_writer
from eventlens.ingest.project_writer import LogRecord, ProjectWriter
from eventlens.storage import deadletters
from eventlens.storage.event_table import EventTable
from tests.ingest.crash_worker import CRASH_EXIT
from tests.storage.support import T0, ev, records, settings_at, table_rows


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_at(tmp_path / "data")


@pytest.fixture
def writer(settings: Settings) -> Iterator[ProjectWriter]:
    w = ProjectWriter(settings, 1)
    yield w
    w.close()


def test_apply_commits_rows_and_offsets(writer: ProjectWriter, settings: Settings) -> None:
    batch = [ev("view", "a", i) for i in range(5)]
    recs = records(batch[:2], batch[2:])
    v = writer.apply(recs)
    assert v == 1  # one table commit for the whole call
    assert writer.applied_offset() == 200
    assert writer.table.committed_log_offset() == 200
    assert [r["uuid"] for r in table_rows(settings)] == sorted(e.uuid for e in batch)
    assert writer.apply(recs) is None  # already applied: skipped
    assert len(table_rows(settings)) == 5


def test_duplicates_within_and_across_batches(writer: ProjectWriter, settings: Settings) -> None:
    a, b = ev("view", "a", 1), ev("view", "a", 2)
    writer.apply(records([a, b, a]))
    writer.apply(records([b, ev("view", "a", 3)], start=100))
    assert writer.duplicates_total == 2
    assert len(table_rows(settings)) == 3
    # Same uuid in another spelling (upper case) is the same event.
    writer.apply(records([ev("view", "a", 4, uid=a.uuid.upper())], start=200))
    assert len(table_rows(settings)) == 3


def test_dead_letters_are_stored_listed_and_marked(
    writer: ProjectWriter, settings: Settings
) -> None:
    rec = LogRecord(100, T0, [ev("v", "a", 1)], [DeadLetter(3, "event is missing", {"x": 1})])
    writer.apply([rec])
    rows = deadletters.list_(settings, 1)
    assert [(r.index, r.reason, r.payload, r.received_at) for r in rows] == [
        (3, "event is missing", {"x": 1}, T0)
    ]
    assert deadletters.mark_replayed(settings, 1, [rows[0].id]) == 1
    assert deadletters.list_(settings, 1) == []
    assert len(deadletters.list_(settings, 1, include_replayed=True)) == 1
    assert deadletters.count(settings, 1, include_replayed=True) == 1


def test_only_dead_letters_advance_the_offset(writer: ProjectWriter) -> None:
    assert writer.apply([LogRecord(50, T0, [], [DeadLetter(0, "bad", None)])]) is None
    assert writer.applied_offset() == 50


def test_failure_between_table_and_state_commit_is_repaired(
    writer: ProjectWriter, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = [ev("v", "a", 1), ev("$identify", "u", 2, {"$anon_distinct_id": "a"})]

    def boom(name: str) -> None:
        if name == "after_table_commit":
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(project_writer, "checkpoint", boom)
    with pytest.raises(RuntimeError):
        writer.apply(records(batch))
    assert writer.applied_offset() == 0 and writer.table.committed_log_offset() == 100
    monkeypatch.setattr(project_writer, "checkpoint", lambda name: None)
    assert writer.apply(records(batch)) is None  # state only: the table has the rows
    assert writer.applied_offset() == 100
    assert len(table_rows(settings)) == 2
    writer.apply(records(batch, start=100))  # the uuids are in the dedupe index now
    assert len(table_rows(settings)) == 2
    (person,) = writer.conn.execute("SELECT count(*) FROM persons").fetchone()
    assert person == 1


def _crash_apply(settings: Settings, recs: list[LogRecord], point: str, tmp: Path) -> int:
    path = tmp / f"records-{point}.json"
    path.write_bytes(
        orjson.dumps(
            [
                {
                    "end_offset": r.end_offset,
                    "received_at": r.received_at,
                    "events": [e.to_dict() for e in r.events],
                    "dead": [
                        {"index": d.index, "reason": d.reason, "payload": d.payload} for d in r.dead
                    ],
                }
                for r in recs
            ]
        )
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.ingest.crash_worker",
            str(settings.data_dir),
            point,
            str(path),
        ],
        capture_output=True,
        timeout=120,
    )
    return proc.returncode


@pytest.mark.parametrize(
    "point", ["before_table_commit", "after_table_commit", "after_state_commit", "none"]
)
def test_process_killed_at_any_point_loses_and_duplicates_nothing(
    settings: Settings, tmp_path: Path, point: str
) -> None:
    first = [ev("v", f"d{i % 3}", i, {"$set": {"n": i}}) for i in range(6)]
    second = [ev("v", "d0", 100), first[0]]  # first[0] again: a retried duplicate
    recs = records(first, second)
    recs[0].dead.append(DeadLetter(9, "bad", {"i": 9}))
    rc = _crash_apply(settings, recs, point, tmp_path)
    assert rc == (0 if point == "none" else CRASH_EXIT)
    writer = ProjectWriter(settings, 1)  # "restart": the consumer replays from the state offset
    try:
        replay = [r for r in recs if r.end_offset > writer.applied_offset()]
        writer.apply(replay)
        assert writer.applied_offset() == 200
    finally:
        writer.close()
    rows = table_rows(settings)
    assert [r["uuid"] for r in rows] == sorted({e.uuid for e in first + second})
    assert len(deadletters.list_(settings, 1)) == 1
    d0 = [r for r in rows if r["distinct_id"] == "d0"]
    assert max(r["person_properties"]["n"] for r in d0) == 3
    table = EventTable.open_or_create(settings.event_table_dir(1))
    assert table.committed_log_offset() == 200

"""EventTable on a real Delta table: appends, snapshots, time travel, stats, compaction."""

from __future__ import annotations

import datetime
from pathlib import Path

import pyarrow.compute as pc
import pytest

from eventlens.errors import InvalidInput
from eventlens.storage.event_table import EventTable
from eventlens.storage.schema import TABLE_SCHEMA, bucket_of, person_id_for
from tests.storage.support import DAY, ev, event_rows

PA = person_id_for(1, "a")
PB = person_id_for(1, "b")


def test_append_snapshot_and_time_travel(tmp_path: Path) -> None:
    table = EventTable.open_or_create(tmp_path / "t", buckets=8)
    assert table.version() == 0 and table.snapshot().files == []
    first = [ev("a", "a", i * 1000) for i in range(3)]
    second = [ev("b", "b", DAY + i) for i in range(4)]
    v1 = table.append(event_rows(first, PA), log_offset=10)
    v2 = table.append(event_rows(second, PB), log_offset=20)
    assert (v1, v2) == (1, 2)
    assert table.committed_log_offset() == 20
    old = table.snapshot(v1)
    assert old.version == 1 and old.buckets == 8
    assert sorted(old.read(["uuid"]).column("uuid").to_pylist()) == sorted(e.uuid for e in first)
    latest = table.snapshot()
    data = latest.read()
    assert data.schema == TABLE_SCHEMA
    assert data.num_rows == 7
    assert sum(f.rows for f in latest.files) == 7
    with pytest.raises(InvalidInput):
        table.snapshot(99)


def test_bucket_count_is_fixed_at_creation(tmp_path: Path) -> None:
    EventTable.open_or_create(tmp_path / "t", buckets=4)
    assert EventTable.open_or_create(tmp_path / "t", buckets=16).buckets == 4


def test_file_stats_partition_values_and_bounds_are_exact(tmp_path: Path) -> None:
    table = EventTable.open_or_create(tmp_path / "t", buckets=16)
    people = [person_id_for(1, f"d{i}") for i in range(6)]
    for i, p in enumerate(people):
        # µs offsets not on a millisecond boundary: Delta keeps stats in ms.
        evs = [ev("e", f"d{i}", k * DAY // 3 + 1234 + k) for k in range(5)]
        table.append(event_rows(evs, p), log_offset=None)
    snap = table.snapshot()
    assert snap.files
    for f in snap.files:
        rows = snap.read(["person_id", "timestamp", "day", "bucket"], [f])
        assert rows.num_rows == f.rows
        ts = rows.column("timestamp").cast("int64").to_pylist()
        assert f.min_ts is not None and f.max_ts is not None
        assert f.min_ts <= min(ts) and max(ts) <= f.max_ts
        assert f.max_ts - max(ts) < 1000 and min(ts) - f.min_ts < 1000
        assert {datetime.datetime.fromtimestamp(t / 1e6, datetime.UTC).date() for t in ts} == {
            f.day
        }
        assert {bucket_of(p, 16) for p in rows.column("person_id").to_pylist()} == {f.bucket}
        assert set(rows.column("bucket").to_pylist()) == {f.bucket}
        assert set(rows.column("day").to_pylist()) == {f.day}


def test_compaction_keeps_data_and_makes_a_new_version(tmp_path: Path) -> None:
    table = EventTable.open_or_create(tmp_path / "t")
    for i in range(5):
        table.append(event_rows([ev("e", "a", i), ev("e", "a", i + 10)], PA), log_offset=i + 1)
    before = table.snapshot()
    assert len(before.files) == 5
    assert table.compact(min_files=6) is None
    v = table.compact(min_files=3)
    assert v is not None and v > before.version
    after = table.snapshot()
    assert len(after.files) == 1
    assert after.read().sort_by("uuid").equals(before.read().sort_by("uuid"))
    # Time travel still sees the pre-compaction files; the ingest marker survives.
    assert len(table.snapshot(before.version).files) == 5
    assert table.committed_log_offset() == 5
    assert table.compact(min_files=3) is None


def test_rewrite_persons_moves_events_in_one_commit(tmp_path: Path) -> None:
    table = EventTable.open_or_create(tmp_path / "t")
    others = [ev("e", "c", 5)]
    pc_ = person_id_for(1, "c")
    table.append(event_rows([ev("e", "a", 1), ev("e", "a", 2)], PA), log_offset=None)
    table.append(event_rows([ev("e", "b", 3)], PB), log_offset=None)
    table.append(event_rows(others, pc_), log_offset=None)
    before = table.snapshot()
    v = table.rewrite_persons({PA: PB})
    assert v == before.version + 1
    data = table.snapshot().read()
    persons = data.column("person_id").to_pylist()
    assert persons.count(PB) == 3 and PA not in persons and persons.count(pc_) == 1
    moved = data.filter(pc.equal(data.column("person_id"), PB))
    assert set(moved.column("bucket").to_pylist()) == {bucket_of(PB, 16)}
    assert sorted(data.column("uuid").to_pylist()) == sorted(
        before.read().column("uuid").to_pylist()
    )
    assert table.rewrite_persons({PA: PB}) is None  # nothing left to move


def test_snapshot_read_subsets_and_rejects_unknown_columns(tmp_path: Path) -> None:
    table = EventTable.open_or_create(tmp_path / "t")
    table.append(event_rows([ev("e", "a", 1), ev("e", "a", DAY)], PA), log_offset=None)
    snap = table.snapshot()
    assert len(snap.files) == 2 and all(Path(f.path).is_absolute() for f in snap.files)
    part = snap.read(["day", "event"], snap.files[:1])
    assert part.column_names == ["day", "event"] and part.num_rows == 1
    assert part.column("day").to_pylist() == [snap.files[0].day]
    with pytest.raises(InvalidInput, match="nope"):
        snap.read(["nope"])
    assert snap.read(files=[]).num_rows == 0

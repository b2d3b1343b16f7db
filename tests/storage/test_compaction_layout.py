"""Compaction to one file per (period, bucket): periods coarser than a day when days are small,
the rows unchanged, readers of older versions undisturbed while it commits."""

from __future__ import annotations

import datetime
import threading
import uuid as uuidlib
from pathlib import Path

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from eventlens.storage.event_table import (
    DAY_LEVEL,
    MONTH_LEVEL,
    SEGMENT_LEVEL,
    EventTable,
    coarse_days,
    layout_plan,
    period_starts,
)
from eventlens.storage.schema import EVENT_SCHEMA, person_id_for

DAY = 86_400_000_000
# 2025-10-01T00:00:00Z: a month start, so the months below are October to December.
OCT1 = int(datetime.datetime(2025, 10, 1, tzinfo=datetime.UTC).timestamp()) * 1_000_000


def rows_at(times: list[int], persons: int = 5, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    who = [person_id_for(1, f"u{int(i)}") for i in rng.integers(0, persons, len(times))]
    return pa.table(
        {
            "uuid": [
                str(uuidlib.UUID(int=int(rng.integers(0, 2**62)) + i)) for i in range(len(times))
            ],
            "event": ["e"] * len(times),
            "distinct_id": ["d"] * len(times),
            "person_id": who,
            "timestamp": pa.array(times, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "properties": ["{}"] * len(times),
            "person_properties": ["{}"] * len(times),
        },
        schema=EVENT_SCHEMA,
    )


def daily(table: EventTable, days: int, per_day: int = 3, start: int = OCT1) -> None:
    """One append per day (one file per (day, bucket), as ingest writes them)."""
    for d in range(days):
        table.append(
            rows_at([start + d * DAY + k * 1000 for k in range(per_day)], seed=d), log_offset=None
        )


def content(table: EventTable, version: int | None = None) -> list[tuple[str, int]]:
    data = table.snapshot(version).read(["uuid", "timestamp", "person_id", "day", "bucket"])
    ts = data.column("timestamp").cast(pa.int64()).to_pylist()
    return sorted(zip(data.column("uuid").to_pylist(), ts, strict=True))


def test_period_starts_nest_in_the_month() -> None:
    days = np.array(
        [
            (datetime.date(2025, 10, d) - datetime.date(1970, 1, 1)).days
            for d in (1, 7, 8, 21, 22, 31)
        ]
    )

    def as_dates(a: np.ndarray) -> list[str]:
        return [str(np.datetime64(int(x), "D")) for x in a]

    assert as_dates(period_starts(days, MONTH_LEVEL)) == ["2025-10-01"] * 6
    assert as_dates(period_starts(days, SEGMENT_LEVEL)) == [
        "2025-10-01", "2025-10-01", "2025-10-08", "2025-10-15", "2025-10-22", "2025-10-22",
    ]  # fmt: skip
    assert list(period_starts(days, DAY_LEVEL)) == list(days)


def test_small_days_become_one_file_per_month_and_bucket(tmp_path: Path) -> None:
    table = EventTable.open_or_create(tmp_path / "t", buckets=2)
    daily(table, 70)  # October to early December
    before = table.snapshot()
    old_content = content(table)
    assert len(before.files) > 90
    v = table.compact(2)
    assert v is not None
    after = table.snapshot()
    months = {(f.bucket, f.day.replace(day=1)) for f in before.files}
    # Closed months one file each; the open month (December) too: min_files 2 merges them.
    assert len(after.files) == len(months)
    assert {f.day.day for f in after.files} == {1}
    assert content(table) == old_content
    # `day` is each row's own UTC day, whatever period its file has.
    data = after.read(["timestamp", "day"])
    ts = data.column("timestamp").cast(pa.int64()).to_numpy()
    got = data.column("day").cast(pa.int32()).to_numpy()
    assert (got == ts // DAY).all()
    # Pruning still holds: every file's statistics bound its rows.
    for f in after.files:
        t = after.read(["timestamp"], [f]).column("timestamp").cast(pa.int64()).to_numpy()
        assert f.min_ts is not None and f.max_ts is not None
        assert f.min_ts <= t.min() and t.max() <= f.max_ts
    assert layout_plan(after.files, 2) == []
    assert table.compact(2) is None
    # The old version is still readable, file by file.
    assert content(table, before.version) == old_content


def test_big_months_use_segments_or_days(tmp_path: Path) -> None:
    table = EventTable.open_or_create(tmp_path / "t", buckets=1)
    daily(table, 31, per_day=4)  # October: 124 rows
    daily(table, 5, per_day=1, start=OCT1 + 40 * DAY)  # November: keeps October closed
    old = content(table)
    table.compact(2, target_rows=40)  # a segment (7-10 days) holds 28-40 rows: fits
    october = [f for f in table.snapshot().files if f.day.month == 10]
    assert sorted(f.day.day for f in october) == [1, 8, 15, 22]
    assert content(table) == old
    table.compact(2, target_rows=10)  # nothing coarser than a day fits
    october = [f for f in table.snapshot().files if f.day.month == 10]
    assert sorted(f.day.day for f in october) == list(range(1, 32))
    assert content(table) == old


def test_a_month_grown_past_the_target_is_split(tmp_path: Path) -> None:
    table = EventTable.open_or_create(tmp_path / "t", buckets=1)
    daily(table, 20, per_day=2)
    table.compact(2, target_rows=100)
    assert len(table.snapshot().files) == 1  # October so far: one month file
    daily(table, 11, per_day=10, start=OCT1 + 20 * DAY)  # October grows to 150 rows
    daily(table, 1, start=OCT1 + 45 * DAY)  # November starts: October is closed
    old = content(table)
    table.compact(2, target_rows=100)
    october = [f for f in table.snapshot().files if f.day.month == 10]
    assert sorted(f.day.day for f in october) == [1, 8, 15, 22]  # segments: 14, 14, 22, 100
    assert content(table) == old


def test_the_open_month_merges_small_files_and_leaves_its_big_one(tmp_path: Path) -> None:
    table = EventTable.open_or_create(tmp_path / "t", buckets=1)
    table.append(rows_at([OCT1 + 1000 * k for k in range(400)]), log_offset=None, coarse=True)
    big = table.snapshot().files
    assert len(big) == 1 and big[0].day == datetime.date(2025, 10, 1)
    daily(table, 6, start=OCT1 + 3 * DAY)
    assert table.compact(8, target_rows=1000) is None  # 6 small files < min_files: wait
    table.compact(4, target_rows=1000)
    files = table.snapshot().files
    assert big[0].path in {f.path for f in files}  # not rewritten
    assert len(files) == 2 and sorted(f.rows for f in files) == [18, 400]


def test_readers_of_the_old_version_are_not_disturbed_while_it_commits(tmp_path: Path) -> None:
    table = EventTable.open_or_create(tmp_path / "t", buckets=4)
    daily(table, 40)
    pinned = table.snapshot()
    want = content(table)
    errors: list[BaseException] = []
    reads = 0
    stop = threading.Event()

    def read() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                data = pinned.read(["uuid"])
                assert data.num_rows == len(want)
                reads += 1
            except BaseException as exc:  # surfaced below
                errors.append(exc)
                return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert table.compact(2) is not None
    finally:
        stop.set()
        reader.join()
    assert not errors and reads > 0
    assert table.snapshot().version > pinned.version
    assert len(table.snapshot().files) < len(pinned.files)
    assert content(table) == want


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 120), st.integers(0, 3)), min_size=1, max_size=400),
    st.integers(1, 60),
)
def test_coarse_days_follow_the_layout_rule(rows: list[tuple[int, int]], target: int) -> None:
    base = (datetime.date(2025, 10, 1) - datetime.date(1970, 1, 1)).days
    days = np.array([base + d for d, _ in rows], np.int32)
    buckets = np.array([b for _, b in rows], np.int32)
    got = coarse_days(days, buckets, target)
    assert (got <= days).all()  # a period starts on or before each of its rows' days
    month = days.astype("datetime64[D]").astype("datetime64[M]")
    assert (got.astype("datetime64[D]").astype("datetime64[M]") == month).all()
    # Files (period, bucket) never exceed the target unless a single day does.
    keys, counts = np.unique(got.astype(np.int64) * 8 + buckets, return_counts=True)
    day_keys, day_counts = np.unique(days.astype(np.int64) * 8 + buckets, return_counts=True)
    for key, n in zip(keys, counts, strict=True):
        if n > target:
            assert key in set(day_keys[day_counts == n])

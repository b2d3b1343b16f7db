"""The per-project event table: one Delta Lake table partitioned by (UTC day, person bucket).

Why Delta (docs/adr/0002-event-table-and-persons.md): atomic commits, versions for time travel,
partition values and min/max statistics in the log, small-file compaction, and an app-transaction
marker that makes "rows + consumer progress" one atomic commit (exactly-once ingest).

The bucket count B is fixed when the table is created and kept in the table's description
(`{"eventlens_buckets": B}`): Delta refuses unknown keys in `configuration`.
"""

from __future__ import annotations

import datetime
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError

from eventlens.errors import InvalidInput
from eventlens.storage.object_store import Location, delta_options, filesystem, is_remote
from eventlens.storage.schema import (
    DEFAULT_BUCKETS,
    EVENT_SCHEMA,
    PARTITION_COLUMNS,
    TABLE_SCHEMA,
    bucket_of,
    buckets_of,
)

INGEST_APP_ID = "eventlens-ingest"
# Only `timestamp` gets min/max statistics: it is what time pruning needs, and stats over JSON
# text columns would bloat the log for nothing.
_TABLE_CONFIGURATION: dict[str, str | None] = {"delta.dataSkippingStatsColumns": "timestamp"}
_EPOCH = datetime.date(1970, 1, 1)


def is_commit_conflict(exc: BaseException) -> bool:
    """Did a commit fail because the table moved under it (a concurrent writer)? The table
    format's own error, named here so callers never import the format's library."""
    return isinstance(exc, CommitFailedError)


@dataclass(frozen=True)
class DataFile:
    """One committed Parquet file. `min_ts`/`max_ts` are µs since the epoch, UTC, from the Delta
    statistics, which keep only milliseconds: they are conservative bounds (min rounded down,
    max rounded up to the last µs of its millisecond), safe for pruning."""

    path: str
    day: datetime.date  # partition value: the first UTC day of the file's period (compaction)
    bucket: int
    rows: int
    size_bytes: int
    min_ts: int | None
    max_ts: int | None


def _ms_ceiling(us: int | None) -> int | None:
    return None if us is None else us - us % 1000 + 999


# Compaction's aim: files of about this many rows (a sub-task's worth, ADR 0004, several times
# over), never more than one calendar month of one bucket. Measured in ADR 0013.
TARGET_FILE_ROWS = 1_000_000
_TARGET_FILE_BYTES = 512 << 20  # delta-rs splits a partition's file beyond this
_BATCH_TARGETS = 4  # rows per compaction commit: about this many target files
DAY_LEVEL, SEGMENT_LEVEL, MONTH_LEVEL = "day", "segment", "month"
# A month's segments start on these days (days 1-7, 8-14, 15-21, 22-end): they nest in the
# month, so a month, its segments and its days never straddle each other's boundaries.
_SEGMENT_DAYS = (1, 8, 15, 22)


def _days_of(rows: pa.Table) -> np.ndarray:
    ts = rows.column("timestamp").cast(pa.int64()).to_numpy()
    days: np.ndarray = np.floor_divide(ts, 86_400_000_000).astype(np.int32)
    return days


def period_starts(days: np.ndarray, level: str) -> np.ndarray:
    """Per day since the epoch: the first day (since the epoch) of its period at `level` (the
    partition value a compacted file carries; its rows keep their own timestamps)."""
    if level == DAY_LEVEL or days.size == 0:
        return days.astype(np.int32)
    dates = days.astype("datetime64[D]")
    months = dates.astype("datetime64[M]")
    first = months.astype("datetime64[D]")
    if level == MONTH_LEVEL:
        return first.astype(np.int32)
    dom = (dates - first).astype(np.int64) + 1
    seg = np.searchsorted(np.array(_SEGMENT_DAYS), dom, side="right") - 1
    out: np.ndarray = (first.astype(np.int64) + np.array(_SEGMENT_DAYS)[seg] - 1).astype(np.int32)
    return out


def coarse_days(
    days: np.ndarray, buckets: np.ndarray, target_rows: int = TARGET_FILE_ROWS
) -> np.ndarray:
    """Per row (UTC day since the epoch, bucket): the partition day at the coarsest level that
    keeps this batch's (month, bucket) files within `target_rows` (`layout_plan`'s rule)."""
    if days.size == 0:
        return days
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    unit = months * 65_536 + buckets.astype(np.int64)
    keys, inverse, counts = np.unique(unit, return_inverse=True, return_counts=True)
    out = period_starts(days, MONTH_LEVEL)
    if (counts <= target_rows).all():
        return out
    segments = period_starts(days, SEGMENT_LEVEL)
    seg_keys, seg_counts = np.unique(
        unit * 65_536 + (segments.astype(np.int64) - out), return_counts=True
    )
    worst = np.zeros(keys.size, np.int64)
    np.maximum.at(worst, np.searchsorted(keys, seg_keys // 65_536), seg_counts)
    level = np.where(counts <= target_rows, 0, np.where(worst <= target_rows, 1, 2))[inverse]
    result: np.ndarray = np.where(level == 0, out, np.where(level == 1, segments, days))
    return result.astype(np.int32)


@dataclass(frozen=True)
class CompactionUnit:
    """Files of one bucket to rewrite in one piece. `days`: the partition values whose files
    are replaced (all of them: Delta's predicate names partitions, not files). `into`: the
    partition value of every row, or None: each row's period start at `level`."""

    bucket: int
    days: tuple[datetime.date, ...]
    level: str
    into: datetime.date | None
    paths: tuple[str, ...]
    rows: int
    span: tuple[datetime.date, datetime.date]  # without `into`: the days replaced

    def predicate(self) -> str:
        """The partitions replaced: with `into`, exactly `days` (a big file on another day of
        the month stays); else every day of the periods the files lie in (all of them are
        in the unit), which holds every period start the rows are given."""
        if self.into is not None:
            days = ", ".join(f"'{d.isoformat()}'" for d in self.days)
            return f"(bucket = {self.bucket} AND day IN ({days}))"
        lo, hi = self.span
        return (
            f"(bucket = {self.bucket} AND day >= '{lo.isoformat()}' AND day <= '{hi.isoformat()}')"
        )


def _month_bounds(d: datetime.date) -> tuple[datetime.date, datetime.date]:
    first = d.replace(day=1)
    nxt = (first + datetime.timedelta(days=32)).replace(day=1)
    return first, nxt - datetime.timedelta(days=1)


def _period_bounds(d: datetime.date, level: str) -> tuple[datetime.date, datetime.date]:
    if level == DAY_LEVEL:
        return d, d
    first, last = _month_bounds(d)
    if level == MONTH_LEVEL:
        return first, last
    i = max(k for k, s in enumerate(_SEGMENT_DAYS) if s <= d.day)
    lo = first.replace(day=_SEGMENT_DAYS[i])
    hi = last if i + 1 == len(_SEGMENT_DAYS) else first.replace(day=_SEGMENT_DAYS[i + 1] - 1)
    return lo, hi


def _us_day(us: int | None) -> datetime.date | None:
    return None if us is None else _EPOCH + datetime.timedelta(days=us // 86_400_000_000)


def _level(rows_per_segment: dict[datetime.date, int], target_rows: int) -> str:
    """The coarsest level whose files stay within `target_rows` (one month's rows per segment)."""
    if sum(rows_per_segment.values()) <= target_rows:
        return MONTH_LEVEL
    return SEGMENT_LEVEL if max(rows_per_segment.values()) <= target_rows else DAY_LEVEL


def _unit(
    bucket: int,
    files: list[DataFile],
    level: str,
    into: datetime.date | None,
    span: tuple[datetime.date, datetime.date] | None = None,
) -> CompactionUnit:
    days = tuple(sorted({f.day for f in files}))
    if span is None:  # the periods the files lie in
        span = (_period_bounds(days[0], level)[0], _period_bounds(days[-1], level)[1])
    return CompactionUnit(
        bucket, days, level, into, tuple(f.path for f in files), sum(f.rows for f in files), span
    )


def layout_plan(
    files: list[DataFile], min_files: int, target_rows: int = TARGET_FILE_ROWS
) -> list[CompactionUnit]:
    """What compaction should rewrite so that every bucket holds one file per period, the
    period as coarse as keeps files within `target_rows` rows: a calendar month, else a
    quarter of one (`_SEGMENT_DAYS`), else a day.

    Per (bucket, calendar month) the month's rows choose the level.
    - A month before the newest one receives no more rows (late events aside): each of its
      periods with more than one file is re-laid once, whole.
    - The newest month keeps receiving rows: only its small files (< target_rows / 4) are
      merged, once `min_files` of them wait, into one file (partition value: their first day),
      so ingest does not rewrite the month's big file per batch. When the month closes it is
      re-laid whole.
    - A file with rows outside its period (its month grew past the target since it was laid
      as one file) makes its whole month one unit at the new level.
    Units come oldest first."""
    if not files:
        return []
    newest_month = max((_us_day(f.max_ts) or f.day) for f in files).replace(day=1)
    months: dict[tuple[datetime.date, int], list[DataFile]] = {}
    for f in files:
        months.setdefault((f.day.replace(day=1), f.bucket), []).append(f)
    units: list[CompactionUnit] = []
    for (month, bucket), month_files in sorted(months.items()):
        per_segment: dict[datetime.date, int] = {}
        for f in month_files:
            seg = _period_bounds(f.day, SEGMENT_LEVEL)[0]
            per_segment[seg] = per_segment.get(seg, 0) + f.rows
        level = _level(per_segment, target_rows)
        periods: dict[datetime.date, list[DataFile]] = {}
        straddles = False
        for f in month_files:
            lo, hi = _period_bounds(f.day, level)
            periods.setdefault(lo, []).append(f)
            f_lo, f_hi = _us_day(f.min_ts), _us_day(f.max_ts)
            straddles |= (f_lo is not None and f_lo < lo) or (f_hi is not None and f_hi > hi)
        if straddles:
            units.append(_unit(bucket, month_files, level, None, _month_bounds(month)))
        elif month < newest_month:
            units += [_unit(bucket, g, level, None) for g in periods.values() if len(g) > 1]
        else:
            for group in periods.values():
                small_days = {f.day for f in group if f.rows < target_rows // 4}
                # Every file of those partitions is replaced (Delta's predicate names
                # partitions), big ones included when they share a day with a small one.
                chosen = [f for f in group if f.day in small_days]
                if len(chosen) >= max(min_files, 2):
                    units.append(_unit(bucket, chosen, level, min(small_days)))
    return units


def _column(actions: pa.Table, name: str, cast: pa.DataType | None = None) -> list[Any]:
    """One add-action column as Python values; timestamps and dates cast to integers first
    (pyarrow's per-value datetime conversion was ~95% of a snapshot's cost at 800 files)."""
    if name not in actions.column_names:
        return [None] * actions.num_rows
    col = actions.column(name)
    values: list[Any] = (col.cast(cast) if cast is not None else col).to_pylist()
    return values


def _data_files(actions: pa.Table, path: Path | str) -> list[DataFile]:
    """The add actions of one version as DataFiles (absolute paths or URIs), sorted by
    (day, bucket, path)."""
    root = str(path).rstrip("/") if is_remote(path) else str(Path(path).resolve())
    paths = _column(actions, "path")
    days = _column(actions, "partition.day", pa.int32())
    buckets = _column(actions, "partition.bucket")
    records = _column(actions, "num_records")
    sizes = _column(actions, "size_bytes")
    min_ts = _column(actions, "min.timestamp", pa.int64())
    max_ts = _column(actions, "max.timestamp", pa.int64())
    dates: dict[int, datetime.date] = {}
    files = []
    for i, rel in enumerate(paths):
        day = days[i]
        date = dates.get(day)
        if date is None:
            date = dates[day] = _EPOCH + datetime.timedelta(days=day)
        files.append(
            DataFile(
                path=rel if "://" in rel else f"{root}/{rel}",
                day=date,
                bucket=int(buckets[i]),
                rows=int(records[i] or 0),
                size_bytes=int(sizes[i]),
                min_ts=min_ts[i],
                max_ts=_ms_ceiling(max_ts[i]),
            )
        )
    files.sort(key=lambda f: (f.day, f.bucket, f.path))
    return files


class Snapshot:
    """One committed version of the table: its exact file list, cheap to open (time travel)."""

    def __init__(self, version: int, buckets: int, files: list[DataFile]) -> None:
        self.version = version
        self.buckets = buckets
        self.files = files

    def read(
        self, columns: list[str] | None = None, files: list[DataFile] | None = None
    ) -> pa.Table:
        """Read `files` (default: all of this snapshot) as one table in TABLE_SCHEMA order.

        `columns` may name any TABLE_SCHEMA column; `day` and `bucket` come from the partition
        values (they are not stored in the data files). Raises InvalidInput for unknown columns.
        """
        wanted = list(TABLE_SCHEMA.names) if columns is None else list(columns)
        unknown = [c for c in wanted if c not in TABLE_SCHEMA.names]
        if unknown:
            raise InvalidInput(f"unknown event table column(s): {', '.join(unknown)}")
        stored = [c for c in wanted if c in EVENT_SCHEMA.names]
        if "day" in wanted and "timestamp" not in stored:
            stored.append("timestamp")  # `day` is computed from it
        schema = pa.schema([TABLE_SCHEMA.field(c) for c in wanted])
        parts: list[pa.Table] = []
        chosen = self.files if files is None else files
        fs, names = filesystem([f.path for f in chosen])
        for f, name in zip(chosen, names, strict=True):
            t = pq.read_table(name, columns=stored, filesystem=fs)
            n = t.num_rows
            arrays: list[pa.Array | pa.ChunkedArray] = []
            for c in wanted:
                if c == "day":
                    # From the row's own time: a compacted file's partition value is the
                    # first day of its period (a month, a quarter of one), not every row's.
                    arrays.append(pa.array(_days_of(t), pa.date32()))
                elif c == "bucket":
                    arrays.append(pa.array(np.full(n, f.bucket, np.int32), pa.int32()))
                else:
                    arrays.append(t.column(c))
            parts.append(pa.Table.from_arrays(arrays, schema=schema))
        if not parts:
            return schema.empty_table()
        return pa.concat_tables(parts)


class EventTable:
    """Handle on one project's Delta table. Not thread-safe for writes: callers serialise writers
    (ProjectWriter holds a per-project file lock); reads through snapshots are safe."""

    def __init__(self, dt: DeltaTable, path: Location, buckets: int) -> None:
        self._dt = dt
        self._path = path
        self._buckets = buckets
        self._lock = threading.Lock()
        self._latest_snapshot: Snapshot | None = None

    @staticmethod
    def exists(path: Location) -> bool:
        """Whether a Delta table has been created at `path` (a directory or an s3:// URI;
        reads, never creates)."""
        return bool(DeltaTable.is_deltatable(str(path), storage_options=delta_options(path)))

    @classmethod
    def open_or_create(cls, path: Location, buckets: int = DEFAULT_BUCKETS) -> EventTable:
        """Open the table at `path` (a directory or an s3:// URI, object_store.py), creating
        it (empty, version 0) with `buckets` if absent.

        An existing table keeps the bucket count it was created with; `buckets` is then ignored.
        """
        if buckets < 1:
            raise InvalidInput(f"bucket count must be >= 1, not {buckets}")
        options = delta_options(path)
        if not cls.exists(path):
            if not is_remote(path):
                Path(path).mkdir(parents=True, exist_ok=True)
            try:
                DeltaTable.create(
                    str(path),
                    TABLE_SCHEMA,
                    partition_by=PARTITION_COLUMNS,
                    name="events",
                    description=json.dumps({"eventlens_buckets": buckets}),
                    configuration=_TABLE_CONFIGURATION,
                    storage_options=options,
                )
            except Exception:
                # Another process (query service, consumer, import) created it first.
                if not cls.exists(path):
                    raise
        dt = DeltaTable(str(path), storage_options=options)
        meta = json.loads(dt.metadata().description or "{}")
        return cls(dt, path, int(meta.get("eventlens_buckets", DEFAULT_BUCKETS)))

    @property
    def buckets(self) -> int:
        return self._buckets

    @property
    def path(self) -> Location:
        return self._path

    def _latest(self) -> DeltaTable:
        with self._lock:
            self._dt.update_incremental()
            return self._dt

    def version(self) -> int:
        """The latest committed version (re-reads the log)."""
        return self._latest().version()

    def committed_log_offset(self) -> int | None:
        """Log offset committed with the ingest rows (app transaction), None if never."""
        return self.app_version(INGEST_APP_ID)

    def app_version(self, app_id: str) -> int | None:
        v = self._latest().transaction_version(app_id)
        return None if v is None else int(v)

    def with_partitions(self, rows: pa.Table, *, coarse: bool = False) -> pa.Table:
        """EVENT_SCHEMA rows -> TABLE_SCHEMA rows (adds UTC `day` and person `bucket`).

        `coarse`: `day` is the start of each row's period at the level `coarse_levels` picks
        for these rows (a bulk write: one file per (month, bucket) when small)."""
        rows = rows.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA)
        ts = rows.column("timestamp").cast(pa.int64()).to_numpy()
        days = np.floor_divide(ts, 86_400_000_000).astype(np.int32)
        # bucket_of once per distinct person, then spread to the rows.
        persons = pc.dictionary_encode(rows.column("person_id")).combine_chunks()
        per_person = buckets_of(persons.dictionary, self._buckets)
        buckets = per_person[persons.indices.to_numpy(zero_copy_only=False)]
        if coarse:
            days = coarse_days(days, buckets)
        return pa.Table.from_arrays(
            [*rows.columns, pa.array(days, pa.date32()), pa.array(buckets, pa.int32())],
            schema=TABLE_SCHEMA,
        )

    def append(
        self,
        rows: pa.Table,
        *,
        log_offset: int | None,
        app_id: str = INGEST_APP_ID,
        coarse: bool = False,
    ) -> int:
        """Append EVENT_SCHEMA `rows` in one atomic commit; returns the new version.

        `coarse` (bulk import): files per (period, bucket) as compaction would lay these rows
        (`with_partitions`), instead of one per (day, bucket).

        With `log_offset`, the commit also records app transaction (`app_id`, log_offset), so
        `committed_log_offset()` tells after a crash whether these rows were committed.
        An empty `rows` with a log_offset still commits the marker.
        """
        # No sort: delta-rs splits by partition itself, and a commit's file per partition is
        # one row group, so intra-file order would prune nothing (sorting cost ~60% of a write).
        table = self.with_partitions(rows, coarse=coarse)
        props = None
        if log_offset is not None:
            props = CommitProperties(
                app_transactions=[Transaction(app_id=app_id, version=log_offset)]
            )
        with self._lock:
            write_deltalake(
                self._dt,
                table,
                mode="append",
                partition_by=PARTITION_COLUMNS,
                commit_properties=props,
            )
            self._dt.update_incremental()
            return self._dt.version()

    def snapshot(self, version: int | None = None) -> Snapshot:
        """The file list of `version` (None = latest). Raises InvalidInput for a bad version.

        The latest snapshot is built once per committed version and shared (a Snapshot is
        read-only): a query's fixed cost must not grow with the table's file count when
        nothing was committed since the last query."""
        if version is None:
            with self._lock:  # version and file list from the same log state
                self._dt.update_incremental()
                version_read = self._dt.version()
                cached = self._latest_snapshot
                if cached is not None and cached.version == version_read:
                    return cached
                actions = pa.table(self._dt.get_add_actions(flatten=True))
        else:
            try:
                dt = DeltaTable(
                    str(self._path), version=version, storage_options=delta_options(self._path)
                )
            except Exception as exc:  # deltalake raises its own error types per backend
                raise InvalidInput(f"event table has no version {version}: {exc}") from exc
            version_read = dt.version()
            actions = pa.table(dt.get_add_actions(flatten=True))
        snap = Snapshot(version_read, self._buckets, _data_files(actions, self._path))
        if version is None:
            with self._lock:
                if self._latest_snapshot is None or self._latest_snapshot.version < snap.version:
                    self._latest_snapshot = snap
        return snap

    def compact(
        self,
        min_files: int,
        *,
        target_rows: int = TARGET_FILE_ROWS,
        max_rows: int | None = None,
    ) -> int | None:
        """Re-lay small files as `layout_plan` says (one commit per batch of units, same rows)
        and return the latest new version; None when the table is at rest.

        `min_files`: a unit still receiving rows (the newest month) waits for this many files,
        so ingest does not rewrite it per commit; an older unit is re-laid as soon as it has
        more files than its layout wants. `max_rows`: stop after rewriting about this many rows
        (ingest's background maintenance does a bounded share per call), None = everything.
        Readers keep the version they pinned: old files stay on disk (no vacuum)."""
        units = layout_plan(self.snapshot().files, min_files, target_rows)
        if not units:
            return None
        version: int | None = None
        done = 0
        batch: list[CompactionUnit] = []
        batch_rows = 0
        for unit in units:
            batch.append(unit)
            batch_rows += unit.rows
            if batch_rows >= target_rows * _BATCH_TARGETS:
                version = self._rewrite_units(batch)
                done += batch_rows
                batch, batch_rows = [], 0
                if max_rows is not None and done >= max_rows:
                    return version
        if batch:
            version = self._rewrite_units(batch)
        return version

    def _rewrite_units(self, units: list[CompactionUnit]) -> int:
        """One commit: the rows of `units` re-partitioned (a predicate overwrite of exactly
        their partitions, so a reader of any version sees either the old or the new files)."""
        parts: list[pa.Table] = []
        for unit in units:
            fs, names = filesystem(list(unit.paths))
            # A dataset reads the unit's files on pyarrow's threads (one file at a time cost
            # ~5 ms each at 700-row files: most of a compaction of an unsorted import).
            rows = pads.dataset(names, filesystem=fs, format="parquet").to_table(
                columns=list(EVENT_SCHEMA.names)
            )
            days = _days_of(rows)
            if unit.into is not None:
                period = np.full(days.size, (unit.into - _EPOCH).days, np.int32)
            else:
                period = period_starts(days, unit.level)
            parts.append(
                pa.Table.from_arrays(
                    [
                        *rows.cast(EVENT_SCHEMA).columns,
                        pa.array(period, pa.date32()),
                        pa.array(np.full(days.size, unit.bucket, np.int32), pa.int32()),
                    ],
                    schema=TABLE_SCHEMA,
                )
            )
        # No sort, as in `append`: readers sort a bucket by (person, time) themselves.
        table = pa.concat_tables(parts)
        with self._lock:
            write_deltalake(
                self._dt,
                table,
                mode="overwrite",
                predicate=" OR ".join(u.predicate() for u in units),
                partition_by=PARTITION_COLUMNS,
                target_file_size=_TARGET_FILE_BYTES,
            )
            self._dt.update_incremental()
            return self._dt.version()

    def rewrite_persons(self, overrides: dict[str, str]) -> int | None:
        """Move the events of each old person_id to its new person_id (and bucket), in ONE
        atomic commit. Returns the new version, or None if `overrides` is empty."""
        if not overrides:
            return None
        ids = sorted(set(overrides) | set(overrides.values()))
        buckets = sorted({bucket_of(p, self._buckets) for p in ids})
        id_list = ", ".join("'" + p.replace("'", "''") + "'" for p in ids)
        bucket_list = ", ".join(str(b) for b in buckets)
        # Delta's predicate overwrite requires the new rows to match the predicate, so the
        # survivors' own events are part of it (rewritten unchanged); the bucket term prunes.
        predicate = f"bucket IN ({bucket_list}) AND person_id IN ({id_list})"
        snap = self.snapshot()
        touched = [f for f in snap.files if f.bucket in buckets]
        data = snap.read(list(EVENT_SCHEMA.names), touched)
        data = data.filter(pc.is_in(data.column("person_id"), pa.array(ids)))
        if not pc.any(pc.is_in(data.column("person_id"), pa.array(list(overrides)))).as_py():
            return None  # nothing to move (already rewritten, or the old person had no events)
        old = data.column("person_id").to_pylist()
        data = data.set_column(
            data.schema.get_field_index("person_id"),
            EVENT_SCHEMA.field("person_id"),
            pa.array([overrides.get(p, p) for p in old], pa.string()),
        )
        table = self.with_partitions(data)
        with self._lock:
            write_deltalake(
                self._dt,
                table,
                mode="overwrite",
                predicate=predicate,
                partition_by=PARTITION_COLUMNS,
            )
            self._dt.update_incremental()
            return self._dt.version()

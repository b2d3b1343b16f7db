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
    day: datetime.date
    bucket: int
    rows: int
    size_bytes: int
    min_ts: int | None
    max_ts: int | None


def _ms_ceiling(us: int | None) -> int | None:
    return None if us is None else us - us % 1000 + 999


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
                    arrays.append(
                        pa.array(np.full(n, (f.day - _EPOCH).days, np.int32), pa.date32())
                    )
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

    def with_partitions(self, rows: pa.Table) -> pa.Table:
        """EVENT_SCHEMA rows -> TABLE_SCHEMA rows (adds UTC `day` and person `bucket`)."""
        rows = rows.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA)
        ts = rows.column("timestamp").cast(pa.int64()).to_numpy()
        days = np.floor_divide(ts, 86_400_000_000).astype(np.int32)
        # bucket_of once per distinct person, then spread to the rows.
        persons = pc.dictionary_encode(rows.column("person_id")).combine_chunks()
        per_person = buckets_of(persons.dictionary, self._buckets)
        buckets = per_person[persons.indices.to_numpy(zero_copy_only=False)]
        return pa.Table.from_arrays(
            [*rows.columns, pa.array(days, pa.date32()), pa.array(buckets, pa.int32())],
            schema=TABLE_SCHEMA,
        )

    def append(self, rows: pa.Table, *, log_offset: int | None, app_id: str = INGEST_APP_ID) -> int:
        """Append EVENT_SCHEMA `rows` in one atomic commit; returns the new version.

        With `log_offset`, the commit also records app transaction (`app_id`, log_offset), so
        `committed_log_offset()` tells after a crash whether these rows were committed.
        An empty `rows` with a log_offset still commits the marker.
        """
        # No sort: delta-rs splits by partition itself, and a commit's file per partition is
        # one row group, so intra-file order would prune nothing (sorting cost ~60% of a write).
        table = self.with_partitions(rows)
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

    def compact(self, min_files: int) -> int | None:
        """If some (day, bucket) partition has >= `min_files` files, merge small files (one
        commit, same rows) and return the new version; else None."""
        snap = self.snapshot()
        counts: dict[tuple[datetime.date, int], int] = {}
        for f in snap.files:
            counts[(f.day, f.bucket)] = counts.get((f.day, f.bucket), 0) + 1
        if not counts or max(counts.values()) < max(min_files, 2):
            return None
        with self._lock:
            metrics = self._dt.optimize.compact()
            self._dt.update_incremental()
            if not metrics.get("numFilesRemoved"):
                return None
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

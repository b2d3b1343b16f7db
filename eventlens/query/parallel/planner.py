"""Planner: normalised query + pinned snapshot -> Plan (kernel, params, sub-tasks).

1. The kernel of the query kind fixes the plan-time constants and what to read (`LoadSpec`):
   the time range including look-backs (rolling actives, first-ever events), event names and
   property keys.
2. Files are pruned by time: a file is kept when its [min_ts, max_ts] statistics (or, without
   statistics, its UTC day partition) overlap the read range.
3. Kept files are grouped by person bucket. All events of a person live in one bucket
   (storage.md item 4), so per-bucket partial results are exactly additive. Small buckets are
   coalesced into one sub-task of at least `min_task_rows` rows, so each does real work.
"""

from __future__ import annotations

import itertools
import threading
import weakref
import zlib
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlens.errors import ExecutionError, InvalidInput
from eventlens.query.kinds import kind_of
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.parallel.frame import LoadSpec, Source, connection, parquet
from eventlens.query.parallel.kernels import AnyKernel, KernelParams, kernel_for
from eventlens.query.source import EventSource, event_rows
from eventlens.storage.event_table import DataFile, Snapshot

DAY_US = 86_400_000_000
# A sub-task below this many rows is merged with the next bucket's files: below ~100k rows the
# fixed cost per sub-task (scan setup, Python dispatch) dominates (ADR 0004).
DEFAULT_MIN_TASK_ROWS = 250_000
# In-memory tables (tests, run_on_events) are split into this many hash partitions by person.
TABLE_PARTITIONS = 4
_BUCKETED_KINDS = ("TrendsQuery", "StickinessQuery", "LifecycleQuery")


def _bucketed(nq: NormalisedQuery) -> bool:
    """Does the answer have time buckets (so `date_from = all` needs the earliest event)? The
    bucketed kinds, and a funnel's trends view."""
    if nq.kind in _BUCKETED_KINDS:
        return True
    ff = getattr(nq.query, "funnelsFilter", None)
    return ff is not None and ff.funnelVizType == "trends"


@dataclass(frozen=True)
class SubTask:
    """One unit of work: a kernel over the files of some person buckets (or a table slice)."""

    index: int
    buckets: tuple[int, ...]
    source: Source
    rows: int  # rows in the kept files (from the table statistics)
    size_bytes: int

    def describe(self) -> str:
        paths = self.source.paths
        shown = ", ".join(paths[:3]) + (f", ... ({len(paths)} files)" if len(paths) > 3 else "")
        return f"bucket(s) {list(self.buckets)} [{shown or 'in-memory rows'}]"


@dataclass(frozen=True)
class Plan:
    """What will run. `params` are the kernel's plan-time constants (including the LoadSpec)."""

    kind: str
    kernel: str
    params: KernelParams
    tasks: tuple[SubTask, ...]
    version: int | None
    files_total: int
    files_kept: int
    rows_total: int
    rows_kept: int
    bytes_kept: int
    pruned_by: dict[str, int] = field(default_factory=dict)

    @property
    def spec(self) -> LoadSpec:
        return self.params.spec

    def to_dict(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "kind": self.kind,
            "kernel": self.kernel,
            "version": self.version,
            "read_range_us": [spec.lo, spec.hi],
            "events": None if spec.events is None else sorted(spec.events),
            "properties": [f"{kind}.{key}" for kind, key in spec.props],
            "files_total": self.files_total,
            "files_kept": self.files_kept,
            "files_pruned": self.files_total - self.files_kept,
            "rows_total": self.rows_total,
            "rows_kept": self.rows_kept,
            "bytes_kept": self.bytes_kept,
            "subtasks": [
                {
                    "index": t.index,
                    "buckets": list(t.buckets),
                    "files": len(t.source.paths),
                    "rows": t.rows,
                }
                for t in self.tasks
            ],
        }


# A file's partition day is the first day of its period (one day, or up to a calendar month
# after compaction, storage/event_table.py): without statistics, assume the longest period.
_LONGEST_PERIOD_US = 31 * DAY_US


def _file_range(f: DataFile) -> tuple[int, int]:
    day_lo = (f.day.toordinal() - 719_163) * DAY_US  # 719_163 = date(1970, 1, 1).toordinal()
    lo = f.min_ts if f.min_ts is not None else day_lo
    hi = f.max_ts if f.max_ts is not None else day_lo + _LONGEST_PERIOD_US - 1
    return lo, hi


def _overlaps(f: DataFile, lo: int | None, hi: int | None) -> bool:
    f_lo, f_hi = _file_range(f)
    return (lo is None or f_hi >= lo) and (hi is None or f_lo < hi)


def _earliest_files(files: list[DataFile]) -> int | None:
    """The snapshot's earliest event, exact to the µs (Delta keeps milliseconds: the files that
    may hold it are asked for their exact minimum)."""
    if not files:
        return None
    lows = [_file_range(f)[0] for f in files]
    first = min(lows)
    near = [
        f.path for f, low in zip(files, lows, strict=True) if f.min_ts is None or low < first + 1000
    ]
    con = connection()
    # fetchall: a half-read result would block this thread's connection for the sub-tasks.
    try:
        with parquet(con, near) as relation:
            rows = con.execute(f"SELECT min(epoch_us(timestamp)) FROM {relation}").fetchall()
    except duckdb.Error as exc:
        raise ExecutionError(
            f"cannot read the earliest event (date_from = all) from {', '.join(near)}: {exc}"
        ) from exc
    return None if not rows or rows[0][0] is None else int(rows[0][0])


def plan_query(
    nq: NormalisedQuery, snapshot: EventSource, *, min_task_rows: int = DEFAULT_MIN_TASK_ROWS
) -> Plan:
    """Plan `nq` over `snapshot`: an eventlens Snapshot, a pyarrow Table of event rows, or a
    list of row dicts (uuid, event, distinct_id, person_id, timestamp, properties,
    person_properties). Raises InvalidInput for any other input."""
    kernel = kernel_for(nq.kind)
    if isinstance(snapshot, list):
        # Row dicts (as the reference engine accepts): the fixture row shape.
        snapshot = event_rows(snapshot)
    if isinstance(snapshot, pa.Table):
        return _plan_table(nq, snapshot, kernel)
    if not isinstance(snapshot, Snapshot):
        raise InvalidInput(
            f"the parallel engine reads a Snapshot or an Arrow table, not {type(snapshot).__name__}"
        )
    earliest = None
    if nq.date_from is None and _bucketed(nq):
        earliest = _earliest(snapshot)
    params = kernel.prepare(kind_of(nq).narrow(nq), earliest)
    spec: LoadSpec = params.spec
    layout = _layout(snapshot, spec.lo, spec.hi, bool(spec.history), min_task_rows)
    return Plan(
        kind=nq.kind,
        kernel=kernel.name,
        params=params,
        tasks=layout.tasks,
        version=getattr(snapshot, "version", None),
        files_total=layout.files_total,
        files_kept=layout.files_kept,
        rows_total=layout.rows_total,
        rows_kept=layout.rows_kept,
        bytes_kept=layout.bytes_kept,
    )


@dataclass(frozen=True)
class _Layout:
    """The file side of a plan: what depends on the snapshot and the read range only."""

    tasks: tuple[SubTask, ...]
    files_total: int
    files_kept: int
    rows_total: int
    rows_kept: int
    bytes_kept: int


# Per snapshot (the table shares one Snapshot object per version): the earliest event and the
# layouts of recent read ranges. Dashboards repeat the same ranges, so a repeated query plans
# in time independent of the table's file count; a new version is a new Snapshot (and entry).
_PER_SNAPSHOT: weakref.WeakKeyDictionary[Snapshot, dict[Any, Any]] = weakref.WeakKeyDictionary()
_PER_SNAPSHOT_LOCK = threading.Lock()
_LAYOUTS_PER_SNAPSHOT = 64


def _memo(snapshot: Snapshot) -> dict[Any, Any]:
    with _PER_SNAPSHOT_LOCK:
        memo = _PER_SNAPSHOT.get(snapshot)
        if memo is None:
            memo = _PER_SNAPSHOT[snapshot] = {}
        return memo


def _earliest(snapshot: Snapshot) -> int | None:
    memo = _memo(snapshot)
    if "earliest" not in memo:
        memo["earliest"] = _earliest_files(list(snapshot.files))
    value: int | None = memo["earliest"]
    return value


def _layout(
    snapshot: Snapshot, lo: int | None, hi: int | None, with_history: bool, min_task_rows: int
) -> _Layout:
    memo = _memo(snapshot)
    key = ("layout", lo, hi, with_history, min_task_rows)
    layout: _Layout | None = memo.get(key)
    if layout is None:
        layout = _build_layout(_arrays(snapshot), lo, hi, with_history, min_task_rows)
        layouts = [k for k in memo if k[0] == "layout"]
        if len(layouts) >= _LAYOUTS_PER_SNAPSHOT:
            memo.pop(layouts[0])  # oldest first (dicts keep insertion order)
        memo[key] = layout
    return layout


def warm(snapshot: Snapshot, previous: Snapshot | None) -> int:
    """Plan ahead for `snapshot` what was planned for `previous` (the version before it):
    the same read ranges' layouts and the earliest event, so the first query after a commit
    does not pay for them (a commit follower calls this off the request path). Returns the
    number of layouts built."""
    old = _PER_SNAPSHOT.get(previous) if previous is not None else None
    if not old:
        return 0
    keys = [k for k in list(old) if isinstance(k, tuple) and k[0] == "layout"]
    if "earliest" in old:
        _earliest(snapshot)
    for _, lo, hi, with_history, min_task_rows in keys:
        _layout(snapshot, lo, hi, with_history, min_task_rows)
    return len(keys)


@dataclass(frozen=True)
class _Files:
    """A snapshot's files as columns (built once per snapshot): pruning a read range is then a
    few vector comparisons instead of a Python loop over every file (the first query after
    every commit paid that loop: ADR 0008)."""

    files: list[DataFile]
    lo: np.ndarray
    hi: np.ndarray
    bucket: np.ndarray
    rows: np.ndarray
    every: dict[int, tuple[str, ...]]  # bucket -> all its paths, sorted
    every_rows: dict[int, int]


def _arrays(snapshot: Snapshot) -> _Files:
    memo = _memo(snapshot)
    found: _Files | None = memo.get("files")
    if found is None:
        files = list(snapshot.files)
        ranges = [_file_range(f) for f in files]
        every: dict[int, list[str]] = {}
        every_rows: dict[int, int] = {}
        for f in files:
            every.setdefault(f.bucket, []).append(f.path)
            every_rows[f.bucket] = every_rows.get(f.bucket, 0) + f.rows
        found = memo["files"] = _Files(
            files=files,
            lo=np.array([r[0] for r in ranges], np.int64),
            hi=np.array([r[1] for r in ranges], np.int64),
            bucket=np.array([f.bucket for f in files], np.int64),
            rows=np.array([f.rows for f in files], np.int64),
            every={b: tuple(sorted(paths)) for b, paths in every.items()},
            every_rows=every_rows,
        )
    return found


def _build_layout(
    arrays: _Files, lo: int | None, hi: int | None, with_history: bool, min_task_rows: int
) -> _Layout:
    files = arrays.files
    main = np.ones(len(files), bool)
    if lo is not None:
        main &= arrays.hi >= lo
    if hi is not None:
        main &= arrays.lo < hi
    # History scans (first-ever events) read files before the range, distinct rows only.
    history = arrays.lo < lo if with_history and lo is not None else np.zeros(len(files), bool)
    kept_mask = main | history
    # Kept files by bucket, each bucket's in snapshot order (a stable sort).
    kept = np.flatnonzero(kept_mask)
    kept = kept[np.argsort(arrays.bucket[kept], kind="stable")]
    tasks: list[SubTask] = []
    group: list[int] = []
    group_files: list[int] = []
    group_rows = 0  # a running sum: re-summing per bucket made planning quadratic in files
    kept_buckets = arrays.bucket[kept]
    # Where each bucket's run of kept files starts (and the end).
    bounds = np.flatnonzero(np.r_[True, kept_buckets[1:] != kept_buckets[:-1], True])
    if kept.size == 0:
        bounds = bounds[:0]
    for a, b in itertools.pairwise(bounds.tolist()):
        group.append(int(kept_buckets[a]))
        members = kept[a:b].tolist()
        group_files.extend(members)
        group_rows += int(arrays.rows[kept[a:b]].sum())
        if group_rows >= min_task_rows:
            tasks.append(_task(len(tasks), group, group_files, main, history, arrays))
            group, group_files, group_rows = [], [], 0
    if group or not tasks:
        tasks.append(_task(len(tasks), group, group_files, main, history, arrays))
    return _Layout(
        tasks=tuple(tasks),
        files_total=len(files),
        files_kept=int(kept.size),
        rows_total=int(arrays.rows.sum()),
        rows_kept=int(arrays.rows[kept].sum()),
        bytes_kept=sum(files[i].size_bytes for i in kept.tolist()),
    )


def _task(
    index: int,
    buckets: list[int],
    members: list[int],
    main: np.ndarray,
    history: np.ndarray,
    arrays: _Files,
) -> SubTask:
    files = arrays.files
    return SubTask(
        index=index,
        buckets=tuple(buckets),
        source=Source(
            paths=tuple(files[i].path for i in members if main[i]),
            history_paths=tuple(files[i].path for i in members if history[i]),
            buckets=tuple(arrays.every[b] for b in buckets),
            bucket_rows=tuple(arrays.every_rows[b] for b in buckets),
        ),
        rows=sum(files[i].rows for i in members),
        size_bytes=sum(files[i].size_bytes for i in members),
    )


def _plan_table(nq: NormalisedQuery, table: pa.Table, kernel: AnyKernel) -> Plan:
    earliest = None
    if nq.date_from is None and _bucketed(nq) and table.num_rows:
        ts = table.column("timestamp").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        earliest = int(pc.min(ts).as_py())
    params = kernel.prepare(kind_of(nq).narrow(nq), earliest)
    encoded = pc.dictionary_encode(table.column("person_id").combine_chunks())
    part_of = np.array(
        [zlib.crc32(p.encode()) % TABLE_PARTITIONS for p in encoded.dictionary.to_pylist()],
        dtype=np.int64,
    )
    rows_part = (
        part_of[encoded.indices.to_numpy(zero_copy_only=False)]
        if table.num_rows
        else np.zeros(0, np.int64)
    )
    tasks: list[SubTask] = []
    for part in range(TABLE_PARTITIONS):
        piece = table.filter(pa.array(rows_part == part))
        if piece.num_rows or (part == TABLE_PARTITIONS - 1 and not tasks):
            tasks.append(
                SubTask(len(tasks), (part,), Source(table=piece), piece.num_rows, piece.nbytes)
            )
    return Plan(
        kind=nq.kind,
        kernel=kernel.name,
        params=params,
        tasks=tuple(tasks),
        version=None,
        files_total=0,
        files_kept=0,
        rows_total=table.num_rows,
        rows_kept=table.num_rows,
        bytes_kept=table.nbytes,
    )

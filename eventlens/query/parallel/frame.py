"""One partition's events as numpy arrays: the input every kernel computes on.

A partition (a sub-task) is read by DuckDB with one kept connection per worker thread (facts.md:
`duckdb.connect()` costs 31-49 ms). DuckDB pushes the time range and the event names down to the
Parquet scan and extracts only the property keys the query needs (`json_extract` with a JSON
pointer), so no JSON is parsed in Python per row. Property values are then dictionary-encoded:
filters, breakdown labels and numeric conversions run once per *distinct* value, with the very
functions that define their meaning (eventlens.query.semantics.filters), and are mapped back to
rows with one numpy take. See docs/adr/0004-parallel-engine.md.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from eventlens.query import deadline
from eventlens.query.model import PropertyFilter, PropertyGroup
from eventlens.query.semantics.events import Event
from eventlens.query.semantics.filters import filter_matches
from eventlens.storage.object_store import filesystem, is_remote

Properties = list[PropertyFilter | PropertyGroup] | PropertyGroup
PropKey = tuple[str, str]  # ("event" | "person", key)

_local = threading.local()
_relations = itertools.count()


def connection() -> duckdb.DuckDBPyConnection:
    """This thread's DuckDB connection (created once per thread, single-threaded: the executor
    already runs one sub-task per core)."""
    con: duckdb.DuckDBPyConnection | None = getattr(_local, "con", None)
    if con is None:
        con = duckdb.connect()
        con.execute("SET threads = 1")
        _local.con = con
    return con


@contextmanager
def parquet(con: duckdb.DuckDBPyConnection, paths: Sequence[str]) -> Iterator[str]:
    """A DuckDB relation over the Parquet files `paths` for the duration of the block: local
    files through `read_parquet`, object-storage URIs through an Arrow dataset on pyarrow's
    S3 file system (DuckDB still pushes projections and filters down into the scan)."""
    if not any(is_remote(p) for p in paths):
        yield "read_parquet([" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "])"
        return
    fs, names = filesystem(paths)
    name = f"parquet_{next(_relations)}"
    con.register(name, pads.dataset(names, filesystem=fs, format="parquet"))
    try:
        yield name
    finally:
        con.unregister(name)


@dataclass(frozen=True)
class LoadSpec:
    """What a kernel needs from a partition. Times are epoch µs; `lo` inclusive, `hi` exclusive,
    None = unbounded. `events` None = every event name. `ordered`: rows sorted by
    (person, timestamp, uuid), the reference engine's tie order. `history`: also read which
    persons had which (event, property values) before `lo` (`Frame.history`, distinct rows, no
    times): enough to tell "first-ever event before the range" without reading every old row."""

    lo: int | None
    hi: int | None
    events: frozenset[str] | None
    props: tuple[PropKey, ...]
    ordered: bool
    history: bool = False


@dataclass
class PropColumn:
    """A property as per-row codes into `values` (decoded JSON); code -1 = missing or null."""

    codes: np.ndarray
    values: list[Any]

    def lookup(self, fn: Callable[[bool, Any], Any], dtype: Any = None) -> np.ndarray:
        """fn(is_set, value) evaluated once per distinct value, as a per-row array."""
        table = [fn(v is not None, v) for v in self.values] + [fn(False, None)]
        arr = np.array(table, dtype=dtype) if dtype is not None else np.array(table, dtype=object)
        out: np.ndarray = arr[self.codes]
        return out


@dataclass
class Frame:
    """Rows of one partition: `ts` (int64 µs), `event` codes into `event_names`, `person`
    codes 0..n_persons-1, property columns by (kind, key)."""

    ts: np.ndarray
    event: np.ndarray
    event_names: list[str]
    person: np.ndarray
    n_persons: int
    props: dict[PropKey, PropColumn] = field(default_factory=dict)
    person_ids: pa.Array | None = None  # person code -> person_id
    history: Frame | None = None  # LoadSpec.history: distinct rows before the range
    # Cohort id -> per person code: is the person in it (parallel/cohorts.py sets it).
    cohorts: dict[int, np.ndarray] = field(default_factory=dict)

    def seen_before(self, matches: Callable[[Frame], np.ndarray]) -> np.ndarray:
        """Per person code: did the person have a history row for which `matches` holds?"""
        out = np.zeros(self.n_persons, dtype=bool)
        h = self.history
        if h is None or len(h) == 0 or self.person_ids is None or h.person_ids is None:
            return out
        if h.person_ids is self.person_ids:  # resident buckets: one person dictionary
            out[h.person[matches(h)]] = True
            return out
        codes = np.unique(h.person[matches(h)])
        if codes.size == 0:
            return out
        found = pc.index_in(self.person_ids, value_set=h.person_ids.take(pa.array(codes)))
        out[np.flatnonzero(found.is_valid().to_numpy(zero_copy_only=False))] = True
        return out

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def event_mask(self, name: str | None) -> np.ndarray:
        if name is None:
            return np.ones(len(self), dtype=bool)
        try:
            code = self.event_names.index(name)
        except ValueError:
            return np.zeros(len(self), dtype=bool)
        return np.asarray(self.event == code)

    def event_bits(self, names: Sequence[str | None]) -> np.ndarray:
        """Per row, bit s set when the row's event is names[s] (None: any event); one gather
        through a per-code table instead of a comparison per name."""
        table = np.zeros(len(self.event_names), np.int64)
        for s, name in enumerate(names):
            if name is None:
                table |= 1 << s
            elif name in self.event_names:
                table[self.event_names.index(name)] |= 1 << s
        out: np.ndarray = table[self.event]
        return out

    def match(self, props: Properties) -> np.ndarray:
        """Rows matching a property filter list (AND) or group (AND/OR, nested)."""
        n = len(self)
        if isinstance(props, PropertyGroup):
            masks = [self.match([item]) for item in props.values]
            if not masks:
                return np.ones(n, dtype=bool)  # an empty group filters nothing out (PostHog)
            out = masks[0].copy()
            for m in masks[1:]:
                out = (out & m) if props.type == "AND" else (out | m)
            return out
        out = np.ones(n, dtype=bool)
        for item in props:
            if isinstance(item, PropertyGroup):
                out &= self.match(item)
            else:
                out &= self._filter(item)
        return out

    def _filter(self, f: PropertyFilter) -> np.ndarray:
        if f.type == "cohort":
            member = self.cohorts.get(f.cohort_id)
            if member is None:
                raise KeyError(f"cohort {f.cohort_id}: membership was not computed")
            rows: np.ndarray = member[self.person] if len(self) else np.zeros(0, dtype=bool)
            return ~rows if f.operator == "not_in" else rows
        column = self.props[(f.type, f.key)]

        def test(is_set: bool, value: Any) -> bool:
            source = {f.key: value} if is_set else {}
            return filter_matches(f, probe_event(source))

        return column.lookup(test, dtype=bool)

    def node_mask(self, event: str | None, props: Properties) -> np.ndarray:
        out: np.ndarray = self.event_mask(event) & self.match(props)
        return out


def probe_event(source: dict[str, Any]) -> Event:
    # The reference's per-value rule applied to one distinct value (both property kinds carry it;
    # the filter reads the one its `type` names).
    return Event("", "", "", "", 0, source, source)


def props_keys(props: Properties) -> set[PropKey]:
    """Every (kind, key) a filter list or group reads."""
    out: set[PropKey] = set()
    items = props.values if isinstance(props, PropertyGroup) else props
    for item in items:
        if isinstance(item, PropertyGroup):
            out |= props_keys(item)
        elif item.type != "cohort":  # a cohort filter reads membership, not a property
            out.add((item.type, item.key))
    return out


@dataclass(frozen=True)
class Source:
    """The rows of one sub-task: Parquet files, or (tests, in-memory callers) an Arrow table."""

    paths: tuple[str, ...] = ()
    table: pa.Table | None = None
    history_paths: tuple[str, ...] = ()  # files with rows before LoadSpec.lo (history scans)
    # Per person bucket of the task: every data file of the bucket (not only those the time
    # range keeps) and their rows; the key of the bucket's resident columns (resident.py).
    buckets: tuple[tuple[str, ...], ...] = ()
    bucket_rows: tuple[int, ...] = ()


def json_pointer(key: str) -> str:
    """The JSON pointer of a top-level key, for DuckDB's json_extract."""
    # JSON pointer (RFC 6901): any key is expressible, no quoting rules to get wrong.
    return "/" + key.replace("~", "~0").replace("/", "~1")


def _sql(spec: LoadSpec, relation: str, distinct: bool = False) -> tuple[str, list[Any]]:
    cols = ["0::BIGINT AS ts" if distinct else "epoch_us(timestamp) AS ts", "event", "person_id"]
    params: list[Any] = []
    for i, (kind, key) in enumerate(spec.props):
        source = "person_properties" if kind == "person" else "properties"
        cols.append(f"json_extract({source}, ?) AS p{i}")
        params.append(json_pointer(key))
    where = []
    if spec.lo is not None:
        where.append("epoch_us(timestamp) >= ?")
        params.append(spec.lo)
    if spec.hi is not None:
        where.append("epoch_us(timestamp) < ?")
        params.append(spec.hi)
    if spec.events is not None:
        if not spec.events:
            where.append("false")
        else:
            where.append(f"event IN ({', '.join('?' for _ in spec.events)})")
            params.extend(sorted(spec.events))
    sql = f"SELECT {'DISTINCT ' if distinct else ''}{', '.join(cols)} FROM {relation}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if spec.ordered and not distinct:
        # Sorted in numpy (_person_order): sorting person_id strings in DuckDB cost ~half the
        # scan (ADR 0004); the uuid is only needed to break timestamp ties.
        sql = sql.replace(" FROM ", ", uuid FROM ", 1)
    return sql, params


def _codes(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list[Any]]:
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    encoded = pc.dictionary_encode(arr)
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, encoded.dictionary.to_pylist()


def load(source: Source, spec: LoadSpec) -> Frame:
    """Read one partition per `spec`. DuckDB is interrupted if the query deadline passes."""
    deadline.check()
    con = connection()
    current = deadline.current()
    # Interrupt this thread's connection only while it runs this scan: afterwards the same
    # connection serves other sub-tasks (maybe of other queries), which a late cancel must spare.
    scanning = threading.Event()
    scanning.set()
    if current is not None:
        current.on_cancel(lambda: con.interrupt() if scanning.is_set() else None)
    before = replace(spec, lo=None, hi=spec.lo, ordered=False, history=False)
    try:
        result = _scan(con, source.paths, source.table, spec)
        history = None
        if spec.history and spec.lo is not None:
            history = _scan(con, source.history_paths, source.table, before, distinct=True)
    finally:
        scanning.clear()
    deadline.check()
    frame = _frame(result, spec)
    if history is not None:
        frame.history = _frame(history, before)
    return frame


def _scan(
    con: duckdb.DuckDBPyConnection,
    paths: tuple[str, ...],
    table: pa.Table | None,
    spec: LoadSpec,
    distinct: bool = False,
) -> pa.Table | None:
    if table is not None:
        name = f"part_{threading.get_ident()}"
        con.register(name, table)
        try:
            sql, params = _sql(spec, name, distinct)
            result = con.sql(sql, params=params).to_arrow_table()
        finally:
            con.unregister(name)
    elif not paths:
        result = None
    else:
        with parquet(con, paths) as relation:
            sql, params = _sql(spec, relation, distinct)
            result = con.sql(sql, params=params).to_arrow_table()
    return result


def _frame(result: pa.Table | None, spec: LoadSpec) -> Frame:
    if result is None or result.num_rows == 0:
        return Frame(
            ts=np.zeros(0, np.int64),
            event=np.zeros(0, np.int64),
            event_names=[],
            person=np.zeros(0, np.int64),
            n_persons=0,
            props={k: PropColumn(np.zeros(0, np.int64), []) for k in spec.props},
        )
    ts = result.column("ts").to_numpy().astype(np.int64)
    event, event_names = _codes(result.column("event"))
    encoded = pc.dictionary_encode(result.column("person_id").combine_chunks())
    person = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    person_ids = encoded.dictionary
    props = {}
    for i, key in enumerate(spec.props):
        codes, texts = _codes(result.column(f"p{i}"))
        props[key] = PropColumn(codes, [orjson.loads(t) for t in texts])
    frame = Frame(ts, event, event_names, person, len(person_ids), props, person_ids)
    if spec.ordered:
        uuids = result.column("uuid")
        frame = _take(frame, person_order(person, ts, lambda: uuids.combine_chunks()))
    return frame


def person_order(person: np.ndarray, ts: np.ndarray, uuids: Callable[[], pa.Array]) -> np.ndarray:
    """Row order by (person code, ts, uuid): contiguous persons (codes ascending), time order,
    and the reference's uuid tie-break among equal timestamps. `uuids()` (the rows' uuid
    column) is called only if some person has two events at the same instant."""
    order = np.lexsort((ts, person))
    p, t = person[order], ts[order]
    tie = np.flatnonzero((p[1:] == p[:-1]) & (t[1:] == t[:-1]))  # row i ties with row i + 1
    if tie.size:
        starts = tie[np.r_[True, tie[1:] != tie[:-1] + 1]]
        ends = tie[np.r_[tie[1:] != tie[:-1] + 1, True]] + 2  # exclusive
        column = uuids()
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            rows = order[a:b]
            keys = column.take(pa.array(rows)).to_pylist()
            order[a:b] = rows[np.argsort(np.array(keys, dtype=object), kind="stable")]
    return order


def _take(frame: Frame, order: np.ndarray) -> Frame:
    return Frame(
        ts=frame.ts[order],
        event=frame.event[order],
        event_names=frame.event_names,
        person=frame.person[order],
        n_persons=frame.n_persons,
        props={k: PropColumn(c.codes[order], c.values) for k, c in frame.props.items()},
        person_ids=frame.person_ids,
    )


def first_per_person(frame: Frame, rows: np.ndarray) -> np.ndarray:
    """Of `rows` (indices, ascending, frame ordered by person then time), each person's first."""
    if rows.size == 0:
        return rows
    persons = frame.person[rows]
    keep = np.ones(rows.size, dtype=bool)
    keep[1:] = persons[1:] != persons[:-1]
    return rows[keep]


def bucket_index(ts: np.ndarray, starts_us: Sequence[int], end_us: int) -> np.ndarray:
    """Bucket of each timestamp, -1 outside [starts[0], end)."""
    starts = np.asarray(starts_us, dtype=np.int64)
    if starts.size == 0:
        return np.full(ts.shape, -1, np.int64)
    widths = np.diff(np.r_[starts, end_us])
    if (widths == widths[0]).all() and widths[0] > 0:
        # Equal widths (UTC, or hours; no DST change inside): a division, not a binary search.
        idx: np.ndarray = (ts - starts[0]) // widths[0]
    else:
        idx = np.searchsorted(starts, ts, side="right").astype(np.int64) - 1
    idx[(ts < starts[0]) | (ts >= end_us)] = -1
    return idx


def distinct_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct keys ascending, rows per key). O(n) when `keys` is already non-decreasing, as
    (person, time-derived) keys are over rows in (person, ts) order; a sort otherwise."""
    if keys.size == 0:
        return keys, np.zeros(0, np.int64)
    if keys.size == 1 or bool((keys[1:] >= keys[:-1]).all()):
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        return keys[starts], np.diff(np.r_[starts, keys.size])
    uniq, counts = np.unique(keys, return_counts=True)
    return np.asarray(uniq), np.asarray(counts)

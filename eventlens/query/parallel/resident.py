"""Resident buckets: every row of one person bucket, decoded once and kept in memory in
(person, timestamp, uuid) order, so a sub-task builds its Frame with a mask and a few takes
instead of a Parquet scan, a JSON extraction and a sort.

Why (ADR 0006): at 10M events the scan was 60-80% of every query, and the person sort most of
the rest of the fixed cost. A Delta data file never changes once written (compaction and person
merges write new files), so a bucket's rows are fully identified by the paths of its files: a
`ResidentBucket` keyed by those paths is valid for every snapshot holding exactly those files
and needs no invalidation. A different file set is a different key: resident_cache.py holds
the byte-bounded LRU, and extends a bucket whose new file set only adds files
(resident_extend.py) instead of rebuilding it.

Property columns are decoded lazily, per (kind, key), the first time a query reads them, with
the same per-distinct-value decoding as the scan path (frame.PropColumn).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from eventlens.query.parallel.frame import (
    Frame,
    LoadSpec,
    PropColumn,
    PropKey,
    connection,
    json_pointer,
    parquet,
    person_order,
)
from eventlens.query.parallel.kernels.compiled import select_rows

# Bytes per row of a resident bucket before property columns: ts 8, event 4, person 8, order 4.
BASE_ROW_BYTES = 24


class EventNames:
    """A process-wide event-name dictionary, so event codes agree across buckets (frames of
    several buckets concatenate without remapping)."""

    def __init__(self) -> None:
        self._names: list[str] = []
        self._codes: dict[str, int] = {}
        self._lock = threading.Lock()

    def codes(self, names: Sequence[str]) -> np.ndarray:
        """The int32 code of each name (new names get new codes)."""
        with self._lock:
            out = np.empty(len(names), np.int32)
            for i, name in enumerate(names):
                code = self._codes.get(name)
                if code is None:
                    code = self._codes[name] = len(self._names)
                    self._names.append(name)
                out[i] = code
            return out

    def known(self, names: Sequence[str]) -> np.ndarray:
        """The codes of those `names` that have one (a query naming an event nobody sent must
        not grow the dictionary)."""
        with self._lock:
            return np.array([self._codes[n] for n in names if n in self._codes], np.int64)

    def names(self) -> list[str]:
        """A copy of the dictionary: names[code]."""
        with self._lock:
            return list(self._names)


EVENT_NAMES = EventNames()


def read_prop_texts(paths: Sequence[str], key: PropKey) -> tuple[np.ndarray, list[str]]:
    """A property of every row of `paths` (file order): (codes, JSON texts by code), -1 = missing
    or null."""
    kind, name = key
    source = "person_properties" if kind == "person" else "properties"
    con = connection()
    with parquet(con, paths) as relation:
        result = _arrow(
            con, f"SELECT json_extract({source}, ?) AS v FROM {relation}", [json_pointer(name)]
        )
    encoded = pc.dictionary_encode(result.column("v").combine_chunks())
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, encoded.dictionary.to_pylist()


def small_codes(codes: np.ndarray, distinct: int) -> np.ndarray:
    # Codes index a per-column dictionary; most properties have few distinct values, so the
    # narrowest signed type keeps a resident column at 1-2 bytes per row.
    for dtype in (np.int8, np.int16, np.int32):
        if distinct < np.iinfo(dtype).max:
            return codes.astype(dtype)
    return codes


@dataclass
class ResidentBucket:
    """One bucket's rows, sorted by (person code, ts, uuid). `order[i]` is the file-order row
    of sorted row i (to place lazily read property columns)."""

    paths: tuple[str, ...]  # the key: the bucket's data files, sorted
    ts: np.ndarray  # int64 µs
    event: np.ndarray  # int32 codes into EVENT_NAMES
    person: np.ndarray  # int64 codes 0..n_persons-1, ascending (int64: kernels do arithmetic)
    person_ids: pa.Array
    order: np.ndarray
    build_s: float
    props: dict[PropKey, PropColumn] = field(default_factory=dict)
    # The order the files were read in (`order` counts rows in it); `paths` unless extended.
    read_paths: tuple[str, ...] = ()
    # Per property column: its values as JSON text, by code (to extend it with new files).
    texts: dict[PropKey, list[str]] = field(default_factory=dict)
    _first: np.ndarray | None = None
    _event_top: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def rows(self) -> int:
        return int(self.ts.shape[0])

    @property
    def event_top(self) -> int:
        """1 + the highest event code in the bucket (computed once)."""
        if self._event_top is None:
            self._event_top = int(self.event.max(initial=-1)) + 1
        return self._event_top

    @property
    def n_persons(self) -> int:
        return len(self.person_ids)

    @property
    def nbytes(self) -> int:
        base = self.ts.nbytes + self.event.nbytes + self.person.nbytes + self.order.nbytes
        # Decoded values are Python objects: counted at a flat 64 bytes each.
        props = sum(int(c.codes.nbytes) + 64 * len(c.values) for c in self.props.values())
        props += 0 if self._first is None else int(self._first.nbytes)
        return int(base) + int(self.person_ids.nbytes) + props

    def prop(self, key: PropKey) -> PropColumn:
        """The property column `key` in this bucket's row order (decoded on first use)."""
        with self._lock:
            column = self.props.get(key)
            if column is None:
                column = self.props[key] = self._read_prop(key)
            return column

    def _read_prop(self, key: PropKey) -> PropColumn:
        codes, texts = read_prop_texts(self.read_paths or self.paths, key)
        self.texts[key] = texts
        values = [orjson.loads(t) for t in texts]
        return PropColumn(small_codes(codes[self.order], len(values)), values)

    def frame(self, spec: LoadSpec) -> Frame:
        """The rows `spec` asks for (time range, event names, properties), already in
        (person, ts, uuid) order; with `spec.history`, `Frame.history` holds the matching rows
        before `spec.lo` with the same person codes."""
        wanted = self._wanted(spec.events)
        frame = self._select(select_rows(self.ts, self.event, spec.lo, spec.hi, wanted), spec)
        if spec.history and spec.lo is not None:
            if spec.props:
                before = select_rows(self.ts, self.event, None, spec.lo, wanted)
            else:
                # Without property filters "had a matching event before lo" only needs each
                # person's first event of each name (the earliest one, if any, is before lo).
                first = self.first_rows()
                before = first[
                    select_rows(self.ts[first], self.event[first], None, spec.lo, wanted)
                ]
            frame.history = self._select(before, spec)
        return frame

    def first_rows(self) -> np.ndarray:
        """Rows (ascending) that are the first of their (person, event name): a small index
        built on first use and kept with the bucket."""
        with self._lock:
            if self._first is None:
                key = self.person.astype(np.int64) * (int(self.event.max(initial=0)) + 1)
                _, first = np.unique(key + self.event, return_index=True)
                self._first = np.sort(first)
            return self._first

    def _wanted(self, events: frozenset[str] | None) -> np.ndarray:
        """Event-code lookup table: True for the codes of `events` (all codes if None)."""
        top = self.event_top
        if events is None:
            return np.ones(top, bool)
        codes = EVENT_NAMES.known(sorted(events))
        lut = np.zeros(top, bool)
        lut[codes[codes < top]] = True  # codes past `top` are names this bucket never saw
        return lut

    def _select(self, rows: np.ndarray, spec: LoadSpec) -> Frame:
        props = {}
        for key in spec.props:
            column = self.prop(key)
            props[key] = PropColumn(column.codes[rows], column.values)
        return Frame(
            ts=self.ts[rows],
            event=self.event[rows],
            event_names=EVENT_NAMES.names(),
            person=self.person[rows],
            n_persons=self.n_persons,
            props=props,
            person_ids=self.person_ids,
        )


@dataclass
class Rows:
    """Rows of some files in file order: ts (µs), event codes (EVENT_NAMES), person codes into
    `person_ids`, and `uuids()` to read the uuid column only when ties need it."""

    ts: np.ndarray
    event: np.ndarray
    person: np.ndarray
    person_ids: pa.Array
    uuids: Callable[[], pa.Array]


def read_rows(paths: Sequence[str]) -> Rows:
    """Read the columns every query needs from `paths`, in file order."""
    con = connection()
    with parquet(con, paths) as relation:
        table = _arrow(con, f"SELECT epoch_us(timestamp) AS ts, event, person_id FROM {relation}")
    names = pc.dictionary_encode(table.column("event").combine_chunks())
    persons = pc.dictionary_encode(table.column("person_id").combine_chunks())
    return Rows(
        ts=table.column("ts").to_numpy().astype(np.int64),
        event=EVENT_NAMES.codes(names.dictionary.to_pylist())[
            names.indices.to_numpy(zero_copy_only=False)
        ],
        person=persons.indices.to_numpy(zero_copy_only=False).astype(np.int64),
        person_ids=persons.dictionary,
        uuids=lambda: _uuids(paths),
    )


def build_bucket(paths: Sequence[str]) -> ResidentBucket:
    """Read every row of `paths` (one bucket's data files) and sort it by (person, ts, uuid)."""
    started = time.perf_counter()
    rows = read_rows(paths)
    # The uuid (the reference's tie order) is read only if some person has equal timestamps.
    order = person_order(rows.person, rows.ts, rows.uuids)
    return ResidentBucket(
        paths=tuple(paths),
        ts=rows.ts[order],
        event=rows.event[order],
        person=rows.person[order],
        person_ids=rows.person_ids,
        order=order_codes(order),
        build_s=time.perf_counter() - started,
    )


def order_codes(order: np.ndarray) -> np.ndarray:
    """A row permutation in the narrowest type that holds it."""
    return order.astype(np.int32 if order.size < 2**31 else np.int64)


def _arrow(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> pa.Table:
    result: pa.Table = con.sql(sql, params=params or []).to_arrow_table()
    return result


def _uuids(paths: Sequence[str]) -> pa.Array:
    con = connection()  # the calling thread's (the lazy call may come later)
    with parquet(con, paths) as relation:
        table = _arrow(con, f"SELECT uuid FROM {relation}")
    column: pa.Array = table.column("uuid").combine_chunks()
    return column


def concat_frames(frames: list[Frame]) -> Frame:
    """Frames of different buckets as one (person codes offset; dictionaries concatenated)."""
    if len(frames) == 1:
        return frames[0]
    offsets = np.cumsum([0] + [f.n_persons for f in frames[:-1]])
    props: dict[PropKey, PropColumn] = {}
    for key in frames[0].props:
        codes: list[np.ndarray] = []
        values: list[Any] = []
        for f in frames:
            column = f.props[key]
            shifted = column.codes.astype(np.int64)
            shifted[shifted >= 0] += len(values)
            codes.append(shifted)
            values.extend(column.values)
        props[key] = PropColumn(np.concatenate(codes), values)
    ids = [f.person_ids for f in frames if f.person_ids is not None]
    history = [f.history for f in frames]
    out = Frame(
        ts=np.concatenate([f.ts for f in frames]),
        event=np.concatenate([f.event for f in frames]),
        event_names=max((f.event_names for f in frames), key=len),
        person=np.concatenate([f.person + off for f, off in zip(frames, offsets, strict=True)]),
        n_persons=sum(f.n_persons for f in frames),
        props=props,
        person_ids=pa.concat_arrays(ids) if len(ids) == len(frames) else None,
    )
    if all(h is not None for h in history):
        hs = [h for h in history if h is not None]
        merged = concat_frames(hs)
        merged.person_ids = out.person_ids
        out.history = merged
    return out

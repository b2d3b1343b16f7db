"""Per-person delta refresh of a sub-task's partial (issue 14 item 2, ADR 0008).

Every kernel's partial is a sum over persons (a person's events all live in one bucket, and
each kernel's `compute` is a per-person fold followed by additions). After a commit that only
*added* files to a sub-task's buckets, the persons whose partial contribution can change are
those with a new row the kernel reads; so

    new partial = old partial - contribution(P, old rows) + contribution(P, new rows)

where both contributions are the kernel's own `compute` over a frame restricted to the persons
P (all of their rows, before and after the commit): the resident bucket already holds every row
in (person, ts, uuid) order, persons contiguous, so P's rows are a few index ranges and the old
version's rows are those not read from the added files (`ResidentBucket.order` maps a row to its
file-order position).

`subtract_add` is exact or gives up (None, and the caller recomputes the sub-task):
- integer counts, histograms and matrices subtract exactly;
- value lists (exact quantiles, funnel conversion times) are multisets: the old contribution's
  values are removed one occurrence each;
- minima / maxima cannot be subtracted: the old minimum stands when the persons removed did not
  hold it, and the new contribution's minimum stands when it is at most the old one; otherwise
  the slot's answer is unknown and the sub-task recomputes;
- an entry the old contribution had and the new one lacks that ends empty: trends cells are
  dropped (trends keeps only cells with events, as `compute` does); any other kind recomputes.
Float sums (`sum`/`avg` of a property) subtract in floating point: equal to a fresh compute
within the engine's usual tolerance (the merge order of partials already differs from the
reference's summation order); `MAX_CHAIN` bounds how many deltas stack before a full recompute.

Files removed between the versions (person merges, compaction, deletions and rewrites) make the
old file set no subset of the new one: then there is no delta and the sub-task recomputes.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from eventlens.query.parallel.frame import Frame, LoadSpec, PropColumn
from eventlens.query.parallel.kernels import AnyKernel, KernelParams
from eventlens.query.parallel.kernels.cells import Cells
from eventlens.query.parallel.kernels.compiled import select_rows
from eventlens.query.parallel.kernels.funnels import StepStats
from eventlens.query.parallel.kernels.retention import Partial as RetentionCells
from eventlens.query.parallel.partials import BASE_PREFIX
from eventlens.query.parallel.planner import SubTask
from eventlens.query.parallel.resident import EVENT_NAMES, ResidentBucket
from eventlens.storage.event_table import Snapshot

DELTA_FORMAT = 1
# Deltas stacked on one partial before it is recomputed from scratch (bounds float drift).
MAX_CHAIN = 64


@dataclass(frozen=True)
class Base:
    """What the store keeps per (kernel, params, person buckets): the partial's key, the file
    sets of the buckets it was computed over, and how many deltas it already carries."""

    key: str
    buckets: tuple[tuple[str, ...], ...]
    chain: int = 0


def params_digest(params_text: str) -> str:
    """A short stand-in for the params' text in base keys (hashed once per plan)."""
    return hashlib.sha256(params_text.encode()).hexdigest()


def base_key(kernel: str, params_digest: str, task: SubTask) -> str:
    """The key of a sub-task's `Base` record: what it computes (`params_digest` of the params'
    text), over which person buckets, without the files (those are what a delta follows)."""
    parts = [f"delta-base/{DELTA_FORMAT}", kernel, params_digest, repr(tuple(task.buckets))]
    return BASE_PREFIX + hashlib.sha256("\n".join(parts).encode()).hexdigest()


_FILE_ROWS: weakref.WeakKeyDictionary[Snapshot, dict[str, int]] = weakref.WeakKeyDictionary()


def file_rows(snapshot: Snapshot) -> dict[str, int]:
    """Rows per data file path of `snapshot` (memoised per snapshot)."""
    found = _FILE_ROWS.get(snapshot)
    if found is None:
        found = _FILE_ROWS[snapshot] = {f.path: f.rows for f in snapshot.files}
    return found


@dataclass
class Touched:
    """One bucket's part of a delta: the restricted frames before and after, and how many
    persons they hold."""

    old: Frame
    new: Frame
    persons: int


def _wanted(events: frozenset[str] | None) -> np.ndarray:
    """Event-code lookup table over the process-wide dictionary (not the bucket's highest
    code: that is a pass over every row of a freshly extended bucket)."""
    names = EVENT_NAMES.names()
    if events is None:
        return np.ones(len(names), bool)
    lut = np.zeros(len(names), bool)
    lut[EVENT_NAMES.known(sorted(events))] = True
    return lut


def touched_rows(
    bucket: ResidentBucket, added: set[str], rows_of: Mapping[str, int]
) -> np.ndarray | None:
    """Positions (ascending) of the bucket's rows read from the files `added`; None when a
    file's row count is unknown."""
    read = bucket.read_paths or bucket.paths
    try:
        counts = np.array([rows_of[p] for p in read], np.int64)
    except KeyError:
        return None
    if int(counts.sum()) != bucket.rows:
        return None
    flags = np.array([p in added for p in read], bool)
    k = len(read) - int(np.argmin(flags[::-1])) if not flags.all() else 0
    if flags[k:].all() and not flags[:k].any():
        # The extension case (new files read last): one comparison per row.
        start = int(counts[:k].sum())
        return np.flatnonzero(bucket.order >= start)
    ends = np.cumsum(counts)
    file_of = np.searchsorted(ends, bucket.order.astype(np.int64), side="right")
    return np.flatnonzero(flags[file_of])


def restrict(
    bucket: ResidentBucket, spec: LoadSpec, added: set[str], rows_of: Mapping[str, int]
) -> Touched | None:
    """The frames (old rows, all rows) of the persons with a row from `added` that `spec`
    reads (in its range, or before it when it reads history). None when rows cannot be told
    apart by file."""
    fresh = touched_rows(bucket, added, rows_of)
    if fresh is None:
        return None
    wanted = _wanted(spec.events)
    ts, ev = bucket.ts[fresh], bucket.event[fresh]
    read = select_rows(ts, ev, spec.lo, spec.hi, wanted)
    if spec.history and spec.lo is not None:
        read = np.union1d(read, select_rows(ts, ev, None, spec.lo, wanted))
    persons = np.unique(bucket.person[fresh[read]])
    # Persons are contiguous and ascending in a resident bucket: their rows are index ranges.
    lo = np.searchsorted(bucket.person, persons, side="left")
    hi = np.searchsorted(bucket.person, persons, side="right")
    lengths = hi - lo
    starts = np.cumsum(lengths) - lengths  # where each person's run starts in `rows`
    rows = np.repeat(lo - starts, lengths) + np.arange(int(lengths.sum()))
    # The old version's rows: all of theirs but those read from the added files.
    keep = np.ones(rows.size, bool)
    at = np.searchsorted(rows, fresh)
    hit = at < rows.size
    hit[hit] = rows[at[hit]] == fresh[hit]
    keep[at[hit]] = False
    ids = bucket.person_ids.take(pa.array(persons))
    return Touched(
        old=_frame(bucket, spec, wanted, rows[keep], persons, ids),
        new=_frame(bucket, spec, wanted, rows, persons, ids),
        persons=int(persons.size),
    )


def _frame(
    bucket: ResidentBucket,
    spec: LoadSpec,
    wanted: np.ndarray,
    within: np.ndarray,
    persons: np.ndarray,
    ids: pa.Array,
) -> Frame:
    """`ResidentBucket.frame(spec)` restricted to the rows `within` (every row of the persons
    `persons`, ascending), with person codes renumbered 0..len(persons)-1."""
    ts, ev = bucket.ts[within], bucket.event[within]
    rows = within[select_rows(ts, ev, spec.lo, spec.hi, wanted)]
    frame = _select(bucket, spec, rows, persons, ids)
    if spec.history and spec.lo is not None:
        if spec.props:
            before = within[select_rows(ts, ev, None, spec.lo, wanted)]
        else:
            # As ResidentBucket.frame: each person's first row of each event name suffices.
            key = bucket.person[within].astype(np.int64) * (wanted.size + 1) + ev
            _, first = np.unique(key, return_index=True)
            first = np.sort(first)
            before = within[first[select_rows(ts[first], ev[first], None, spec.lo, wanted)]]
        frame.history = _select(bucket, spec, before, persons, ids)
    return frame


def _select(
    bucket: ResidentBucket, spec: LoadSpec, rows: np.ndarray, persons: np.ndarray, ids: pa.Array
) -> Frame:
    props = {}
    for key in spec.props:
        column = bucket.prop(key)
        codes = column.codes[rows].astype(np.int64)
        # Only the values these rows use: kernels evaluate filters and labels per distinct
        # value, and the bucket's dictionary is far larger than a few persons' rows need.
        used, compact = np.unique(codes, return_inverse=True)
        if used.size and used[0] < 0:
            used, compact = used[1:], compact - 1
        props[key] = PropColumn(compact.reshape(-1), [column.values[i] for i in used.tolist()])
    return Frame(
        ts=bucket.ts[rows],
        event=bucket.event[rows],
        event_names=EVENT_NAMES.names(),
        person=np.searchsorted(persons, bucket.person[rows]).astype(np.int64),
        n_persons=int(persons.size),
        props=props,
        person_ids=ids,
    )


class Unknown(Exception):
    """The delta cannot give the exact partial (the caller recomputes)."""


Extremes = tuple[bool, bool]  # (minimum read, maximum read)


def subtract_add(
    have: Any, gone: Any, came: Any, reads: Mapping[Any, Extremes] | None = None
) -> Any | None:
    """`have` - `gone` + `came` for any kernel's partial, exactly; None when that is not
    determined by the three (see the module docstring). `reads`: per top-level key (a trends
    series), whether its answer reads the cells' minimum / maximum; one that is not read is
    carried as the bound min(have, came) / max(have, came) instead of giving up."""
    try:
        return _combine(have, gone, came, (True, True), reads)
    except Unknown:
        return None


def _combine(
    have: Any,
    gone: Any,
    came: Any,
    ext: Extremes = (True, True),
    reads: Mapping[Any, Extremes] | None = None,
) -> Any:
    if have is None and gone is None:
        return came
    if have is None:
        raise Unknown("removed an entry that is not there")
    if isinstance(have, dict) or isinstance(gone, dict) or isinstance(came, dict):
        return _dicts(have or {}, gone or {}, came or {}, ext, reads)
    if isinstance(have, Cells) or isinstance(gone, Cells) or isinstance(came, Cells):
        return _cells(have, gone, came, ext)
    if isinstance(have, StepStats) or isinstance(gone, StepStats) or isinstance(came, StepStats):
        return _steps(have, gone, came)
    if isinstance(have, RetentionCells):
        return RetentionCells(
            _array(
                have.sizes,
                None if gone is None else gone.sizes,
                None if came is None else came.sizes,
            ),
            _array(
                have.matrix,
                None if gone is None else gone.matrix,
                None if came is None else came.matrix,
            ),
        )
    if isinstance(have, np.ndarray):
        # Bare arrays: stickiness histograms, lifecycle's status rows (dormant is negative).
        return _array(have, gone, came, counts=False)
    raise Unknown(type(have).__name__)


def _array(
    have: np.ndarray, gone: np.ndarray | None, came: np.ndarray | None, *, counts: bool = True
) -> np.ndarray:
    """have - gone + came; with `counts` (never negative) a negative result means `gone` was
    not part of `have`: no exact answer."""
    out = have.copy()
    if gone is not None:
        out = out - gone
    if came is not None:
        out = out + came
    if counts and out.dtype.kind in "iu" and bool((out < 0).any()):
        raise Unknown("negative count")  # the old contribution was not part of `have`
    return out


def _empty(value: Any) -> bool:
    if isinstance(value, Cells):
        return not value.events.any()
    if isinstance(value, StepStats):
        return not value.counts.any() and not value.spans and not value.entered
    if isinstance(value, RetentionCells):
        return not value.sizes.any() and not value.matrix.any()
    if isinstance(value, np.ndarray):
        return not value.any()
    return False


def _dicts(
    have: dict[Any, Any],
    gone: dict[Any, Any],
    came: dict[Any, Any],
    ext: Extremes,
    reads: Mapping[Any, Extremes] | None,
) -> dict[Any, Any]:
    out = dict(have)
    for key in set(gone) | set(came):
        if key in gone and key not in have:
            raise Unknown("removed an entry that is not there")
        sub = ext if reads is None else reads.get(key, ext)
        value = _combine(have.get(key), gone.get(key), came.get(key), sub)
        if key in gone and key not in came and not isinstance(value, dict) and _empty(value):
            if not isinstance(value, Cells):
                raise Unknown("an entry emptied: would a fresh compute keep it?")
            out.pop(key, None)  # trends keeps only cells with events
            continue
        out[key] = value
    return out


def _cells(have: Cells, gone: Cells | None, came: Cells | None, ext: Extremes) -> Cells:
    events = _array(
        have.events, None if gone is None else gone.events, None if came is None else came.events
    )
    count = _array(
        have.count, None if gone is None else gone.count, None if came is None else came.count
    )
    total = have.total.copy()
    if gone is not None:
        total = total - gone.total
    if came is not None:
        total = total + came.total
    rest_empty = (have.events - (0 if gone is None else gone.events)) == 0
    # An extreme the math does not read is carried as a bound (gone ignored), never refused.
    low = _extreme(
        have.low,
        None if gone is None or not ext[0] else gone.low,
        None if came is None else came.low,
        np.minimum,
        1,
        rest_empty,
    )
    high = _extreme(
        have.high,
        None if gone is None or not ext[1] else gone.high,
        None if came is None else came.high,
        np.maximum,
        -1,
        rest_empty,
    )
    lists = None
    if have.lists is not None:
        lists = [
            [
                _multiset(
                    _flat(have.lists[j]),
                    _flat(gone.lists[j]) if gone is not None and gone.lists else None,
                    _flat(came.lists[j]) if came is not None and came.lists else None,
                )
            ]
            for j in range(len(have.lists))
        ]
    return Cells(events, count, total, low, high, lists)


def _extreme(
    have: np.ndarray,
    gone: np.ndarray | None,
    came: np.ndarray | None,
    pick: Callable[[np.ndarray, np.ndarray], np.ndarray],
    sign: int,
    left_empty: np.ndarray,
) -> np.ndarray:
    """Per slot, the min (sign 1) / max (sign -1) of (have minus gone) plus came. The rest's
    extreme is `have`'s when `gone` did not hold it (or nothing was removed); else it is
    unknown, which only `came` reaching at least as far can settle (or nothing being left:
    `left_empty`, slots whose rows were all removed, hold no value)."""
    if gone is None:
        return have if came is None else pick(have, came)
    empty = np.inf * sign
    held = (gone * sign <= have * sign) & (have != empty)  # the removed persons held the extreme
    reach = came if came is not None else np.full_like(have, empty)
    # A slot with no rows left has no values left: its rest is empty, known.
    settled = ~held | (reach * sign <= have * sign) | left_empty
    if not bool(settled.all()):
        raise Unknown("an extreme was removed")
    rest = np.where(held, empty, have)
    return pick(rest, reach)


def _steps(have: StepStats, gone: StepStats | None, came: StepStats | None) -> StepStats:
    counts = _array(
        have.counts, None if gone is None else gone.counts, None if came is None else came.counts
    )
    times = [
        list(
            _multiset(
                np.asarray(have.times[s], np.float64),
                None if gone is None else np.asarray(gone.times[s], np.float64),
                None if came is None else np.asarray(came.times[s], np.float64),
            ).tolist()
        )
        for s in range(len(have.times))
    ]
    # The funnel views' parts: time_to_convert samples (a multiset), trends per-bucket counts.
    spans = _multiset(
        np.asarray(have.spans, np.float64),
        None if gone is None else np.asarray(gone.spans, np.float64),
        None if came is None else np.asarray(came.spans, np.float64),
    ).tolist()
    entered = _counts(
        have.entered, None if gone is None else gone.entered, None if came is None else came.entered
    )
    converted = _counts(
        have.converted,
        None if gone is None else gone.converted,
        None if came is None else came.converted,
    )
    return StepStats(counts, times, spans, entered, converted)


def _counts(
    have: dict[int, int], gone: dict[int, int] | None, came: dict[int, int] | None
) -> dict[int, int]:
    """have - gone + came per key (zeros dropped); a negative count: `gone` was not in `have`."""
    out = dict(have)
    for key, v in (gone or {}).items():
        out[key] = out.get(key, 0) - v
    for key, v in (came or {}).items():
        out[key] = out.get(key, 0) + v
    if any(v < 0 for v in out.values()):
        raise Unknown("removed a count that is not there")
    return {k: v for k, v in out.items() if v}


def _flat(parts: Sequence[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.zeros(0, np.float64)
    return np.concatenate([np.asarray(p, np.float64) for p in parts])


def _multiset(have: np.ndarray, gone: np.ndarray | None, came: np.ndarray | None) -> np.ndarray:
    out = np.sort(have)
    if gone is not None and gone.size:
        values, counts = np.unique(out, return_counts=True)
        g_values, g_counts = np.unique(gone, return_counts=True)
        at = np.searchsorted(values, g_values)
        if bool((at >= values.size).any()):
            raise Unknown("removed a value that is not there")
        if not bool((values[at] == g_values).all()) or bool((counts[at] < g_counts).any()):
            raise Unknown("removed a value that is not there")
        counts[at] -= g_counts
        out = np.repeat(values, counts)
    if came is not None and came.size:
        out = np.sort(np.concatenate([out, came]))
    return out


def refresh(
    kernel: AnyKernel,
    params: KernelParams,
    old: Any,
    touched: Sequence[Touched],
    concat: Callable[[list[Frame]], Frame],
) -> Any | None:
    """The partial after the commit from the one before (`old`) and the touched persons'
    frames of each bucket; None when the delta cannot be exact."""
    live = [t for t in touched if t.persons]
    if not live:
        return old
    gone = kernel.compute(params, concat([t.old for t in live]))
    came = kernel.compute(params, concat([t.new for t in live]))
    return subtract_add(old, gone, came, _extremes_read(params))


_READS_LOW = frozenset({"min", "min_count_per_actor"})
_READS_HIGH = frozenset({"max", "max_count_per_actor"})


def _extremes_read(params: KernelParams) -> dict[Any, Extremes] | None:
    """Per trends series index: does its math read the cells' minimum / maximum (trends.
    cell_value)? None for other kernels (then every extreme counts as read)."""
    nq = getattr(params, "nq", None)
    series = getattr(getattr(nq, "query", None), "series", None)
    if getattr(nq, "kind", None) != "TrendsQuery" or not isinstance(series, list):
        return None
    return {i: (node.math in _READS_LOW, node.math in _READS_HIGH) for i, node in enumerate(series)}

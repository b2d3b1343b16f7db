"""Retention kernel: per partition, cohort sizes and a cohort x period matrix of returners.

M[c, p] = persons of cohort c with a return event in period p; the merge is a sum because each
person lives in exactly one partition. finish reads values[k] = M[c, c + k] (k > 0). With a
breakdown, one (sizes, matrix) per value, each over the rows carrying that value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from eventlens.query.dates import Buckets, interval_start, make_buckets, shift, to_us
from eventlens.query.model import RetentionQuery
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.parallel.frame import (
    Frame,
    LoadSpec,
    bucket_index,
    distinct_keys,
    first_per_person,
)
from eventlens.query.parallel.kernels import Kernel
from eventlens.query.parallel.kernels.common import (
    breakdown_labels,
    event_names,
    keys_of,
    person_set,
)
from eventlens.query.parallel.kernels.compiled import retention_cells
from eventlens.query.posthog_fields import retention_breakdown
from eventlens.query.semantics.actors import RetentionCell, folds
from eventlens.query.semantics.retention import breakdown_rows, cohort_rows, cumulative

_CHUNK_CELLS = 4_000_000  # persons x periods per dense block (bounded memory)
MAX_COMPILED_PERIODS = 62  # periods as bits of an int64 per person


@dataclass
class Partial:
    sizes: np.ndarray  # (T,)
    matrix: np.ndarray  # (T, T)


Partials = dict[str | None, Partial]  # per breakdown value; None without a breakdown


@dataclass(frozen=True)
class Params:
    nq: NormalisedQuery[RetentionQuery]
    spec: LoadSpec
    periods: Buckets


def prepare(nq: NormalisedQuery[RetentionQuery], earliest_us: int | None) -> Params:
    q = nq.query
    rf = q.retentionFilter
    last = interval_start(nq.date_to, nq.interval, nq.week_start)
    first = shift(last, nq.interval, -(rf.totalIntervals - 1))
    periods = make_buckets(first, to_us(shift(last, nq.interval, 1)), nq.interval, nq.week_start)
    first_time = rf.retentionType == "retention_first_time"
    keys = keys_of(q.properties, rf.targetEntity.properties, rf.returningEntity.properties)
    breakdown = retention_breakdown(q.breakdownFilter)
    if breakdown is not None:
        keys.add((breakdown[1], breakdown[0]))
    spec = LoadSpec(
        lo=periods.starts_us[0],
        hi=periods.end_us,
        events=event_names([rf.targetEntity.id, rf.returningEntity.id]),
        props=tuple(sorted(keys)),
        ordered=True,  # per-person passes (compiled.retention_cells)
        history=first_time,  # first-ever start event: who started before the range
    )
    return Params(nq, spec, periods)


def compute(params: Params, frame: Frame) -> Partials:
    """Cells per breakdown value (key None without a breakdown): with a breakdown, the
    retention of each value runs over the rows carrying it, as the reference does."""
    q = params.nq.query
    rf = q.retentionFilter
    if len(frame) == 0:
        return {}
    base = frame.match(q.properties)
    target = base & frame.node_mask(rf.targetEntity.id, rf.targetEntity.properties)
    back = base & frame.node_mask(rf.returningEntity.id, rf.returningEntity.properties)
    period = bucket_index(frame.ts, params.periods.starts_us, params.periods.end_us)
    breakdown = retention_breakdown(q.breakdownFilter)
    if breakdown is None:
        return {None: _cells(params, frame, target, back, period, None)}
    key, kind = breakdown
    ids, names = breakdown_labels(frame, key, kind)
    out: Partials = {}
    for i, name in enumerate(names):
        carries = ids == i
        if (target & carries).any():
            out[name] = _cells(params, frame, target & carries, back & carries, period, name)
    return out


def _cells(
    params: Params,
    frame: Frame,
    target: np.ndarray,
    back: np.ndarray,
    period: np.ndarray,
    value: str | None,
) -> Partial:
    """Cohort sizes and returners over the rows `target` (start) and `back` (return) select;
    `value`: the breakdown value they carry (a first-time start before the range counts only
    with that value), None without a breakdown."""
    q = params.nq.query
    rf = q.retentionFilter
    t = len(params.periods)
    first_time = rf.retentionType == "retention_first_time"
    excluded = _started_before(params, frame, value)
    back = _counted_returns(frame, back, period, t, rf.minimumOccurrences or 1, rf.cumulative)
    if t <= MAX_COMPILED_PERIODS:
        start = np.where(target, np.where(period >= 0, period, -2), -1)
        sizes, matrix = retention_cells(
            frame.person, start, np.where(back, period, -1), t, first_time, excluded
        )
        return Partial(sizes, matrix)
    return _dense(frame, target, back, period, t, first_time, excluded)


def _started_before(params: Params, frame: Frame, value: str | None) -> np.ndarray:
    """Per person code (first-time retention only, else all False): a start event before the
    range (with breakdown value `value`), so the person's first-ever one is not in range."""
    q = params.nq.query
    rf = q.retentionFilter
    if rf.retentionType != "retention_first_time":
        return np.zeros(frame.n_persons, bool)
    bd = retention_breakdown(q.breakdownFilter)

    def started(h: Frame) -> np.ndarray:
        mask = np.asarray(
            h.match(q.properties) & h.node_mask(rf.targetEntity.id, rf.targetEntity.properties),
            dtype=bool,
        )
        if bd is not None:
            ids, names = breakdown_labels(h, *bd)
            mask &= ids == (names.index(value) if value in names else -1)
        return mask

    return frame.seen_before(started)


def retention_actors(params: Params, frame: Frame, cell: RetentionCell) -> np.ndarray:
    """Person codes of this partition behind one retention number (semantics.actors.
    RetentionCell): the cohort's members, or those of them returning at the interval."""
    q = params.nq.query
    rf = q.retentionFilter
    if len(frame) == 0:
        return np.zeros(0, np.int64)
    base = frame.match(q.properties)
    target = base & frame.node_mask(rf.targetEntity.id, rf.targetEntity.properties)
    back = base & frame.node_mask(rf.returningEntity.id, rf.returningEntity.properties)
    period = bucket_index(frame.ts, params.periods.starts_us, params.periods.end_us)
    groups: list[tuple[np.ndarray, np.ndarray, str | None]] = [(target, back, None)]
    breakdown = retention_breakdown(q.breakdownFilter)
    if breakdown is not None and cell.breakdown is not None:
        ids, names = breakdown_labels(frame, *breakdown)
        groups = [
            (target & (ids == i), back & (ids == i), name)
            for i, name in enumerate(names)
            if folds(name, cell.breakdown, cell.kept)
        ]
    parts = [_cell_persons(params, frame, t, b, period, v, cell) for t, b, v in groups]
    return person_set(np.concatenate(parts), frame.n_persons) if parts else np.zeros(0, np.int64)


def _cell_persons(
    params: Params,
    frame: Frame,
    target: np.ndarray,
    back: np.ndarray,
    period: np.ndarray,
    value: str | None,
    cell: RetentionCell,
) -> np.ndarray:
    rf = params.nq.query.retentionFilter
    t = len(params.periods)
    c, k = cell.cohort, cell.interval
    rows = np.flatnonzero(target)
    if rf.retentionType == "retention_first_time":
        first = first_per_person(frame, rows)
        first = first[~_started_before(params, frame, value)[frame.person[first]]]
        members = person_set(frame.person[first[period[first] == c]], frame.n_persons)
    else:
        members = person_set(frame.person[rows[period[rows] == c]], frame.n_persons)
    if k == 0:
        return members
    lo, hi = c + k, (t if rf.cumulative else c + k + 1)
    r = np.flatnonzero(back & (period >= lo) & (period < hi))
    keys, counts = np.unique(frame.person[r] * t + period[r], return_counts=True)
    returned = person_set((keys // t)[counts >= (rf.minimumOccurrences or 1)], frame.n_persons)
    out: np.ndarray = np.intersect1d(members, returned, assume_unique=True)
    return out


def _counted_returns(
    frame: Frame, back: np.ndarray, period: np.ndarray, t: int, least: int, cumulative: bool | None
) -> np.ndarray:
    """The return rows that count. minimumOccurrences: only periods where the person has at
    least `least` return rows. cumulative: only the person's latest such period (finish turns
    "latest return in c + k" into "returned in c + k or later" by suffix sums). A person's rows
    all lie in one partition, so per-partition is per-person."""
    if least <= 1 and not cumulative:
        return back
    rows = np.flatnonzero(back & (period >= 0))
    out = np.zeros(back.shape, bool)
    if rows.size == 0:
        return out
    person, where = frame.person[rows], period[rows]
    if least > 1:
        keys = person * t + where
        if keys.size < 2 or bool((keys[1:] >= keys[:-1]).all()):
            # Rows in (person, ts) order: equal keys are adjacent, counted in O(n).
            _, counts = distinct_keys(keys)
            per_row = np.repeat(counts, counts)
        else:
            _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
            per_row = counts[inverse]
        enough = per_row >= least
        rows, person, where = rows[enough], person[enough], where[enough]
    if cumulative and rows.size:
        latest = np.full(frame.n_persons, -1, np.int64)
        np.maximum.at(latest, person, where)
        rows = rows[where == latest[person]]
    out[rows] = True
    return out


def _dense(
    frame: Frame,
    target: np.ndarray,
    back: np.ndarray,
    period: np.ndarray,
    t: int,
    first_time: bool,
    excluded: np.ndarray,
) -> Partial:
    """More periods than a bit mask holds: person x period blocks multiplied (numpy)."""
    out = Partial(np.zeros(t, np.int64), np.zeros((t, t), np.int64))
    rows = np.flatnonzero(target)
    if first_time:
        first = first_per_person(frame, rows)
        first = first[~excluded[frame.person[first]] & (period[first] >= 0)]
        s_person, s_period = frame.person[first], period[first]
    else:
        rows = rows[period[rows] >= 0]
        pairs, _ = distinct_keys(frame.person[rows] * t + period[rows])
        s_person, s_period = pairs // t, pairs % t
    out.sizes = np.bincount(s_period, minlength=t).astype(np.int64)
    r_rows = np.flatnonzero(back & (period >= 0))
    r_person, r_period = frame.person[r_rows], period[r_rows]
    members, _ = distinct_keys(s_person)
    if members.size == 0:
        return out
    slot = np.full(frame.n_persons, -1, np.int64)
    slot[members] = np.arange(members.size)
    keep = slot[r_person] >= 0
    r_slot, r_period = slot[r_person[keep]], r_period[keep]
    s_slot = slot[s_person]
    step = max(1, _CHUNK_CELLS // max(t, 1))
    for lo in range(0, members.size, step):
        hi = min(lo + step, members.size)
        cohort_m = np.zeros((hi - lo, t), np.float64)
        return_m = np.zeros((hi - lo, t), np.float64)
        s_in = (s_slot >= lo) & (s_slot < hi)
        cohort_m[s_slot[s_in] - lo, s_period[s_in]] = 1.0
        r_in = (r_slot >= lo) & (r_slot < hi)
        return_m[r_slot[r_in] - lo, r_period[r_in]] = 1.0
        out.matrix += np.rint(cohort_m.T @ return_m).astype(np.int64)
    return out


def merge(partials: list[Partials]) -> Partials:
    out: Partials = {}
    for part in partials:
        for value, cells in part.items():
            have = out.get(value)
            out[value] = (
                cells
                if have is None
                else Partial(have.sizes + cells.sizes, have.matrix + cells.matrix)
            )
    return out


def finish(
    params: Params, merged: Partials, rerun: Callable[[Params], Partials]
) -> list[dict[str, Any]]:
    q = params.nq.query
    starts = params.periods.starts
    bf = q.breakdownFilter
    if retention_breakdown(bf) is None:
        t = len(starts)
        cells = merged.get(None) or Partial(np.zeros(t, np.int64), np.zeros((t, t), np.int64))
        return cohort_rows(q, starts, _rows(q, cells))
    assert bf is not None
    per_value = {v: _rows(q, c) for v, c in merged.items() if v is not None and c.sizes.any()}
    return breakdown_rows(q, starts, per_value, bf.breakdown_limit)


def _rows(q: RetentionQuery, merged: Partial) -> list[list[int]]:
    """Per cohort c: [size, M[c, c + 1], M[c, c + 2] ...], made cumulative if asked."""
    total = merged.sizes.shape[0]
    cells = []
    for c in range(total):
        later = [int(merged.matrix[c, c + k]) for k in range(1, total - c)]
        cumulated = cumulative(later) if q.retentionFilter.cumulative else later
        cells.append([int(merged.sizes[c]), *cumulated])
    return cells


KERNEL = Kernel("retention", prepare, compute, merge, finish)

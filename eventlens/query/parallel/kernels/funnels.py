"""Funnels kernel: per partition, step counts and exact conversion-time lists per breakdown value.

Step and exclusion matching is vectorised (one bit per step per row); the per-person attempt
logic (re-anchoring, strict, unordered matching, exclusions, attribution) is a Python loop over
each person's (time, step, uuid)-ordered rows, a line-by-line port of the reference's rules
(insights.md "Funnels"), run only for persons who matched a first step. Conversion times are
kept as exact lists, so medians after the merge are exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eventlens.query import deadline
from eventlens.query.dates import Buckets, to_us
from eventlens.query.model import FunnelsQuery, PropertyGroup
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.parallel.frame import Frame, LoadSpec
from eventlens.query.parallel.kernels import Kernel
from eventlens.query.parallel.kernels.common import (
    breakdown_labels,
    event_names,
    keys_of,
    person_set,
    range_buckets,
)
from eventlens.query.parallel.kernels.funnel_ordered import ordered_funnels
from eventlens.query.semantics.actors import FunnelCell, folds
from eventlens.query.semantics.filters import NULL_BREAKDOWN, OTHER_BREAKDOWN, rank_values
from eventlens.query.semantics.funnels import (
    WINDOW_SECONDS,
    max_step_matching,
    opens_in,
    step_rows,
    time_to_convert_result,
    trends_result,
    view_steps,
)


@dataclass
class StepStats:
    """counts[s] = persons whose furthest step >= s; times[s] = their conversion times (s)."""

    counts: np.ndarray
    times: list[list[float]] = field(default_factory=list)
    # The time_to_convert view: every converted person's from -> to time (an exact multiset:
    # the bins need the global min and max, so they are made in finish). The trends view:
    # per bucket (keyed by its start, µs: stable when a `date_from = all` range grows), persons
    # entered (reached `from`) and converted (reached `to`).
    spans: list[float] = field(default_factory=list)
    entered: dict[int, int] = field(default_factory=dict)
    converted: dict[int, int] = field(default_factory=dict)

    @classmethod
    def empty(cls, n: int) -> StepStats:
        return cls(np.zeros(n, np.int64), [[] for _ in range(n)])

    def add(self, level: int, step_ts: Sequence[int]) -> None:
        self.counts[:level] += 1
        for s in range(1, level):
            self.times[s].append((step_ts[s] - step_ts[s - 1]) / 1e6)

    def merge(self, other: StepStats) -> StepStats:
        return StepStats(
            self.counts + other.counts,
            [a + b for a, b in zip(self.times, other.times, strict=True)],
            self.spans + other.spans,
            _add_counts(self.entered, other.entered),
            _add_counts(self.converted, other.converted),
        )


def _add_counts(a: dict[int, int], b: dict[int, int]) -> dict[int, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out


Partial = dict[str | None, StepStats]


@dataclass(frozen=True)
class Params:
    nq: NormalisedQuery[FunnelsQuery]
    spec: LoadSpec
    window_us: int
    buckets: Buckets | None = None  # the trends view's intervals


def prepare(nq: NormalisedQuery[FunnelsQuery], earliest_us: int | None) -> Params:
    q = nq.query
    ff = q.funnelsFilter
    window = ff.funnelWindowInterval * WINDOW_SECONDS[ff.funnelWindowIntervalUnit] * 1_000_000
    keys = keys_of(
        q.properties, *(n.properties for n in q.series), *(x.properties for x in ff.exclusions)
    )
    bf = q.breakdownFilter
    if bf is not None and isinstance(bf.breakdown, str):
        keys.add((bf.breakdown_type, bf.breakdown))
    strict = ff.funnelOrderType == "strict"
    names = [n.event for n in q.series] + [x.event for x in ff.exclusions]
    spec = LoadSpec(
        # Every step's event must lie inside the date range, not only step 1.
        lo=nq.floor_us if nq.date_from is None else to_us(nq.date_from),
        hi=nq.end_us,
        # strict: any event of the person can break an attempt, so every event is read.
        events=None if strict else event_names(names),
        props=tuple(sorted(keys)),
        ordered=True,
    )
    buckets = range_buckets(nq, earliest_us) if ff.funnelVizType == "trends" else None
    return Params(nq, spec, window, buckets)


@dataclass
class _Person:
    """One person's rows in (ts, uuid) order: time, step bits, exclusion bits, label, rank."""

    ts: list[int]
    bits: list[int]
    excl: list[int]
    labels: list[str]


def _lowest_bit(bits: int, n: int) -> int:
    return (bits & -bits).bit_length() - 1 if bits else n


def _ordered(
    ts: list[int], bits: list[int], n: int, window: int, strict: bool, opens: list[bool] | None
) -> list[int]:
    attempts: list[list[int]] = []  # each: indices of the events filling steps 0..
    active: list[list[int]] = []  # attempts still able to advance
    for k, (t, b) in enumerate(zip(ts, bits, strict=True)):
        still = []
        for a in active:
            if t - ts[a[0]] > window:
                # Past the window it can never advance (non-strict) or breaks (strict): inert.
                continue
            if (b >> len(a)) & 1:
                a.append(k)
            elif strict:
                continue  # the very next event was not the next step: broken for good
            if len(a) < n:
                still.append(a)
        active = still
        if b & 1 and (opens is None or opens[k]):
            a = [k]
            attempts.append(a)
            if n > 1:
                active.append(a)
    best: list[int] = []
    for a in attempts:  # the first of equal maxima: the earliest attempt supplies the timings
        if len(a) > len(best):
            best = a
    return best


def _unordered(
    ts: list[int],
    bits: list[int],
    rank: list[int],
    n: int,
    window: int,
    opens: list[bool] | None,
) -> tuple[list[int], dict[int, int]]:
    best: list[int] = []
    best_map: dict[int, int] = {}
    ts_arr = np.asarray(ts)
    for k, b in enumerate(bits):
        if not b or (opens is not None and not opens[k]):
            continue
        lo = int(np.searchsorted(ts_arr, ts[k], side="left"))
        hi = int(np.searchsorted(ts_arr, ts[k] + window, side="right"))
        inside = [x for x in range(lo, hi) if bits[x]]
        assignment = max_step_matching(
            [(x, [s for s in range(n) if (bits[x] >> s) & 1]) for x in inside], n
        )
        if len(assignment) > len(best):  # strictly better: earlier anchors win ties
            best = sorted(assignment.values(), key=lambda x: (ts[x], rank[x]))
            best_map = assignment
    return best, best_map


def _person_result(
    q: FunnelsQuery,
    p: _Person,
    idx: list[int],
    window: int,
    opens: Callable[[int], bool] | None = None,
) -> tuple[list[int], dict[int, int]] | None:
    """(event indices of the steps reached, step -> event index) or None if excluded.
    `idx` selects the person's rows (in (ts, uuid) order) the funnel runs over; `opens` (a
    timestamp predicate) limits which events may open an attempt (the trends view)."""
    n = len(q.series)
    # Equal timestamps: earlier steps first, so steps at one instant can follow each other.
    order = sorted(idx, key=lambda k: (p.ts[k], _lowest_bit(p.bits[k], n), k))
    ts = [p.ts[k] for k in order]
    bits = [p.bits[k] for k in order]
    ff = q.funnelsFilter
    may_open = None if opens is None else [opens(t) for t in ts]
    if ff.funnelOrderType == "unordered":
        steps_local, by_local = _unordered(ts, bits, order, n, window, may_open)
    else:
        strict = ff.funnelOrderType == "strict"
        steps_local = _ordered(ts, bits, n, window, strict, may_open)
        by_local = dict(enumerate(steps_local))
    steps = [order[k] for k in steps_local]
    if steps and ff.exclusions and _excluded(q, p, steps, idx, window):
        return None
    return steps, {s: order[k] for s, k in by_local.items()}


def _excluded(q: FunnelsQuery, p: _Person, steps: list[int], idx: list[int], window: int) -> bool:
    level = len(steps)
    anchor = p.ts[steps[0]]
    for e, ex in enumerate(q.funnelsFilter.exclusions):
        i, j = ex.funnelFromStep, ex.funnelToStep
        if level <= i:
            continue
        lo = p.ts[steps[i]]
        reached_j = level > j
        hi = p.ts[steps[j]] if reached_j else anchor + window
        for k in idx:
            if not (p.excl[k] >> e) & 1:
                continue
            t = p.ts[k]
            if (lo < t < hi) if reached_j else (lo < t <= hi):
                return True
    return False


@dataclass
class _Scan:
    """One partition's rows that pass the global filters, as the funnel reads them (row order
    kept: (person, ts, uuid)): person codes, µs, step bits, exclusion bits, breakdown label ids
    (None without a breakdown) and the label names."""

    person: np.ndarray
    ts: np.ndarray
    bits: np.ndarray
    excl: np.ndarray
    ids: np.ndarray | None
    names: list[str]
    n_persons: int


def _scan(params: Params, frame: Frame) -> _Scan | None:
    q = params.nq.query
    ff = q.funnelsFilter
    if len(frame) == 0:
        return None
    rows = np.flatnonzero(frame.match(q.properties))
    if rows.size == 0:
        return None
    # No property filter (or one every row passes): the frame's columns as they are.
    every = rows.size == len(frame)

    def take(column: np.ndarray) -> np.ndarray:
        return column if every else column[rows]

    if all(_unfiltered(node.properties) for node in q.series):
        bits = take(frame.event_bits([node.event for node in q.series]))
    else:
        bits = np.zeros(rows.size, np.int64)
        for s, node in enumerate(q.series):
            bits[take(frame.node_mask(node.event, node.properties))] |= 1 << s
    excl = np.zeros(rows.size, np.int64)
    for e, ex in enumerate(ff.exclusions):
        excl[take(frame.node_mask(ex.event, ex.properties))] |= 1 << e
    bf = q.breakdownFilter
    ids: np.ndarray | None = None
    names: list[str] = []
    if bf is not None and isinstance(bf.breakdown, str):
        ids, names = breakdown_labels(frame, bf.breakdown, bf.breakdown_type)
        ids = take(ids)
    return _Scan(take(frame.person), take(frame.ts), bits, excl, ids, names, frame.n_persons)


def _fast(q: FunnelsQuery) -> bool:
    """Can the compiled ordered pass (funnel_ordered) compute this funnel?"""
    ff = q.funnelsFilter
    return (
        ff.funnelOrderType == "ordered"
        and not ff.exclusions
        and ff.breakdownAttributionType != "all_events"
    )


def compute(params: Params, frame: Frame) -> Partial:
    q = params.nq.query
    n = len(q.series)
    out: Partial = {}
    scan = _scan(params, frame)
    if scan is None:
        return out
    view = q.funnelsFilter.funnelVizType
    if view != "steps":
        return {None: _views(params, scan)}
    if _fast(q):
        return _vectorised(params, q, scan.person, scan.ts, scan.bits, scan.ids, scan.names)
    for value, steps, p, _ in _per_person(params, scan):
        _add(out, value, n, steps, p)
    return out


def _per_person(
    params: Params, scan: _Scan
) -> Iterator[tuple[str | None, list[int], _Person, int]]:
    """(breakdown value, the best attempt's step rows, the person's rows, person code) of each
    person (each person and value, for all_events attribution) who reached step 1 and was not
    excluded; without a breakdown also those who reached no step are left out."""
    q = params.nq.query
    ff = q.funnelsFilter
    person, bits, excl, ids, names = scan.person, scan.bits, scan.excl, scan.ids, scan.names
    labels = [names[i] for i in ids.tolist()] if ids is not None else None
    attribution = ff.breakdownAttributionType
    # Persons who can reach step 1: a first-step event (ordered) or any step event (unordered).
    opener = bits != 0 if ff.funnelOrderType == "unordered" else (bits & 1) == 1
    candidates = np.zeros(scan.n_persons, bool)
    candidates[person[opener]] = True
    starts = np.flatnonzero(np.r_[True, person[1:] != person[:-1]])
    ends = np.r_[starts[1:], person.size]
    ts_all = scan.ts.tolist()
    bits_all, excl_all = bits.tolist(), excl.tolist()
    for count, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        code = int(person[a])
        if not candidates[code]:
            continue
        if count % 2048 == 0:
            deadline.check()
        p = _Person(
            ts_all[a:b],
            bits_all[a:b],
            excl_all[a:b],
            labels[a:b] if labels is not None else [],
        )
        everything = list(range(b - a))
        if labels is None:
            r = _person_result(q, p, everything, params.window_us)
            if r is not None:
                yield None, r[0], p, code
            continue
        if attribution == "all_events":
            # The funnel is evaluated per value over the person's events carrying that value.
            for value in dict.fromkeys(p.labels):
                subset = [k for k in everything if p.labels[k] == value]
                r = _person_result(q, p, subset, params.window_us)
                if r is not None and r[0]:
                    yield value, r[0], p, code
            continue
        r = _person_result(q, p, everything, params.window_us)
        if r is None or not r[0]:
            continue
        if attribution == "step":
            k = r[1].get(ff.breakdownAttributionValue or 0)
            value = p.labels[k] if k is not None else NULL_BREAKDOWN
        else:
            # first_touch / last_touch: the earliest / latest funnel event that has a value.
            touched = [k for k in everything if p.bits[k]]
            if attribution == "last_touch":
                touched.reverse()
            value = next(
                (p.labels[k] for k in touched if p.labels[k] != NULL_BREAKDOWN), NULL_BREAKDOWN
            )
        yield value, r[0], p, code


def funnel_actors(params: Params, frame: Frame, cell: FunnelCell) -> np.ndarray:
    """Person codes of this partition behind one funnel number (semantics.actors.FunnelCell),
    from the same per-person levels the counts come from."""
    q = params.nq.query
    scan = _scan(params, frame)
    if scan is None:
        return np.zeros(0, np.int64)
    if _fast(q):
        ff = q.funnelsFilter
        names = scan.names
        null_id = names.index(NULL_BREAKDOWN) if NULL_BREAKDOWN in names else len(names)
        level, label, chain = ordered_funnels(
            scan.person,
            scan.ts,
            scan.bits,
            len(q.series),
            params.window_us,
            scan.ids,
            null_id,
            ff.breakdownAttributionType,
            ff.breakdownAttributionValue or 0,
        )
        if level.size == 0:
            return np.zeros(0, np.int64)
        hit = level == cell.step if cell.dropped else level > cell.step
        if scan.ids is not None and cell.breakdown is not None:
            label_names = [*names, NULL_BREAKDOWN]
            ok = np.array([folds(v, cell.breakdown, cell.kept) for v in label_names], bool)
            hit &= ok[label]
        codes = person_set(scan.person[chain[0][hit]], scan.n_persons)
        return codes
    out: set[int] = set()
    for value, steps, _, code in _per_person(params, scan):
        if value is not None and not folds(value, cell.breakdown, cell.kept):
            continue
        reached = len(steps)
        if (reached == cell.step) if cell.dropped else (reached > cell.step):
            out.add(code)
    return np.array(sorted(out), np.int64)


def _unfiltered(props: Any) -> bool:
    """No property filter at all (an empty list, or an empty group)."""
    return not (props.values if isinstance(props, PropertyGroup) else props)


def _vectorised(
    params: Params,
    q: FunnelsQuery,
    person: np.ndarray,
    ts: np.ndarray,
    bits: np.ndarray,
    ids: np.ndarray | None,
    names: list[str],
) -> Partial:
    n = len(q.series)
    ff = q.funnelsFilter
    null_id = names.index(NULL_BREAKDOWN) if NULL_BREAKDOWN in names else len(names)
    level, label, chain = ordered_funnels(
        person,
        ts,
        bits,
        n,
        params.window_us,
        ids,
        null_id,
        ff.breakdownAttributionType,
        ff.breakdownAttributionValue or 0,
    )
    label_names: list[str | None] = [None] if ids is None else [*names, NULL_BREAKDOWN]
    out: Partial = {}
    if level.size == 0:
        return out
    # Persons grouped by label (one stable sort), conversion times computed once for all.
    order = np.argsort(label, kind="stable") if ids is not None else np.arange(level.size)
    groups = label[order]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    levels = level[order]
    seconds = [
        (ts[np.maximum(chain[s], 0)][order] - ts[np.maximum(chain[s - 1], 0)][order]) / 1e6
        for s in range(1, n)
    ]
    for a, e in zip(starts.tolist(), np.r_[starts[1:], groups.size].tolist(), strict=True):
        lv = levels[a:e]
        stats = StepStats.empty(n)
        for s in range(n):
            reached = lv > s
            stats.counts[s] = int(np.count_nonzero(reached))
            if s:
                stats.times[s] = seconds[s - 1][a:e][reached].tolist()
        key = label_names[int(groups[a])] if ids is not None else None
        out[key] = stats if key not in out else out[key].merge(stats)
    return out


def _add(out: Partial, value: str | None, n: int, steps: list[int], p: _Person) -> None:
    stats = out.get(value)
    if stats is None:
        stats = out[value] = StepStats.empty(n)
    stats.add(len(steps), [p.ts[k] for k in steps])


def merge(partials: list[Partial]) -> Partial:
    out: Partial = {}
    for part in partials:
        for value, stats in part.items():
            have = out.get(value)
            out[value] = stats if have is None else have.merge(stats)
    return out


def _steps_output(q: FunnelsQuery, stats: StepStats, breakdown: str | None) -> list[dict[str, Any]]:
    n = len(q.series)
    counts = [int(stats.counts[s]) for s in range(n)]
    return step_rows(q, counts, [stats.times[s] if s else [] for s in range(n)], breakdown)


def _views(params: Params, scan: _Scan) -> StepStats:
    """One partition's time_to_convert spans or trends counts (no breakdown: those views refuse
    one). A person's rows all lie in one partition, so per-person results add up exactly."""
    q = params.nq.query
    lo, hi = view_steps(q)
    stats = StepStats.empty(len(q.series))
    buckets = params.buckets
    if buckets is None:  # time_to_convert: the best attempt of each person reaching `to`
        for _, steps, p, _ in _per_person(params, scan):
            if len(steps) > hi:
                stats.spans.append((p.ts[steps[hi]] - p.ts[steps[lo]]) / 1e6)
        return stats
    unordered = q.funnelsFilter.funnelOrderType == "unordered"
    opener = scan.bits != 0 if unordered else (scan.bits & 1) == 1
    starts = np.flatnonzero(np.r_[True, scan.person[1:] != scan.person[:-1]])
    ends = np.r_[starts[1:], scan.person.size]
    ts_all, bits_all, excl_all = scan.ts.tolist(), scan.bits.tolist(), scan.excl.tolist()
    for count, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        if not opener[a:b].any():
            continue
        if count % 2048 == 0:
            deadline.check()
        p = _Person(ts_all[a:b], bits_all[a:b], excl_all[a:b], [])
        periods = {
            buckets.index_of(t) for t, o in zip(p.ts, opener[a:b].tolist(), strict=True) if o
        }
        everything = list(range(b - a))
        for period in sorted(x for x in periods if x is not None):
            r = _person_result(q, p, everything, params.window_us, opens_in(buckets, period))
            if r is not None and len(r[0]) > lo:
                start = buckets.starts_us[period]
                stats.entered[start] = stats.entered.get(start, 0) + 1
                if len(r[0]) > hi:
                    stats.converted[start] = stats.converted.get(start, 0) + 1
    return stats


def finish(params: Params, merged: Partial, rerun: Callable[[Params], Partial]) -> Any:
    q = params.nq.query
    n = len(q.series)
    view = q.funnelsFilter.funnelVizType
    if view != "steps":
        stats = merged.get(None) or StepStats.empty(n)
        if params.buckets is None:
            return time_to_convert_result(q, stats.spans)
        starts = params.buckets.starts_us
        return trends_result(
            params.buckets,
            [stats.entered.get(t, 0) for t in starts],
            [stats.converted.get(t, 0) for t in starts],
        )
    bf = q.breakdownFilter
    if bf is None or not isinstance(bf.breakdown, str):
        return _steps_output(q, merged.get(None) or StepStats.empty(n), None)
    finals = {v: float(st.counts[n - 1]) for v, st in merged.items() if v is not None}
    kept, folded = rank_values(finals, bf.breakdown_limit)  # ranked by final-step count
    rows = [_steps_output(q, merged[v], v) for v in kept]
    if NULL_BREAKDOWN in merged:
        rows.append(_steps_output(q, merged[NULL_BREAKDOWN], NULL_BREAKDOWN))
    if folded:
        other = StepStats.empty(n)
        for v in sorted(folded):
            other = other.merge(merged[v])
        rows.append(_steps_output(q, other, OTHER_BREAKDOWN))
    return rows


KERNEL = Kernel("funnels", prepare, compute, merge, finish)

"""Trends kernel: per partition, mergeable cells per (series, breakdown value, bucket).

Breakdown ranking, the limit and "other" folding happen in `finish`, after the merge. Folding
is additive for event counts and property values; for distinct-person maths (dau, rolling
actives) and per-actor maths it is not (one person may carry several folded values), so
`finish` then runs a second pass with the kept values known and reads "other" from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from eventlens.query.dates import Buckets, to_us
from eventlens.query.model import COUNT_PER_ACTOR_MATHS, PROPERTY_MATHS, EventsNode, TrendsQuery
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.parallel.frame import Frame, LoadSpec, bucket_index, first_per_person
from eventlens.query.parallel.kernels import Kernel
from eventlens.query.parallel.kernels.cells import Cells, group_cells
from eventlens.query.parallel.kernels.common import (
    event_names,
    keys_of,
    person_set,
    range_buckets,
    trends_labels,
)
from eventlens.query.parallel.kernels.compiled import count_distinct_cells
from eventlens.query.semantics.actors import TrendsCell, folds
from eventlens.query.semantics.breakdowns import breakdown_keys, is_multiple
from eventlens.query.semantics.buckets import axis, quantile
from eventlens.query.semantics.filters import (
    OTHER_BREAKDOWN,
    as_number,
    rank_values,
)
from eventlens.query.semantics.trends import QUANTILES, ROLLING_DAYS
from eventlens.query.semantics.trends_shape import finish_trends, is_aggregated

DISTINCT_MATHS = ("dau", *ROLLING_DAYS)

Partial = dict[int, dict[str | None, Cells]]  # series index -> breakdown label -> cells


@dataclass(frozen=True)
class Params:
    nq: NormalisedQuery[TrendsQuery]
    spec: LoadSpec
    buckets: Buckets
    # Per series: (lo exclusive, hi inclusive) µs per bucket for rolling maths, else None.
    windows: tuple[tuple[tuple[int, int], ...] | None, ...]
    series: tuple[int, ...]
    # Second pass: per computed series, the kept breakdown values (the rest fold into "other").
    kept: tuple[frozenset[str], ...] | None = None


def _wall_days(d: datetime, days: int) -> int:
    # Local wall time shifted by calendar days (DST-aware), exactly as the reference computes it.
    shifted = (d.replace(tzinfo=None) + timedelta(days=days)).replace(tzinfo=d.tzinfo)
    return to_us(shifted)


def _mode(math: str) -> str:
    if math in DISTINCT_MATHS:
        return "distinct"
    if math in COUNT_PER_ACTOR_MATHS:
        return "actor"
    if math in PROPERTY_MATHS:
        return "value"
    return "count"  # total; first_time_for_user (one first event per person)


def _needs_lists(math: str) -> bool:
    return math in QUANTILES or math == "median_count_per_actor"


def prepare(nq: NormalisedQuery[TrendsQuery], earliest_us: int | None) -> Params:
    q = nq.query
    buckets = range_buckets(nq, earliest_us)
    lo: int | None = buckets.starts_us[0]
    hi = buckets.end_us
    windows: list[tuple[tuple[int, int], ...] | None] = []
    ordered = history = False
    for node in q.series:
        if node.math in ROLLING_DAYS:
            n = ROLLING_DAYS[node.math]
            w = tuple((_wall_days(s, -(n - 1)), _wall_days(s, 1)) for s in buckets.starts)
            windows.append(w)
            if lo is not None:
                lo = min(lo, min(a for a, _ in w) + 1)
            hi = max(hi, max(b for _, b in w) + 1)
        else:
            windows.append(None)
        if node.math == "first_time_for_user":
            history = True  # the first-ever matching event: who matched before the range
            ordered = True
    keys = keys_of(q.properties, *(n.properties for n in q.series))
    for node in q.series:
        if node.math in PROPERTY_MATHS and node.math_property:
            keys.add(("event", node.math_property))
    for key, kind in breakdown_keys(q.breakdownFilter) or []:
        keys.add((kind, key))
    spec = LoadSpec(
        lo=lo,
        hi=hi,
        events=event_names(n.event for n in q.series),
        props=tuple(sorted(keys)),
        ordered=ordered,
        history=history,
    )
    return Params(nq, spec, buckets, tuple(windows), tuple(range(len(q.series))))


def _has_breakdown(q: TrendsQuery) -> bool:
    return breakdown_keys(q.breakdownFilter) is not None


def compute(params: Params, frame: Frame) -> Partial:
    q = params.nq.query
    out: Partial = {}
    if len(frame) == 0:
        return out
    base = frame.match(q.properties)
    starts, end = params.buckets.starts_us, params.buckets.end_us
    n_buckets = len(starts)
    # Slot n_buckets is the whole range (for ranking); aggregated displays of rolling maths add
    # slot n_buckets + 1, the union of the windows.
    aggregated = is_aggregated(q)
    labels: tuple[np.ndarray, list[str]] | None = None
    keys = breakdown_keys(q.breakdownFilter)
    if keys is not None:
        labels = trends_labels(frame, keys, is_multiple(q.breakdownFilter))
    b_all: np.ndarray | None = None
    # Series counting events or persons over the same rows (a total and a dau of one event:
    # the common pair) share one pass: rows, labels and both counts at once.
    one_pass: dict[Any, tuple[np.ndarray, np.ndarray, list[str | None]] | None] = {}
    for pos, i in enumerate(params.series):
        node = q.series[i]
        kept_values = None if params.kept is None else params.kept[pos]
        if (
            params.windows[i] is None
            and _mode(node.math) in ("count", "distinct")
            and (node.math != "first_time_for_user")
        ):
            key = (node.event, repr(node.properties), kept_values)
            if key not in one_pass:
                if b_all is None:
                    b_all = bucket_index(frame.ts, starts, end)
                rows = np.flatnonzero(base & frame.node_mask(node.event, node.properties))
                one_pass[key] = _count_and_distinct(
                    frame, rows, labels, kept_values, b_all, n_buckets
                )
            counted = one_pass[key]
            if counted is not None:
                events, distinct, shared_names = counted
                count = distinct if _mode(node.math) == "distinct" else events
                out[i] = _cells_of(events, count, shared_names, n_buckets + 1)
                continue
        rows = np.flatnonzero(base & frame.node_mask(node.event, node.properties))
        if node.math == "first_time_for_user":
            rows = first_per_person(frame, rows)  # only the first-ever matching event counts
            seen = frame.seen_before(_matcher(q, node))
            rows = rows[~seen[frame.person[rows]]]  # first-ever event before the scan: not it
        ts = frame.ts[rows]
        names: list[str | None]
        if labels is None:
            g = np.zeros(rows.size, np.int64)
            names = [None]
        else:
            g, label_names = labels[0][rows], list(labels[1])
            if params.kept is not None:
                kept = params.kept[pos]
                folded = [v if v in kept else OTHER_BREAKDOWN for v in label_names]
                uniq = sorted(set(folded))
                remap = np.array([uniq.index(v) for v in folded], dtype=np.int64)
                g = remap[g] if g.size else g
                label_names = uniq
            names = list(label_names)
        if b_all is None:  # one bucket index for every series over the same rows
            b_all = bucket_index(frame.ts, starts, end)
        b = b_all[rows]
        inr = np.flatnonzero(b >= 0)
        windows = params.windows[i]
        range_slot = windows is None
        if windows is None:
            sel, slot = inr, b[inr]  # the whole-range slot is derived (group_cells range_slot)
        else:
            parts, slot_parts = [], []
            for j, (lo, hi) in enumerate(windows):
                idx = np.flatnonzero((ts > lo) & (ts <= hi))
                parts.append(idx)
                slot_parts.append(np.full(idx.size, j, np.int64))
            parts.append(inr)
            slot_parts.append(np.full(inr.size, n_buckets, np.int64))
            if aggregated:  # slot n+1: the union of every bucket's window (PostHog's total)
                idx = np.flatnonzero((ts > windows[0][0]) & (ts <= windows[-1][1]))
                parts.append(idx)
                slot_parts.append(np.full(idx.size, n_buckets + 1, np.int64))
            sel, slot = np.concatenate(parts), np.concatenate(slot_parts)
        # Every row of the frame, in order (the common case: the scan already kept only this
        # series' event): read the columns as they are instead of gathering them.
        picked = rows[sel]
        # Rolling windows repeat rows (one event lies in several windows): never "every row",
        # even when the repeats happen to add up to the frame's length.
        every = windows is None and picked.size == len(frame)
        values = None
        if node.math in PROPERTY_MATHS:
            assert node.math_property is not None
            column = frame.props[("event", node.math_property)]
            numbers = column.lookup(_number, dtype=np.float64)
            values = numbers if every else numbers[picked]
        cells = group_cells(
            g if every else g[sel],
            slot,
            len(names),
            n_buckets + (2 if aggregated and windows is not None else 1),
            mode=_mode(node.math),
            persons=frame.person if every else frame.person[picked],
            n_persons=frame.n_persons,
            values=values,
            with_lists=_needs_lists(node.math),
            range_slot=range_slot,
        )
        out[i] = {name: c for name, c in zip(names, cells, strict=True) if c.events.any()}
    return out


def _count_and_distinct(
    frame: Frame,
    rows: np.ndarray,
    labels: tuple[np.ndarray, list[str]] | None,
    kept: frozenset[str] | None,
    b_all: np.ndarray,
    n_buckets: int,
) -> tuple[np.ndarray, np.ndarray, list[str | None]] | None:
    """(events, distinct persons) per (label, slot) cell over `rows`, slot n_buckets the whole
    range, and the label names; None when the frame is not in person order."""
    names: list[str | None]
    if labels is None:
        codes, lut, names = np.zeros(0, np.int64), np.zeros(1, np.int64), [None]
    else:
        codes, label_names = labels[0], list(labels[1])
        if kept is not None:  # the second pass: values not kept fold into "other"
            folded = [v if v in kept else OTHER_BREAKDOWN for v in label_names]
            uniq = sorted(set(folded))
            lut = np.array([uniq.index(v) for v in folded], dtype=np.int64)
            names = list(uniq)
        else:
            lut, names = np.arange(len(label_names), dtype=np.int64), list(label_names)
    got = count_distinct_cells(rows, codes, lut, b_all, frame.person, len(names), n_buckets + 1)
    return None if got is None else (got[0], got[1], names)


def _cells_of(
    events: np.ndarray, count: np.ndarray, names: list[str | None], n_slots: int
) -> dict[str | None, Cells]:
    """Cells per label (the "count" / "distinct" shape of group_cells), empty labels left out.
    Rows of the two arrays are views and the unused fields one shared array each: a long-tail
    breakdown has thousands of labels, and Cells are never changed in place (merge copies)."""
    by_group = events.reshape(len(names), n_slots)
    counts = count.reshape(len(names), n_slots)
    total = np.zeros(n_slots, np.float64)
    low, high = np.full(n_slots, np.inf), np.full(n_slots, -np.inf)
    return {
        names[g]: Cells(events=by_group[g], count=counts[g], total=total, low=low, high=high)
        for g in np.flatnonzero(by_group.any(axis=1)).tolist()
    }


def _number(is_set: bool, value: Any) -> float:
    number = as_number(value) if is_set else None
    return np.nan if number is None else float(number)


def _matcher(q: TrendsQuery, node: EventsNode) -> Callable[[Frame], np.ndarray]:
    def matches(h: Frame) -> np.ndarray:
        out: np.ndarray = h.match(q.properties) & h.node_mask(node.event, node.properties)
        return out

    return matches


def merge(partials: list[Partial]) -> Partial:
    out: Partial = {}
    for part in partials:
        for i, by_label in part.items():
            target = out.setdefault(i, {})
            for label, cells in by_label.items():
                have = target.get(label)
                target[label] = cells if have is None else have.merge(cells)
    return out


def cell_value(math: str, c: Cells, j: int) -> float | int:
    """The series math of slot j, from merged cells (the reference's `cell`)."""
    mode = _mode(math)
    if mode in ("count", "distinct"):
        return int(c.count[j])
    n = int(c.count[j])
    if mode == "actor":
        if n == 0:
            return 0
        if math == "avg_count_per_actor":
            return float(c.total[j]) / n
        if math == "min_count_per_actor":
            return int(c.low[j])
        if math == "max_count_per_actor":
            return int(c.high[j])
        return quantile(_values(c, j), 0.5)
    if n == 0:
        return 0.0
    if math == "sum":
        return float(c.total[j])
    if math == "avg":
        return float(c.total[j]) / n
    if math == "min":
        return float(c.low[j])
    if math == "max":
        return float(c.high[j])
    return quantile(_values(c, j), QUANTILES[math])


def _values(c: Cells, j: int) -> list[float]:
    assert c.lists is not None
    parts = c.lists[j]
    if not parts:
        return []
    return [float(x) for x in np.concatenate(parts).tolist()]


def _row(index: int, node: EventsNode, data: list[Any], buckets: Buckets) -> dict[str, Any]:
    return {
        "label": node.custom_name or node.event or "All events",
        "series_index": index,
        "math": node.math,
        "event": node.event,
        "custom_name": node.custom_name,
        **axis(buckets),
        "data": data,
        "count": sum(data),  # the sum over buckets, also for dau (as in PostHog)
    }


def _data(math: str, c: Cells | None, n_buckets: int) -> list[Any]:
    if c is None:
        return [
            cell_value(math, Cells.empty(n_buckets + 1, _needs_lists(math)), j)
            for j in range(n_buckets)
        ]
    return [cell_value(math, c, j) for j in range(n_buckets)]


def _series_rows(
    params: Params, i: int, by_label: dict[str | None, Cells], rerun: Callable[[Params], Partial]
) -> list[dict[str, Any]]:
    q = params.nq.query
    node = q.series[i]
    n = len(params.buckets)
    bf = q.breakdownFilter
    if bf is None or breakdown_keys(bf) is None:
        cells = by_label.get(None)
        return [_with_total(q, _row(i, node, _data(node.math, cells, n), params.buckets), cells, n)]
    in_range = {v: c for v, c in by_label.items() if v is not None and c.events[n] > 0}
    kept, folded = rank_values(
        {v: float(cell_value(node.math, c, n)) for v, c in in_range.items()},
        bf.breakdown_limit,
        rank_null=True,
    )
    order: list[str] = list(kept)  # ranked values, then null when it was ranked in
    other: Cells | None = None
    if folded:
        order.append(OTHER_BREAKDOWN)
        if _mode(node.math) in ("count", "value"):
            # Additive across values: other is the merge of every value not kept (null too).
            for v, c in by_label.items():
                if v is not None and v not in kept:
                    other = c if other is None else other.merge(c)
        else:
            second = rerun(replace(params, series=(i,), kept=(frozenset(kept),)))
            other = second.get(i, {}).get(OTHER_BREAKDOWN)
    rows = []
    for value in order:
        cells = other if value == OTHER_BREAKDOWN else by_label.get(value)
        row = _row(i, node, _data(node.math, cells, n), params.buckets)
        _with_total(q, row, cells, n)
        row["breakdown_value"] = value
        rows.append(row)
    return rows


def _with_total(q: TrendsQuery, row: dict[str, Any], c: Cells | None, n: int) -> dict[str, Any]:
    """Aggregated displays: the series math over the range, from the whole-range slot n."""
    if is_aggregated(q):
        math = row["math"]
        slot = n + 1 if math in ROLLING_DAYS else n
        empty = Cells.empty(slot + 1, _needs_lists(math))
        row["aggregated_value"] = cell_value(math, c if c is not None else empty, slot)
    return row


def finish(
    params: Params, merged: Partial, rerun: Callable[[Params], Partial]
) -> list[dict[str, Any]]:
    per_series = [_series_rows(params, i, merged.get(i, {}), rerun) for i in params.series]
    return finish_trends(params.nq, per_series, params.buckets)


def trends_actors(params: Params, frame: Frame, cell: TrendsCell) -> np.ndarray:
    """Person codes of this partition behind one trends number (semantics.actors.TrendsCell):
    the persons of the rows the cell's math reads (rolling actives: the bucket's window)."""
    q = params.nq.query
    if len(frame) == 0:
        return np.zeros(0, np.int64)
    node = q.series[cell.series]
    rows = np.flatnonzero(frame.match(q.properties) & frame.node_mask(node.event, node.properties))
    if node.math == "first_time_for_user":
        rows = first_per_person(frame, rows)
        rows = rows[~frame.seen_before(_matcher(q, node))[frame.person[rows]]]
    keys = breakdown_keys(q.breakdownFilter)
    if cell.breakdown is not None and keys is not None:
        ids, names = trends_labels(frame, keys, is_multiple(q.breakdownFilter))
        ok = np.array([folds(v, cell.breakdown, cell.kept) for v in names], bool)
        rows = rows[ok[ids[rows]]] if ok.size else rows[:0]
    buckets = params.buckets
    last = len(buckets) - 1 if cell.bucket is None else cell.bucket
    first = 0 if cell.bucket is None or cell.through else cell.bucket
    ts = frame.ts[rows]
    if node.math in ROLLING_DAYS:
        n = ROLLING_DAYS[node.math]
        lo = _wall_days(buckets.starts[first], -(n - 1))
        hi = _wall_days(buckets.starts[last], 1)
        hit = (ts > lo) & (ts <= hi)
    else:
        b = bucket_index(ts, buckets.starts_us, buckets.end_us)
        hit = (b >= first) & (b <= last)
    out = person_set(frame.person[rows[hit]], frame.n_persons)
    return out


KERNEL = Kernel("trends", prepare, compute, merge, finish)

"""Stickiness kernel: per series, a histogram of persons by number of active intervals.
Additive across partitions (each person is counted in exactly one)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from eventlens.query.dates import Buckets
from eventlens.query.model import StickinessQuery
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.parallel.frame import Frame, LoadSpec, bucket_index, distinct_keys
from eventlens.query.parallel.kernels import Kernel
from eventlens.query.parallel.kernels.common import event_names, keys_of, range_buckets
from eventlens.query.semantics.actors import StickinessCell
from eventlens.query.semantics.stickiness import criteria_of, stickiness_row

Partial = dict[int, np.ndarray]  # series index -> histogram (index n-1: active in n intervals)


@dataclass(frozen=True)
class Params:
    nq: NormalisedQuery[StickinessQuery]
    spec: LoadSpec
    buckets: Buckets


def prepare(nq: NormalisedQuery[StickinessQuery], earliest_us: int | None) -> Params:
    q = nq.query
    buckets = range_buckets(nq, earliest_us)
    spec = LoadSpec(
        lo=buckets.starts_us[0],
        hi=buckets.end_us,
        events=event_names(n.event for n in q.series),
        props=tuple(sorted(keys_of(q.properties, *(n.properties for n in q.series)))),
        ordered=False,
    )
    return Params(nq, spec, buckets)


def compute(params: Params, frame: Frame) -> Partial:
    q = params.nq.query
    n = len(params.buckets)
    out: Partial = {}
    if len(frame) == 0:
        return out
    base = frame.match(q.properties)
    b_all = bucket_index(frame.ts, params.buckets.starts_us, params.buckets.end_us)
    for i in range(len(q.series)):
        per_person = _active(params, frame, base, b_all, i)
        active = per_person[per_person > 0]
        out[i] = np.bincount(active - 1, minlength=n)[:n].astype(np.int64)
    return out


def _active(
    params: Params, frame: Frame, base: np.ndarray, b_all: np.ndarray, i: int
) -> np.ndarray:
    """Per person code: how many intervals of the range count for series i."""
    q = params.nq.query
    n = len(params.buckets)
    node = q.series[i]
    rows = np.flatnonzero(base & frame.node_mask(node.event, node.properties) & (b_all >= 0))
    pairs, events = distinct_keys(frame.person[rows] * n + b_all[rows])
    crit = criteria_of(q)
    if crit is not None:  # stickinessCriteria: only intervals with enough events count
        op, value = crit
        keep = (
            events >= value if op == "gte" else events <= value if op == "lte" else events == value
        )
        pairs = pairs[keep]
    per_person: np.ndarray = np.bincount(pairs // n, minlength=frame.n_persons)
    return per_person


def stickiness_actors(params: Params, frame: Frame, cell: StickinessCell) -> np.ndarray:
    """Person codes of this partition active in exactly (cumulative: at least) `intervals`
    intervals (semantics.actors.StickinessCell)."""
    if len(frame) == 0:
        return np.zeros(0, np.int64)
    base = frame.match(params.nq.query.properties)
    b_all = bucket_index(frame.ts, params.buckets.starts_us, params.buckets.end_us)
    per_person = _active(params, frame, base, b_all, cell.series)
    hit = per_person >= cell.intervals if cell.at_least else per_person == cell.intervals
    out: np.ndarray = np.flatnonzero(hit)
    return out


def merge(partials: list[Partial]) -> Partial:
    out: Partial = {}
    for part in partials:
        for i, hist in part.items():
            out[i] = out[i] + hist if i in out else hist.copy()
    return out


def finish(
    params: Params, merged: Partial, rerun: Callable[[Params], Partial]
) -> list[dict[str, Any]]:
    q = params.nq.query
    n = len(params.buckets)
    unit = params.nq.interval
    rows = []
    for index, node in enumerate(q.series):
        hist = merged.get(index)
        data = [int(x) for x in hist] if hist is not None else [0] * n
        rows.append(stickiness_row(q, index, node, unit, data))
    return rows


KERNEL = Kernel("stickiness", prepare, compute, merge, finish)

"""Lifecycle kernel: per partition, counts of new / returning / resurrecting / dormant per bucket.

`new` needs each person's first-ever matching event: rows from one interval before the range are
read in full, older ones only as distinct (person, event, filter values) (`LoadSpec.history`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from eventlens.query.dates import Buckets
from eventlens.query.model import LifecycleQuery
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.parallel.frame import (
    Frame,
    LoadSpec,
    bucket_index,
    distinct_keys,
    first_per_person,
)
from eventlens.query.parallel.kernels import Kernel
from eventlens.query.parallel.kernels.common import event_names, keys_of, person_set, range_buckets
from eventlens.query.semantics.actors import LifecycleCell
from eventlens.query.semantics.lifecycle import STATUSES, extended_buckets, lifecycle_rows

Partial = np.ndarray  # shape (4, buckets): rows in STATUSES order


@dataclass(frozen=True)
class Params:
    nq: NormalisedQuery[LifecycleQuery]
    spec: LoadSpec
    buckets: Buckets
    extended: Buckets  # one interval before the range, then the range's buckets


def prepare(nq: NormalisedQuery[LifecycleQuery], earliest_us: int | None) -> Params:
    q = nq.query
    buckets = range_buckets(nq, earliest_us)
    extended = extended_buckets(nq, buckets)
    node = q.series[0]
    spec = LoadSpec(
        lo=extended.starts_us[0],
        hi=buckets.end_us,
        events=event_names([node.event]),
        props=tuple(sorted(keys_of(q.properties, node.properties))),
        ordered=True,
        history=True,  # `new` needs to know who had a matching event before
    )
    return Params(nq, spec, buckets, extended)


@dataclass
class _Statuses:
    """Per active (person, extended period b) pair of one partition: its person code, b, and
    which status it gives bucket b - 1 (new / returning / resurrecting), or dormant: inactive
    in b + 1, so dormant in bucket b."""

    person: np.ndarray
    b: np.ndarray
    new: np.ndarray
    returning: np.ndarray
    resurrecting: np.ndarray
    dormant: np.ndarray


def _statuses(params: Params, frame: Frame) -> _Statuses:
    q = params.nq.query
    node = q.series[0]
    rows = np.flatnonzero(frame.match(q.properties) & frame.node_mask(node.event, node.properties))
    first = first_per_person(frame, rows)
    ext = params.extended
    m = len(ext)
    first_period = np.full(frame.n_persons, -1, np.int64)
    first_period[frame.person[first]] = bucket_index(frame.ts[first], ext.starts_us, ext.end_us)
    # A matching event before the extended range: the first-ever event is not in any period.
    first_period[
        frame.seen_before(
            lambda h: h.match(q.properties) & h.node_mask(node.event, node.properties)
        )
    ] = -1
    period = bucket_index(frame.ts[rows], ext.starts_us, ext.end_us)
    ok = period >= 0
    pairs, _ = distinct_keys(frame.person[rows[ok]] * m + period[ok])
    person, b = pairs // m, pairs % m
    # `pairs` is sorted and unique, so (person, b - 1) exists iff it is the element just before.
    # A neighbour person's pair can alias only where b = 0 / b = m - 1, and those are masked
    # below (b >= 1 for the previous period, b + 1 < m for the next one).
    adjacent = pairs[1:] == pairs[:-1] + 1
    prev_active = np.r_[False, adjacent]
    next_active = np.r_[adjacent, False]
    counted = b >= 1  # the interval before the range only classifies the first bucket
    is_new = counted & (first_period[person] == b)
    returning = counted & ~is_new & prev_active
    resurrecting = counted & ~is_new & ~prev_active
    # Active in period b, not in b + 1 (inside the range): dormant in b + 1, reported negative.
    dormant = (b + 1 < m) & ~next_active
    return _Statuses(person, b, is_new, returning, resurrecting, dormant)


def compute(params: Params, frame: Frame) -> Partial:
    n = len(params.buckets)
    out = np.zeros((4, n), np.int64)
    if len(frame) == 0:
        return out
    st = _statuses(params, frame)
    b = st.b
    np.add.at(out[0], b[st.new] - 1, 1)
    np.add.at(out[1], b[st.returning] - 1, 1)
    np.add.at(out[2], b[st.resurrecting] - 1, 1)
    np.add.at(out[3], b[st.dormant], -1)
    return out


def lifecycle_actors(params: Params, frame: Frame, cell: LifecycleCell) -> np.ndarray:
    """Person codes of this partition with lifecycle status `status` in bucket `bucket`
    (semantics.actors.LifecycleCell; dormant: the persons counted negative there)."""
    if len(frame) == 0:
        return np.zeros(0, np.int64)
    st = _statuses(params, frame)
    if cell.status == "dormant":
        hit = st.dormant & (st.b == cell.bucket)
    else:
        hit = getattr(st, cell.status) & (st.b - 1 == cell.bucket)
    out = person_set(st.person[hit], frame.n_persons)
    return out


def merge(partials: list[Partial]) -> Partial:
    return np.sum(partials, axis=0) if partials else np.zeros((4, 0), np.int64)


def finish(
    params: Params, merged: Partial, rerun: Callable[[Params], Partial]
) -> list[dict[str, Any]]:
    q = params.nq.query
    node = q.series[0]
    n = len(params.buckets)
    if merged.shape[1] != n:
        merged = np.zeros((4, n), np.int64)
    return lifecycle_rows(node, params.buckets, dict(zip(STATUSES, merged, strict=True)))


KERNEL = Kernel("lifecycle", prepare, compute, merge, finish)

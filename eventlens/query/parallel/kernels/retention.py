"""Retention kernel: per partition, cohort sizes and a cohort x period matrix of returners.

M[c, p] = persons of cohort c with a return event in period p; the merge is a sum because each
person lives in exactly one partition. finish reads values[k] = M[c, c + k] (k > 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from eventlens.query.dates import Buckets, day_label, interval_start, make_buckets, shift, to_us
from eventlens.query.model import RetentionQuery
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.parallel.frame import Frame, LoadSpec, bucket_index, distinct_keys
from eventlens.query.parallel.kernels.common import event_names, keys_of

_CHUNK_CELLS = 4_000_000  # persons x periods per dense block (bounded memory)


@dataclass
class Partial:
    sizes: np.ndarray  # (T,)
    matrix: np.ndarray  # (T, T)


@dataclass(frozen=True)
class Params:
    nq: NormalisedQuery
    spec: LoadSpec
    periods: Buckets


def prepare(nq: NormalisedQuery, earliest_us: int | None) -> Params:
    q = nq.query
    assert isinstance(q, RetentionQuery)
    rf = q.retentionFilter
    last = interval_start(nq.date_to, nq.interval, nq.week_start)
    first = shift(last, nq.interval, -(rf.totalIntervals - 1))
    periods = make_buckets(first, to_us(shift(last, nq.interval, 1)), nq.interval, nq.week_start)
    first_time = rf.retentionType == "retention_first_time"
    spec = LoadSpec(
        lo=periods.starts_us[0],
        hi=periods.end_us,
        events=event_names([rf.targetEntity.id, rf.returningEntity.id]),
        props=tuple(
            sorted(keys_of(q.properties, rf.targetEntity.properties, rf.returningEntity.properties))
        ),
        ordered=False,
        history=first_time,  # first-ever start event: who started before the range
    )
    return Params(nq, spec, periods)


def compute(params: Params, frame: Frame) -> Partial:
    q = params.nq.query
    assert isinstance(q, RetentionQuery)
    rf = q.retentionFilter
    t = len(params.periods)
    out = Partial(np.zeros(t, np.int64), np.zeros((t, t), np.int64))
    if len(frame) == 0:
        return out
    base = frame.match(q.properties)
    starts, end = params.periods.starts_us, params.periods.end_us
    target = base & frame.node_mask(rf.targetEntity.id, rf.targetEntity.properties)
    rows = np.flatnonzero(target)
    if rf.retentionType == "retention_first_time":
        # Only the period of the person's first-ever start event, if it is in range.
        first_ts = np.full(frame.n_persons, np.iinfo(np.int64).max, np.int64)
        np.minimum.at(first_ts, frame.person[rows], frame.ts[rows])
        # A start event before the range: the first-ever one is not in range.
        first_ts[
            frame.seen_before(
                lambda h: (
                    h.match(q.properties)
                    & h.node_mask(rf.targetEntity.id, rf.targetEntity.properties)
                )
            )
        ] = np.iinfo(np.int64).max
        persons = np.flatnonzero(first_ts != np.iinfo(np.int64).max)
        cohort = bucket_index(first_ts[persons], starts, end)
        s_person, s_period = persons[cohort >= 0], cohort[cohort >= 0]
    else:
        c = bucket_index(frame.ts[rows], starts, end)
        pairs, _ = distinct_keys(frame.person[rows[c >= 0]] * t + c[c >= 0])
        s_person, s_period = pairs // t, pairs % t
    out.sizes = np.bincount(s_period, minlength=t).astype(np.int64)
    back = base & frame.node_mask(rf.returningEntity.id, rf.returningEntity.properties)
    r_rows = np.flatnonzero(back)
    p = bucket_index(frame.ts[r_rows], starts, end)
    r_person, r_period = frame.person[r_rows[p >= 0]], p[p >= 0]
    # Dense person x period blocks over the persons that are in some cohort.
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


def merge(partials: list[Partial]) -> Partial:
    first = partials[0]
    return Partial(
        sum((p.sizes for p in partials[1:]), first.sizes.copy()),
        sum((p.matrix for p in partials[1:]), first.matrix.copy()),
    )


def finish(params: Params, merged: Partial, rerun: Callable[[Params], Any]) -> list[dict[str, Any]]:
    q = params.nq.query
    assert isinstance(q, RetentionQuery)
    rf = q.retentionFilter
    total = len(params.periods)
    rows = []
    for c, start in enumerate(params.periods.starts):
        values = [{"count": int(merged.sizes[c])}] + [
            {"count": int(merged.matrix[c, c + k])} for k in range(1, total - c)
        ]
        rows.append(
            {
                "date": day_label(start, params.nq.interval),
                "label": f"{rf.period} {c}",
                "values": values,
            }
        )
    return rows

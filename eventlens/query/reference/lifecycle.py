"""Lifecycle, per person (insights.md "Lifecycle")."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from eventlens.query.model import LifecycleQuery
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.semantics.actors import LifecycleCell
from eventlens.query.semantics.buckets import range_buckets
from eventlens.query.semantics.events import Event
from eventlens.query.semantics.filters import properties_match, series_matches
from eventlens.query.semantics.lifecycle import STATUSES, extended_buckets, lifecycle_rows


def _statuses(
    nq: NormalisedQuery[LifecycleQuery], events: Sequence[Event]
) -> tuple[int, list[tuple[str, int, str]]]:
    """(buckets, every (person, bucket, status)): the person's status in each bucket it has
    one (dormant: active in the previous period, not in this one)."""
    q = nq.query
    node = q.series[0]
    buckets = range_buckets(nq, events)
    # One interval before the range is read so that the first bucket can be classified.
    extended = extended_buckets(nq, buckets)
    first_ts: dict[str, int] = {}
    active: dict[str, set[int]] = defaultdict(set)  # extended index: 0 = the interval before
    for e in events:
        if not (properties_match(q.properties, e) and series_matches(node, e)):
            continue
        first_ts.setdefault(e.person_id, e.ts)  # events are time-ordered: first-ever event
        b = extended.index_of(e.ts)
        if b is not None:
            active[e.person_id].add(b)
    out: list[tuple[str, int, str]] = []
    for person, periods in active.items():
        first_period = extended.index_of(first_ts[person])
        for b in range(1, len(extended)):
            if b in periods:
                if first_period == b:
                    status = "new"  # the person's first-ever event falls in this period
                elif b - 1 in periods:
                    status = "returning"  # active in the previous period
                else:
                    status = "resurrecting"  # active before, not in the previous period
                out.append((person, b - 1, status))
            elif b - 1 in periods:
                out.append((person, b - 1, "dormant"))  # active last period, not this one
    return len(buckets), out


def run_lifecycle(
    nq: NormalisedQuery[LifecycleQuery], events: Sequence[Event]
) -> list[dict[str, Any]]:
    """Four series (new, returning, resurrecting, dormant) over the range's buckets."""
    n, statuses = _statuses(nq, events)
    data = {status: [0] * n for status in STATUSES}
    for _, b, status in statuses:
        data[status][b] += -1 if status == "dormant" else 1  # dormant is reported negative
    return lifecycle_rows(nq.query.series[0], range_buckets(nq, events), data)


def lifecycle_actors(
    nq: NormalisedQuery[LifecycleQuery], events: Sequence[Event], cell: LifecycleCell
) -> set[str]:
    """The persons of one lifecycle status in one bucket (semantics.actors.LifecycleCell);
    dormant: the persons counted negative there."""
    _, statuses = _statuses(nq, events)
    return {p for p, b, status in statuses if b == cell.bucket and status == cell.status}

"""Lifecycle, per person (insights.md "Lifecycle")."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from eventlens.query.model import LifecycleQuery
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.semantics.buckets import range_buckets
from eventlens.query.semantics.events import Event
from eventlens.query.semantics.filters import properties_match, series_matches
from eventlens.query.semantics.lifecycle import STATUSES, extended_buckets, lifecycle_rows


def run_lifecycle(
    nq: NormalisedQuery[LifecycleQuery], events: Sequence[Event]
) -> list[dict[str, Any]]:
    """Four series (new, returning, resurrecting, dormant) over the range's buckets."""
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

    data = {status: [0] * len(buckets) for status in STATUSES}
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
                data[status][b - 1] += 1
            elif b - 1 in periods:
                data["dormant"][b - 1] -= 1  # active last period, not this one: negative
    return lifecycle_rows(node, buckets, data)

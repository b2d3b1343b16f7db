"""Stickiness, per person (insights.md "Stickiness")."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from eventlens.query.model import StickinessQuery
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.semantics.buckets import range_buckets
from eventlens.query.semantics.events import Event
from eventlens.query.semantics.filters import properties_match, series_matches
from eventlens.query.semantics.stickiness import (
    counts_as_active,
    criteria_of,
    is_cumulative,
    stickiness_row,
)


def run_stickiness(
    nq: NormalisedQuery[StickinessQuery], events: Sequence[Event]
) -> list[dict[str, Any]]:
    """Per series: data[n-1] = persons active in exactly n intervals of the range (n = 1..N)."""
    q = nq.query
    buckets = range_buckets(nq, events)
    n_intervals = len(buckets)
    unit = nq.interval
    rows = []
    for index, node in enumerate(q.series):
        done: dict[tuple[str, int], int] = defaultdict(int)  # (person, interval) -> events
        for e in events:
            if properties_match(q.properties, e) and series_matches(node, e):
                b = buckets.index_of(e.ts)
                if b is not None:
                    done[(e.person_id, b)] += 1
        # An interval is active if its event count meets stickinessCriteria (default: any).
        active: dict[str, int] = defaultdict(int)  # person -> active intervals
        for (person, _), n in done.items():
            if counts_as_active(n, criteria_of(q)):
                active[person] += 1
        data = [0] * n_intervals
        for intervals in active.values():
            data[intervals - 1] += 1
        rows.append(stickiness_row(index, node, unit, data, is_cumulative(q)))
    return rows

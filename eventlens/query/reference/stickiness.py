"""Stickiness, per person (insights.md "Stickiness")."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from eventlens.query.model import StickinessQuery
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.semantics.buckets import range_buckets
from eventlens.query.semantics.events import Event
from eventlens.query.semantics.filters import properties_match, series_matches
from eventlens.query.semantics.stickiness import interval_counts, stickiness_row


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
        per_interval: dict[str, Counter[int]] = defaultdict(Counter)  # person -> events per b
        for e in events:
            if properties_match(q.properties, e) and series_matches(node, e):
                b = buckets.index_of(e.ts)
                if b is not None:
                    per_interval[e.person_id][b] += 1
        data = [0] * n_intervals
        for counts in per_interval.values():
            active = sum(1 for c in counts.values() if interval_counts(q, c))
            if active:
                data[active - 1] += 1
        rows.append(stickiness_row(q, index, node, unit, data))
    return rows

"""Stickiness, per person (insights.md "Stickiness")."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from eventlens.query.dates import Buckets
from eventlens.query.model import EventsNode, StickinessQuery
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.semantics.actors import StickinessCell
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
        data = [0] * n_intervals
        for active in _active(q, node, events, buckets).values():
            if active:
                data[active - 1] += 1
        rows.append(stickiness_row(q, index, node, unit, data))
    return rows


def _active(
    q: StickinessQuery, node: EventsNode, events: Sequence[Event], buckets: Buckets
) -> dict[str, int]:
    """Per person with a matching event in the range: the number of intervals that count."""
    per_interval: dict[str, Counter[int]] = defaultdict(Counter)  # person -> events per b
    for e in events:
        if properties_match(q.properties, e) and series_matches(node, e):
            b = buckets.index_of(e.ts)
            if b is not None:
                per_interval[e.person_id][b] += 1
    return {
        person: sum(1 for c in counts.values() if interval_counts(q, c))
        for person, counts in per_interval.items()
    }


def stickiness_actors(
    nq: NormalisedQuery[StickinessQuery], events: Sequence[Event], cell: StickinessCell
) -> set[str]:
    """The persons behind one stickiness bar (semantics.actors.StickinessCell): active in
    exactly (cumulative: at least) that many intervals."""
    q = nq.query
    buckets = range_buckets(nq, events)
    active = _active(q, q.series[cell.series], events, buckets)
    if cell.at_least:
        return {p for p, n in active.items() if n >= cell.intervals}
    return {p for p, n in active.items() if n == cell.intervals}

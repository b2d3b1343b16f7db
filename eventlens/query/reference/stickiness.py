"""Stickiness, per person (insights.md "Stickiness")."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from eventlens.query.model import EventsNode, StickinessQuery
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.reference.events import Event
from eventlens.query.semantics.buckets import range_buckets
from eventlens.query.semantics.filters import properties_match, series_matches


def run_stickiness(nq: NormalisedQuery, events: Sequence[Event]) -> list[dict[str, Any]]:
    """Per series: data[n-1] = persons active in exactly n intervals of the range (n = 1..N)."""
    q = nq.query
    assert isinstance(q, StickinessQuery)
    buckets = range_buckets(nq, events)
    n_intervals = len(buckets)
    unit = nq.interval
    rows = []
    for index, node in enumerate(q.series):
        active: dict[str, set[int]] = defaultdict(set)  # person -> distinct intervals
        for e in events:
            if properties_match(q.properties, e) and series_matches(node, e):
                b = buckets.index_of(e.ts)
                if b is not None:
                    active[e.person_id].add(b)
        data = [0] * n_intervals
        for intervals in active.values():
            data[len(intervals) - 1] += 1
        rows.append(stickiness_row(index, node, unit, data))
    return rows


def stickiness_row(index: int, node: EventsNode, unit: str, data: list[int]) -> dict[str, Any]:
    """One series' output row from its histogram (data[n-1]: persons active in n intervals);
    every engine shapes its stickiness rows with this one function."""
    n = len(data)
    return {
        "label": node.custom_name or node.event or "All events",
        "series_index": index,
        "event": node.event,
        "custom_name": node.custom_name,
        "days": list(range(1, n + 1)),
        "labels": [f"{k} {unit}{'' if k == 1 else 's'}" for k in range(1, n + 1)],
        "data": data,
        "count": sum(data),
    }

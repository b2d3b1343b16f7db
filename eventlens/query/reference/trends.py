"""Trends, in the most direct way: per series, per breakdown value, per bucket (insights.md
"Trends"). Rule names in comments refer to that section."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from eventlens.query import deadline
from eventlens.query.dates import Buckets, to_us
from eventlens.query.model import COUNT_PER_ACTOR_MATHS, EventsNode, TrendsQuery
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.semantics.actors import TrendsCell, folds
from eventlens.query.semantics.breakdowns import breakdown_keys, event_breakdown, is_multiple
from eventlens.query.semantics.buckets import axis, quantile, range_buckets
from eventlens.query.semantics.events import Event
from eventlens.query.semantics.filters import (
    OTHER_BREAKDOWN,
    as_number,
    properties_match,
    rank_values,
    series_matches,
)
from eventlens.query.semantics.trends import QUANTILES, ROLLING_DAYS
from eventlens.query.semantics.trends_shape import finish_trends, is_aggregated


def cell(node: EventsNode, events: Sequence[Event]) -> float:
    """The series math over the events of one bucket (or, for ranking, of the whole range)."""
    math = node.math
    if math == "total":
        return len(events)  # count of matching events
    if math in ("dau", "first_time_for_user", *ROLLING_DAYS):
        return len({e.person_id for e in events})  # distinct persons
    if math in COUNT_PER_ACTOR_MATHS:
        counts = list(Counter(e.person_id for e in events).values())  # events per person
        if not counts:
            return 0
        if math == "avg_count_per_actor":
            return sum(counts) / len(counts)
        if math == "min_count_per_actor":
            return min(counts)
        if math == "max_count_per_actor":
            return max(counts)
        return quantile([float(c) for c in counts], 0.5)
    # Property maths: floats of math_property; non-numeric ignored; empty -> 0.
    assert node.math_property is not None
    values = [as_number(e.properties.get(node.math_property)) for e in events]
    numbers = [v for v in values if v is not None]
    if not numbers:
        return 0.0
    if math == "sum":
        return float(sum(numbers))
    if math == "avg":
        return sum(numbers) / len(numbers)
    if math == "min":
        return min(numbers)
    if math == "max":
        return max(numbers)
    return quantile(numbers, QUANTILES[math])


def _wall_days(d: datetime, days: int) -> int:
    """Epoch µs of local wall time d shifted by `days` calendar days (DST-aware)."""
    shifted = (d.replace(tzinfo=None) + timedelta(days=days)).replace(tzinfo=d.tzinfo)
    return to_us(shifted)


def bucket_data(node: EventsNode, events: Sequence[Event], buckets: Buckets) -> list[float]:
    """One number per bucket for the series' (or one breakdown value's) events of all time."""
    if node.math in ROLLING_DAYS:
        # Rolling windows read events before date_from: window (d-(N-1)d, d+1d] per bucket start.
        n = ROLLING_DAYS[node.math]
        data: list[float] = []
        for start in buckets.starts:
            deadline.check()
            lo, hi = _wall_days(start, -(n - 1)), _wall_days(start, 1)
            data.append(len({e.person_id for e in events if lo < e.ts <= hi}))
        return data
    per_bucket: list[list[Event]] = [[] for _ in buckets.starts]
    for e in events:
        index = buckets.index_of(e.ts)
        if index is not None:
            per_bucket[index].append(e)
    return [cell(node, evs) for evs in per_bucket]


def _series_events(q: TrendsQuery, node: EventsNode, events: Sequence[Event]) -> list[Event]:
    deadline.check()
    matching = [e for e in events if properties_match(q.properties, e) and series_matches(node, e)]
    if node.math == "first_time_for_user":
        # Only each person's first-ever matching event (all time) can count.
        first: dict[str, Event] = {}
        for e in matching:
            first.setdefault(e.person_id, e)
        matching = sorted(first.values(), key=lambda e: (e.ts, e.uuid))
    return matching


def _row(index: int, node: EventsNode, data: list[float], buckets: Buckets) -> dict[str, Any]:
    label = node.custom_name or node.event or "All events"
    row: dict[str, Any] = {
        "label": label,
        "series_index": index,
        "math": node.math,
        "event": node.event,
        "custom_name": node.custom_name,
        **axis(buckets),
        "data": data,
        "count": sum(data),  # the sum over buckets, also for dau (as in PostHog)
    }
    return row


def _series_rows(
    q: TrendsQuery, index: int, node: EventsNode, events: Sequence[Event], buckets: Buckets
) -> list[dict[str, Any]]:
    matching = _series_events(q, node, events)
    bf = q.breakdownFilter
    keys = breakdown_keys(bf)
    if bf is None or keys is None:
        return [
            _with_total(
                q,
                _row(index, node, bucket_data(node, matching, buckets), buckets),
                node,
                matching,
                buckets,
            )
        ]

    multiple = is_multiple(bf)
    in_range: dict[str, list[Event]] = defaultdict(list)
    for e in matching:
        if buckets.index_of(e.ts) is not None:
            in_range[event_breakdown(e, keys, multiple)].append(e)
    # Ranked by the series aggregate over the whole range; rolling maths rank by distinct persons.
    kept, folded = rank_values(
        {v: cell(node, evs) for v, evs in in_range.items()}, bf.breakdown_limit, rank_null=True
    )
    kept_set = set(kept)

    groups: dict[str, list[Event]] = defaultdict(list)
    for e in matching:
        value = event_breakdown(e, keys, multiple)
        if value in kept_set:
            groups[value].append(e)
        elif folded:
            # Folded values, and (rolling maths) values seen only before the range, go to other.
            groups[OTHER_BREAKDOWN].append(e)
    order = list(kept)  # ranked values, then null when it was ranked in
    if folded:
        order.append(OTHER_BREAKDOWN)
    rows = []
    for value in order:
        row = _row(index, node, bucket_data(node, groups[value], buckets), buckets)
        _with_total(q, row, node, groups[value], buckets)
        row["breakdown_value"] = value
        rows.append(row)
    return rows


def _with_total(
    q: TrendsQuery, row: dict[str, Any], node: EventsNode, events: Sequence[Event], buckets: Buckets
) -> dict[str, Any]:
    """Aggregated displays: the series math over the range's events (distinct over the range)."""
    if not is_aggregated(q):
        return row
    if node.math in ROLLING_DAYS:
        # PostHog's total of rolling actives: persons in the union of every day's window.
        n = ROLLING_DAYS[node.math]
        lo, hi = _wall_days(buckets.starts[0], -(n - 1)), _wall_days(buckets.starts[-1], 1)
        row["aggregated_value"] = len({e.person_id for e in events if lo < e.ts <= hi})
    else:
        in_range = [e for e in events if buckets.index_of(e.ts) is not None]
        row["aggregated_value"] = cell(node, in_range)
    return row


def run_trends(nq: NormalisedQuery[TrendsQuery], events: Sequence[Event]) -> list[dict[str, Any]]:
    """Trends result: series rows in query order (ranked values, null, other within a series)."""
    q = nq.query
    buckets = range_buckets(nq, events)
    per_series = [_series_rows(q, i, node, events, buckets) for i, node in enumerate(q.series)]
    return finish_trends(nq, per_series, buckets)


def trends_actors(
    nq: NormalisedQuery[TrendsQuery], events: Sequence[Event], cell: TrendsCell
) -> set[str]:
    """The persons behind one trends number (semantics.actors.TrendsCell): the persons of the
    events the cell's math reads (for rolling actives: of the bucket's window)."""
    q = nq.query
    buckets = range_buckets(nq, events)
    node = q.series[cell.series]
    matching = _series_events(q, node, events)
    keys = breakdown_keys(q.breakdownFilter)
    if cell.breakdown is not None and keys is not None:
        multiple = is_multiple(q.breakdownFilter)
        matching = [
            e
            for e in matching
            if folds(event_breakdown(e, keys, multiple), cell.breakdown, cell.kept)
        ]
    last = len(buckets) - 1 if cell.bucket is None else cell.bucket
    first = 0 if cell.bucket is None or cell.through else cell.bucket
    if node.math in ROLLING_DAYS:
        n = ROLLING_DAYS[node.math]
        # The union of the windows of the buckets selected (one bucket: its own window).
        lo, hi = _wall_days(buckets.starts[first], -(n - 1)), _wall_days(buckets.starts[last], 1)
        return {e.person_id for e in matching if lo < e.ts <= hi}
    out: set[str] = set()
    for e in matching:
        index = buckets.index_of(e.ts)
        if index is not None and first <= index <= last:
            out.add(e.person_id)
    return out

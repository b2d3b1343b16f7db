"""Retention, per person (insights.md "Retention")."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from eventlens.query.dates import Buckets, interval_start, make_buckets, shift, to_us
from eventlens.query.model import RetentionEntity, RetentionQuery
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.posthog_fields import retention_breakdown
from eventlens.query.semantics.actors import RetentionCell, folds
from eventlens.query.semantics.events import Event
from eventlens.query.semantics.filters import breakdown_value, node_matches, properties_match
from eventlens.query.semantics.retention import breakdown_rows, cohort_rows


def _matches(q: RetentionQuery, entity: RetentionEntity, e: Event) -> bool:
    return properties_match(q.properties, e) and node_matches(entity.id, entity.properties, e)


def run_retention(
    nq: NormalisedQuery[RetentionQuery], events: Sequence[Event]
) -> list[dict[str, Any]]:
    """One row per cohort (oldest first): its date, label and counts for k = 0.. periods left
    (semantics.retention.cohort_rows). With a breakdown, the retention is computed per value
    over the events carrying that value, and the rows of every value follow each other."""
    q = nq.query
    periods = _periods(nq)
    breakdown = retention_breakdown(q.breakdownFilter)
    if breakdown is None:
        return cohort_rows(q, periods.starts, _cells(q, periods, events))
    key, kind = breakdown
    by_value: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        by_value[breakdown_value(e, key, kind)].append(e)
    per_value = {v: _cells(q, periods, evs) for v, evs in by_value.items()}
    # A value no one started with has no cohort (PostHog returns no rows for it).
    per_value = {v: cells for v, cells in per_value.items() if any(row[0] for row in cells)}
    assert q.breakdownFilter is not None
    return breakdown_rows(q, periods.starts, per_value, q.breakdownFilter.breakdown_limit)


def _sets(
    q: RetentionQuery, periods: Buckets, events: Sequence[Event]
) -> tuple[dict[int, set[str]], dict[int, set[str]]]:
    """(cohort c -> its members, period p -> persons returning there)."""
    rf = q.retentionFilter
    cohorts: dict[int, set[str]] = defaultdict(set)
    if rf.retentionType == "retention_first_time":
        # Only the period of the person's first-ever start event (all time), if in range.
        first_seen: dict[str, Event] = {}
        for e in events:
            if _matches(q, rf.targetEntity, e):
                first_seen.setdefault(e.person_id, e)
        for person, e in first_seen.items():
            c = periods.index_of(e.ts)
            if c is not None:
                cohorts[c].add(person)
    else:
        # Recurring: a person is in the cohort of every period with a start event.
        for e in events:
            if _matches(q, rf.targetEntity, e):
                c = periods.index_of(e.ts)
                if c is not None:
                    cohorts[c].add(e.person_id)

    # period -> persons with a return event there; with minimumOccurrences N, with at least N.
    returns: dict[tuple[str, int], int] = defaultdict(int)
    for e in events:
        if _matches(q, rf.returningEntity, e):
            p = periods.index_of(e.ts)
            if p is not None:
                returns[(e.person_id, p)] += 1
    least = rf.minimumOccurrences or 1
    returned: dict[int, set[str]] = defaultdict(set)
    for (person, p), n in returns.items():
        if n >= least:
            returned[p].add(person)
    return cohorts, returned


def _members(
    q: RetentionQuery,
    total: int,
    cohorts: dict[int, set[str]],
    returned: dict[int, set[str]],
    c: int,
    k: int,
) -> set[str]:
    """Cohort c's members counted at interval k. k = 0 is the cohort; k > 0 its members
    returning in period c + k (a return inside the cohort's own period is period c, never
    c + k); cumulative: in c + k or any later period of the range."""
    members = cohorts[c]
    if k == 0:
        return set(members)
    later = range(c + k, total) if q.retentionFilter.cumulative else (c + k,)
    return {m for m in members if any(m in returned[p] for p in later)}


def _cells(q: RetentionQuery, periods: Buckets, events: Sequence[Event]) -> list[list[int]]:
    """Per cohort c: [cohort size, returners at k = 1 .. periods left]."""
    total = len(periods)
    cohorts, returned = _sets(q, periods, events)
    return [
        [len(_members(q, total, cohorts, returned, c, k)) for k in range(total - c)]
        for c in range(total)
    ]


def _periods(nq: NormalisedQuery[RetentionQuery]) -> Buckets:
    q = nq.query
    total = q.retentionFilter.totalIntervals
    # The range: the last totalIntervals calendar periods ending with the one holding date_to.
    last = interval_start(nq.date_to, nq.interval, nq.week_start)
    first = shift(last, nq.interval, -(total - 1))
    periods = make_buckets(first, to_us(shift(last, nq.interval, 1)), nq.interval, nq.week_start)
    assert len(periods) == total
    return periods


def retention_actors(
    nq: NormalisedQuery[RetentionQuery], events: Sequence[Event], cell: RetentionCell
) -> set[str]:
    """The persons behind one retention number (semantics.actors.RetentionCell): the cohort's
    members (interval 0) or those of them who returned at the interval."""
    q = nq.query
    periods = _periods(nq)
    breakdown = retention_breakdown(q.breakdownFilter)
    groups: list[Sequence[Event]] = [events]
    if breakdown is not None and cell.breakdown is not None:
        key, kind = breakdown
        by_value: dict[str, list[Event]] = defaultdict(list)
        for e in events:
            by_value[breakdown_value(e, key, kind)].append(e)
        groups = [evs for v, evs in by_value.items() if folds(v, cell.breakdown, cell.kept)]
    out: set[str] = set()
    for evs in groups:
        cohorts, returned = _sets(q, periods, evs)
        out |= _members(q, len(periods), cohorts, returned, cell.cohort, cell.interval)
    return out

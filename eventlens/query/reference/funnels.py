"""Funnels, per person and per event (insights.md "Funnels").

For each person, every step-1 event opens an attempt; each later event advances every attempt
whose next step it matches, within the window counted from the attempt's step-1 event. The
person's result is the attempt that got furthest (the earliest such attempt on a tie).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from eventlens.query import deadline
from eventlens.query.dates import to_us
from eventlens.query.model import EventsNode, FunnelsQuery
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.reference.events import by_person
from eventlens.query.semantics.actors import FunnelCell, folds
from eventlens.query.semantics.buckets import range_buckets
from eventlens.query.semantics.events import Event
from eventlens.query.semantics.filters import (
    NULL_BREAKDOWN,
    OTHER_BREAKDOWN,
    breakdown_value,
    node_matches,
    properties_match,
    rank_values,
    series_matches,
)
from eventlens.query.semantics.funnels import (
    WINDOW_SECONDS,
    max_step_matching,
    opens_in,
    step_rows,
    time_to_convert_result,
    trends_result,
    view_steps,
)

T = TypeVar("T")


@dataclass
class Attempt:
    """One attempt: `steps[k]` is the event that filled step k (steps[0] is the anchor)."""

    steps: list[Event]
    broken: bool = False


@dataclass
class PersonFunnel:
    """The person's best attempt: `steps` are the events of the steps reached, in step order
    (unordered funnels: in time order); `by_step` maps a series index to its event."""

    steps: list[Event] = field(default_factory=list)
    by_step: dict[int, Event] = field(default_factory=dict)

    @property
    def level(self) -> int:
        return len(self.steps)


def _matched_steps(series: Sequence[EventsNode], e: Event) -> list[int]:
    return [s for s, node in enumerate(series) if series_matches(node, e)]


def _ordered(
    events: Sequence[Event],
    matched: Sequence[list[int]],
    n: int,
    window: int,
    strict: bool,
    anchors: Callable[[int], bool] | None = None,
) -> PersonFunnel:
    attempts: list[Attempt] = []
    for e, steps in zip(events, matched, strict=True):
        for a in attempts:
            if a.broken or len(a.steps) == n:
                continue
            # Advance if this event matches the attempt's next step within the window from
            # step 1 (inclusive). One event fills at most one step of an attempt.
            if len(a.steps) in steps and e.ts - a.steps[0].ts <= window:
                a.steps.append(e)
            elif strict:
                # strict: the person's very next event must be the next step.
                a.broken = True
        if 0 in steps and (anchors is None or anchors(e.ts)):
            attempts.append(Attempt([e]))  # every step-1 event opens (re-anchors) an attempt
    # max() keeps the first of equal maxima: the earliest attempt supplies the timings on a tie.
    best = max(attempts, key=lambda a: len(a.steps), default=None)
    if best is None:
        return PersonFunnel()
    return PersonFunnel(list(best.steps), dict(enumerate(best.steps)))


def _unordered(
    events: Sequence[Event],
    matched: Sequence[list[int]],
    n: int,
    window: int,
    anchors: Callable[[int], bool] | None = None,
) -> PersonFunnel:
    best = PersonFunnel()
    for e, steps in zip(events, matched, strict=True):
        if not steps or (anchors is not None and not anchors(e.ts)):
            continue
        # Steps in any order within the window from the first of them (this event).
        inside = [
            (x, s)
            for x, s in zip(events, matched, strict=True)
            if s and e.ts <= x.ts <= e.ts + window
        ]
        assignment = max_step_matching(inside, n)
        if len(assignment) > best.level:  # strictly better: earlier anchors win ties
            ordered = sorted(assignment.values(), key=lambda x: (x.ts, x.uuid))
            best = PersonFunnel(ordered, assignment)
    return best


def _excluded(q: FunnelsQuery, result: PersonFunnel, events: Sequence[Event], window: int) -> bool:
    """An exclusion event between the best attempt's steps i and j (or, if j was not reached,
    after step i until the window closes) removes the person from the whole funnel."""
    if result.level == 0:
        return False
    anchor = result.steps[0].ts
    for ex in q.funnelsFilter.exclusions:
        i, j = ex.funnelFromStep, ex.funnelToStep
        if result.level <= i:
            continue
        lo = result.steps[i].ts
        reached_j = result.level > j
        hi = result.steps[j].ts if reached_j else anchor + window
        for x in events:
            inside = lo < x.ts < hi if reached_j else lo < x.ts <= hi
            if inside and node_matches(ex.event, ex.properties, x):
                return True
    return False


def _person_result(
    q: FunnelsQuery,
    events: Sequence[Event],
    window: int,
    anchors: Callable[[int], bool] | None = None,
) -> PersonFunnel | None:
    """The person's funnel over `events` (time-ordered, in range, globally filtered), or None if
    an exclusion removes them. `anchors` (a timestamp predicate) limits which events may open
    an attempt (the trends view: the attempts entered in one interval)."""
    deadline.check()
    n = len(q.series)
    matched = [_matched_steps(q.series, e) for e in events]
    # Equal timestamps: earlier steps first, so steps at one instant can follow each other.
    order = sorted(
        range(len(events)),
        key=lambda k: (events[k].ts, min(matched[k], default=n), events[k].uuid),
    )
    evs = [events[k] for k in order]
    ms = [matched[k] for k in order]
    order_type = q.funnelsFilter.funnelOrderType
    if order_type == "unordered":
        result = _unordered(evs, ms, n, window, anchors)
    else:
        result = _ordered(evs, ms, n, window, order_type == "strict", anchors)
    if _excluded(q, result, evs, window):
        return None
    return result


def _steps_output(
    q: FunnelsQuery, results: Sequence[PersonFunnel], breakdown: str | None
) -> list[dict[str, Any]]:
    counts: list[int] = []
    times: list[list[float]] = []
    for s in range(len(q.series)):
        reached = [r for r in results if r.level > s]  # count = persons whose furthest >= s
        counts.append(len(reached))
        times.append([(r.steps[s].ts - r.steps[s - 1].ts) / 1e6 for r in reached] if s else [])
    return step_rows(q, counts, times, breakdown)


def _touch_value(
    q: FunnelsQuery, events: Sequence[Event], value_of: Callable[[Event], str], last: bool
) -> str:
    """first_touch / last_touch: the value on the earliest / latest funnel event having one."""
    candidates = [e for e in events if _matched_steps(q.series, e)]
    for e in reversed(candidates) if last else candidates:
        value = value_of(e)
        if value != NULL_BREAKDOWN:
            return value
    return NULL_BREAKDOWN


def _per_value(
    nq: NormalisedQuery[FunnelsQuery], events: Sequence[Event]
) -> dict[str | None, list[PersonFunnel]]:
    """Each person's funnel result, by breakdown value (None without a breakdown; persons who
    reached no step are left out with a breakdown, kept with level 0 without one)."""
    q = nq.query
    ff = q.funnelsFilter
    window = ff.funnelWindowInterval * WINDOW_SECONDS[ff.funnelWindowIntervalUnit] * 1_000_000
    persons = by_person(_in_range(nq, events))
    bf = q.breakdownFilter
    if bf is None or not isinstance(bf.breakdown, str):  # (cohort breakdowns: per cohort)
        results = [_person_result(q, evs, window) for evs in persons.values()]
        return {None: [r for r in results if r is not None]}

    key, kind = bf.breakdown, bf.breakdown_type

    def value_of(e: Event) -> str:
        return breakdown_value(e, key, kind)

    per_value: dict[str | None, list[PersonFunnel]] = defaultdict(list)
    attribution = ff.breakdownAttributionType
    for evs in persons.values():
        if attribution == "all_events":
            # The funnel is evaluated per value over the person's events carrying that value.
            for value in dict.fromkeys(value_of(e) for e in evs):
                subset = [e for e in evs if value_of(e) == value]
                r = _person_result(q, subset, window)
                if r is not None and r.level:
                    per_value[value].append(r)
            continue
        r = _person_result(q, evs, window)
        if r is None or not r.level:
            continue
        if attribution == "step":
            step = ff.breakdownAttributionValue or 0
            event = r.by_step.get(step)
            value = value_of(event) if event is not None else NULL_BREAKDOWN
        else:
            value = _touch_value(q, evs, value_of, last=attribution == "last_touch")
        per_value[value].append(r)
    return per_value


def _in_range(nq: NormalisedQuery[FunnelsQuery], events: Sequence[Event]) -> list[Event]:
    q = nq.query
    start = None if nq.date_from is None else to_us(nq.date_from)
    end = nq.end_us
    # Every step's event must lie inside the date range, not only step 1.
    return [
        e
        for e in events
        if (start is None or e.ts >= start) and e.ts < end and properties_match(q.properties, e)
    ]


def _time_to_convert(nq: NormalisedQuery[FunnelsQuery], events: Sequence[Event]) -> dict[str, Any]:
    """The time_to_convert view: each person's best attempt reaching step `to` gives one time,
    from its step `from` to its step `to` (semantics.funnels.time_to_convert_result)."""
    lo, hi = view_steps(nq.query)
    times = [
        (r.steps[hi].ts - r.steps[lo].ts) / 1e6
        for r in _per_value(nq, events)[None]
        if r.level > hi
    ]
    return time_to_convert_result(nq.query, times)


def _trends(nq: NormalisedQuery[FunnelsQuery], events: Sequence[Event]) -> list[dict[str, Any]]:
    """The trends view: per interval, the persons counted once for the attempts they entered
    (opened) in it, by the furthest of those attempts (PostHog's max(steps) per person and
    entrance period); `entered` = reached step `from`, `converted` = reached step `to`."""
    q = nq.query
    ff = q.funnelsFilter
    window = ff.funnelWindowInterval * WINDOW_SECONDS[ff.funnelWindowIntervalUnit] * 1_000_000
    lo, hi = view_steps(q)
    buckets = range_buckets(nq, events)
    entered, converted = [0] * len(buckets), [0] * len(buckets)
    unordered = ff.funnelOrderType == "unordered"
    for evs in by_person(_in_range(nq, events)).values():
        periods: set[int] = set()
        for e in evs:
            steps = _matched_steps(q.series, e)
            if steps if unordered else 0 in steps:
                index = buckets.index_of(e.ts)
                if index is not None:
                    periods.add(index)
        for period in sorted(periods):
            r = _person_result(q, evs, window, opens_in(buckets, period))
            if r is not None and r.level > lo:
                entered[period] += 1
                converted[period] += int(r.level > hi)
    return trends_result(buckets, entered, converted)


def run_funnels(nq: NormalisedQuery[FunnelsQuery], events: Sequence[Event]) -> Any:
    """Funnel steps, or (with a breakdown) one step list per breakdown value; the
    time_to_convert view's histogram or the trends view's series (funnelVizType)."""
    q = nq.query
    view = q.funnelsFilter.funnelVizType
    if view == "time_to_convert":
        return _time_to_convert(nq, events)
    if view == "trends":
        return _trends(nq, events)
    per_value = _per_value(nq, events)
    bf = q.breakdownFilter
    if bf is None or bf.breakdown is None:
        return _steps_output(q, per_value[None], None)
    n = len(q.series)
    finals = {
        v: float(sum(1 for r in rs if r.level == n)) for v, rs in per_value.items() if v is not None
    }
    kept, folded = rank_values(finals, bf.breakdown_limit)  # ranked by final-step count
    rows = [_steps_output(q, per_value[v], v) for v in kept]
    if NULL_BREAKDOWN in per_value:
        rows.append(_steps_output(q, per_value[NULL_BREAKDOWN], NULL_BREAKDOWN))
    if folded:
        other = [r for v in sorted(folded) for r in per_value[v]]
        rows.append(_steps_output(q, other, OTHER_BREAKDOWN))
    return rows


def funnel_actors(
    nq: NormalisedQuery[FunnelsQuery], events: Sequence[Event], cell: FunnelCell
) -> set[str]:
    """The persons behind one funnel number (semantics.actors.FunnelCell): who reached the
    step, or who reached the step before it and not it."""
    out: set[str] = set()
    for value, results in _per_value(nq, events).items():
        if value is not None and not folds(value, cell.breakdown, cell.kept):
            continue
        for r in results:
            hit = r.level == cell.step if cell.dropped else r.level > cell.step
            if hit:
                out.add(r.steps[0].person_id)
    return out

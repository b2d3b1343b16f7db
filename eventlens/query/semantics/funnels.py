"""Funnel rules both engines share: window lengths, the unordered step matching, step rows."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

# Window units as fixed durations: the model bounds windows with the same table it is read by.
from eventlens.query.dates import Buckets
from eventlens.query.model import WINDOW_SECONDS, FunnelsQuery
from eventlens.query.semantics.buckets import axis, quantile

__all__ = [
    "WINDOW_SECONDS",
    "max_step_matching",
    "opens_in",
    "step_rows",
    "time_to_convert_result",
    "trends_result",
    "view_steps",
]

T = TypeVar("T")


def max_step_matching(window_events: Sequence[tuple[T, list[int]]], n: int) -> dict[int, T]:
    """Maximum matching steps <-> events (each given with the steps it matches, ascending),
    each event filling at most one step. Events are tried in time order and a matched event
    stays matched, so the matched events are the earliest. Both engines use this one rule."""
    owner: dict[int, int] = {}  # step -> index into window_events

    def augment(i: int, seen: set[int]) -> bool:
        for s in window_events[i][1]:
            if s in seen:
                continue
            seen.add(s)
            if s not in owner or augment(owner[s], seen):
                owner[s] = i
                return True
        return False

    for i in range(len(window_events)):
        if len(owner) == n:
            break
        augment(i, set())
    return {s: window_events[i][0] for s, i in owner.items()}


def step_rows(
    q: FunnelsQuery, counts: Sequence[int], times: Sequence[Sequence[float]], breakdown: str | None
) -> list[dict[str, Any]]:
    """Output rows from per-step person counts and conversion times (seconds from the previous
    step, over persons who reached the step). Works on finished counts, so every engine shapes
    its funnel rows with this one function.

    Each row has PostHog's step fields (its funnel runner's `_serialize_step`): `action_id` (the
    event), `name`, `custom_name`, `order`, `people` (always [], as PostHog's answer: persons
    are listed by its actors query), `count`, `type` "events", the two conversion times, and with a
    breakdown `breakdown` and `breakdown_value`. In an unordered funnel step k is "completed k+1
    steps" of any of them, so, as PostHog, it names no event: `action_id` and `custom_name` null,
    `name` "Completed 1 step" / "Completed 3 steps". EventLens adds `conversion_from_first` and
    `conversion_from_previous` (PostHog's UI derives the one funnelStepReference picks).
    """
    out: list[dict[str, Any]] = []
    unordered = q.funnelsFilter.funnelOrderType == "unordered"
    first_count = counts[0] if counts else 0
    prev_count = first_count
    for s, node in enumerate(q.series):
        count, step_times = counts[s], times[s]
        if unordered:
            action_id, name, custom = None, f"Completed {s + 1} step{'s' if s else ''}", None
        else:
            action_id, name, custom = node.event, node.event or "All events", node.custom_name
        step: dict[str, Any] = {
            "action_id": action_id,
            "name": name,
            "custom_name": custom,
            "order": s,
            "people": [],
            "count": count,
            "type": "events",
            "conversion_from_first": count / first_count if first_count else 0.0,
            "conversion_from_previous": count / prev_count if prev_count else 0.0,
            "average_conversion_time": sum(step_times) / len(step_times) if step_times else None,
            "median_conversion_time": quantile(step_times, 0.5) if step_times else None,
        }
        if breakdown is not None:
            step["breakdown"] = breakdown
            step["breakdown_value"] = breakdown
        out.append(step)
        prev_count = count
    return out


def view_steps(q: FunnelsQuery) -> tuple[int, int]:
    """(from, to) step indices (0-based) of the time_to_convert / trends views: funnelFromStep
    (default 0) and funnelToStep (default the last step), as PostHog reads them."""
    ff = q.funnelsFilter
    return ff.funnelFromStep or 0, ff.funnelToStep or len(q.series) - 1


def time_to_convert_result(q: FunnelsQuery, times: Sequence[float]) -> dict[str, Any]:
    """PostHog's time-to-convert histogram over the conversion times (seconds from step `from`
    to step `to` of each converted person's best attempt; any order: the engines merge
    per-partition multisets and bin once here, since the bins need the global min and max).

    Bin count: binCount clamped to 1..90, else ceil(cbrt(samples)) clamped to 1..60. The bins
    start at floor(min) and are ceil((ceil(max) - floor(min)) / count) wide (60 when that is 0);
    count + 1 bins are returned (the last holds a time equal to the top edge), each
    [bin_start_seconds, persons]. `average_conversion_time` is the mean rounded to 2 places (None
    without a conversion). Without samples PostHog's defaults give from 0, to 1: [[0, 0], [1, 0]].
    """
    times = sorted(times)  # one summation order, so both engines' means agree to the bit
    bin_count = q.funnelsFilter.binCount
    if bin_count is not None:
        count = min(90, max(1, bin_count))
    else:
        count = min(60, max(1, math.ceil(round(len(times) ** (1 / 3), 9))))
    lo = math.floor(min(times)) if times else 0
    hi = math.ceil(max(times)) if times else 1
    width = math.ceil((hi - lo) / count) or 60
    persons = [0] * (count + 1)
    for t in times:
        persons[min(count, int((t - lo) // width))] += 1
    return {
        "bins": [[lo + k * width, persons[k]] for k in range(count + 1)],
        "average_conversion_time": round(sum(times) / len(times), 2) if times else None,
    }


def trends_result(
    buckets: Buckets, entered: Sequence[int], converted: Sequence[int]
) -> list[dict[str, Any]]:
    """PostHog's funnel trends series from per-interval counts (`entered[i]`: persons counted in
    interval i who reached step `from`; `converted[i]`: those of them who reached step `to`).
    The rate is a percentage rounded to 2 places, 0 for an interval nobody entered."""
    data = [round(c / e * 100, 2) if e else 0.0 for e, c in zip(entered, converted, strict=True)]
    return [
        {
            "count": len(data),
            "data": data,
            **axis(buckets),
            "reached_from_step_count": list(entered),
            "reached_to_step_count": list(converted),
        }
    ]


def opens_in(buckets: Buckets, index: int) -> Callable[[int], bool]:
    """The trends view's anchor rule: an attempt belongs to the interval its step-1 event (µs)
    falls in, so a person's attempts of interval `index` are those opened by such events."""

    def opens(ts_us: int) -> bool:
        return buckets.index_of(ts_us) == index

    return opens

"""Stickiness output rows, shared by both engines."""

from __future__ import annotations

from typing import Any

from eventlens.query.model import EventsNode, StickinessCriteria, StickinessQuery


def counts_as_active(events: int, criteria: StickinessCriteria | None) -> bool:
    """Does an interval in which the person did the event `events` (> 0) times count?"""
    if criteria is None:
        return True
    if criteria.operator == "gte":
        return events >= criteria.value
    if criteria.operator == "lte":
        return events <= criteria.value
    return events == criteria.value


def criteria_of(q: StickinessQuery) -> StickinessCriteria | None:
    return q.stickinessFilter.stickinessCriteria if q.stickinessFilter else None


def is_cumulative(q: StickinessQuery) -> bool:
    return q.stickinessFilter is not None and q.stickinessFilter.computedAs == "cumulative"


def stickiness_row(
    index: int, node: EventsNode, unit: str, data: list[int], cumulative: bool = False
) -> dict[str, Any]:
    """One series' output row from its histogram (data[n-1]: persons active in n intervals);
    every engine shapes its stickiness rows with this one function. `cumulative` (PostHog's
    computedAs cumulative): data[n-1] = persons active in n or more intervals, labels "n days or
    more", `count` still the persons."""
    n = len(data)
    count = sum(data)
    if cumulative:
        data = [sum(data[k:]) for k in range(n)]
    more = " or more" if cumulative else ""
    return {
        "label": node.custom_name or node.event or "All events",
        "series_index": index,
        "event": node.event,
        "custom_name": node.custom_name,
        "days": list(range(1, n + 1)),
        "labels": [f"{k} {unit}{'' if k == 1 else 's'}{more}" for k in range(1, n + 1)],
        "data": data,
        "count": count,
    }

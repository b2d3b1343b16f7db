"""Stickiness output rows and PostHog's stickinessFilter, shared by both engines."""

from __future__ import annotations

from typing import Any

from eventlens.query.model import EventsNode, StickinessQuery

# stickinessCriteria operators: a person's interval counts when its event count compares so.
CRITERIA_OPERATORS = ("gte", "lte", "exact")


def criteria_of(q: StickinessQuery) -> tuple[str, int] | None:
    """(operator, value) of `stickinessFilter.stickinessCriteria`, None for PostHog's default
    (an interval counts if the person did the event at least once)."""
    sf = q.stickinessFilter
    crit = sf.stickinessCriteria if sf is not None else None
    if not isinstance(crit, dict):
        return None
    op, value = crit.get("operator"), crit.get("value")
    assert isinstance(op, str) and isinstance(value, int)  # checked by posthog_fields
    return op, value


def interval_counts(q: StickinessQuery, events_in_interval: int) -> bool:
    """Whether an interval with this many of the person's matching events counts as active."""
    crit = criteria_of(q)
    if crit is None:
        return events_in_interval > 0
    op, value = crit
    if op == "gte":
        return events_in_interval >= value
    if op == "lte":
        return 0 < events_in_interval <= value
    return events_in_interval == value


def is_cumulative(q: StickinessQuery) -> bool:
    sf = q.stickinessFilter
    return sf is not None and sf.computedAs == "cumulative"


def stickiness_row(
    q: StickinessQuery, index: int, node: EventsNode, unit: str, data: list[int]
) -> dict[str, Any]:
    """One series' output row from its histogram (data[n-1]: persons active in n intervals);
    every engine shapes its stickiness rows with this one function. `computedAs: cumulative`
    (PostHog): data[n-1] is persons active in n or more intervals; `count` stays the number of
    persons."""
    n = len(data)
    count = sum(data)
    more = ""
    if is_cumulative(q):
        data = [sum(data[k:]) for k in range(n)]
        more = " or more"
    return {
        "label": node.custom_name or node.event or "All events",
        "series_index": index,
        "event": node.event,
        "custom_name": node.custom_name,
        "days": list(range(1, n + 1)),
        "labels": [f"{k} {unit}{'' if k == 1 else 's'}{more}" for k in range(1, n + 1)],
        "data": data,
        "count": count,
        # PostHog's minimal action of a stickiness series (for colours shared with trends).
        "action": {
            "order": index,
            "type": "events",
            "name": node.event or "All events",
            "id": node.event,
        },
    }

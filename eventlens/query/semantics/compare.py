"""PostHog's compareFilter for trends and stickiness, shared by both engines: the query runs
over the current range and over a previous one, and the answer lists every current row, then
every previous row, each marked `compare: true` and `compare_label` "current" / "previous".

The previous range (insights.md "Compare"):
- `compare_to` (-1d, -2w, -1m, -1y, -6h ...): it starts at the current range's start moved back
  by that offset (days and longer: at the start of that day) and is as long as the current range;
- otherwise it is the period of the same length that ends right before the current range starts.
Lengths are wall-clock (a range of 8 days compares with the 8 days before it, DST or not).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from eventlens.query.dates import interval_start, resolve_date, zone
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.posthog_fields import has_compare

__all__ = ["has_compare", "previous_period", "with_compare"]

Rows = list[dict[str, Any]]


def previous_period(nq: NormalisedQuery) -> NormalisedQuery:
    """`nq` over its previous period (same query, same calendar)."""
    assert nq.date_from is not None  # compare with date_from "all" is refused at parse time
    q = nq.query
    cf = getattr(q, "compareFilter", None)
    to = cf.compare_to if cf is not None else None
    length = nq.date_to - nq.date_from  # wall-clock: both carry the project's tzinfo
    if isinstance(to, str):
        start = resolve_date(
            to, zone(nq.timezone), nq.date_from, "compareFilter.compare_to", nq.week_start
        ).at
        if nq.interval != "hour":
            start = interval_start(start, "day", nq.week_start)
        return replace(nq, date_from=start, date_to=start + length)
    end = nq.date_from - timedelta(microseconds=1)
    return replace(nq, date_from=end - length, date_to=end)


def with_compare(nq: NormalisedQuery, run: Callable[[NormalisedQuery], list[Any]]) -> list[Any]:
    """`run(nq)`, or with compareFilter.compare its rows over the current then the previous
    period, marked as PostHog marks them."""
    if not has_compare(nq.query):
        return run(nq)
    current: Rows = run(nq)
    previous: Rows = run(previous_period(nq))
    for row in current:
        row["compare"] = True
        row["compare_label"] = "current"
    for i, row in enumerate(previous):
        row["compare"] = True
        row["compare_label"] = "previous"
        # PostHog's trends rows name the current range's days in `action` for both periods.
        action = row.get("action")
        if isinstance(action, dict) and "days" in action and i < len(current):
            mine = current[i].get("action")
            if isinstance(mine, dict) and "days" in mine:
                row["action"] = {**action, "days": mine["days"]}
        if "filter" in row and current:
            row["filter"] = current[0]["filter"]  # PostHog echoes the current range's dates
    return current + previous

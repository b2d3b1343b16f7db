"""PostHog's multiple breakdowns (`breakdownFilter.breakdowns`, up to 3), shared by both
engines (insights.md "Multiple breakdowns").

A combination of values (each as a single breakdown gives it: null or "" is the null label) is
one breakdown value: ranked, limited and folded into "other" exactly as a single value is
(a combination holding a null label is ranked like any other). Inside the engines it is one
string, the JSON list of its parts; `output_value` turns it into the list PostHog returns
(["Chrome", "Mac"]; "other" is the other label in every position).
"""

from __future__ import annotations

from typing import Any

import orjson

from eventlens.query.model import BreakdownFilter
from eventlens.query.semantics.events import Event
from eventlens.query.semantics.filters import OTHER_BREAKDOWN, breakdown_value

BreakdownKey = tuple[str, str]  # (property key, "event" | "person")


def breakdown_keys(bf: BreakdownFilter | None) -> list[BreakdownKey] | None:
    """The properties the query breaks down by, None without a breakdown."""
    if bf is None:
        return None
    if isinstance(bf.breakdowns, list) and bf.breakdowns:
        # posthog_fields checked each item is {"property": str, "type": event|person, ...}.
        items = [b for b in bf.breakdowns if isinstance(b, dict)]
        return [(str(b["property"]), str(b.get("type") or "event")) for b in items]
    if not isinstance(bf.breakdown, str):
        return None  # none, or a cohort breakdown (semantics/cohorts.py runs it per cohort)
    return [(bf.breakdown, bf.breakdown_type)]


def is_multiple(bf: BreakdownFilter | None) -> bool:
    return bf is not None and isinstance(bf.breakdowns, list) and bool(bf.breakdowns)


def combo_label(parts: list[str]) -> str:
    """The one string a combination of breakdown values is inside the engines."""
    return orjson.dumps(parts).decode()


def event_breakdown(e: Event, keys: list[BreakdownKey], multiple: bool) -> str:
    """The event's breakdown value (a combination's label for multiple breakdowns)."""
    if not multiple:
        key, kind = keys[0]
        return breakdown_value(e, key, kind)
    return combo_label([breakdown_value(e, key, kind) for key, kind in keys])


def output_value(label: str, keys: int) -> Any:
    """What the answer shows for an internal multiple-breakdown label."""
    if label == OTHER_BREAKDOWN:
        return [OTHER_BREAKDOWN] * keys
    return orjson.loads(label)

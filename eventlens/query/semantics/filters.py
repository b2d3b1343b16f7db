"""Property filters and breakdown values, one event at a time (insights.md "Common rules")."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

import orjson

from eventlens.query.model import EventsNode, PropertyFilter, PropertyGroup
from eventlens.query.regex import compile_pattern
from eventlens.query.semantics.events import Event

NULL_BREAKDOWN = "$$_posthog_breakdown_null_$$"
OTHER_BREAKDOWN = "$$_posthog_breakdown_other_$$"

Properties = list[PropertyFilter | PropertyGroup] | PropertyGroup


def as_text(value: Any) -> str:
    """A property value as text: strings as they are, anything else as its JSON."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def as_number(value: Any) -> float | None:
    """A finite float if value is a JSON number or a string that parses as one, else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def as_datetime(value: Any) -> datetime | None:
    """An aware datetime if value is an ISO date/date-time string (naive = UTC), else None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _regex(pattern: str) -> Any:
    return compile_pattern(pattern)


def property_value(e: Event, key: str, kind: str) -> tuple[bool, Any]:
    """(is_set, value) of `key` on the event or, for kind "person", its person properties.
    JSON null counts as not set."""
    source = e.person_properties if kind == "person" else e.properties
    value = source.get(key)
    return value is not None, value


def filter_matches(f: PropertyFilter, e: Event) -> bool:
    """One filter against one event; each operator's rule for a missing value is in the comments."""
    if f.type == "cohort":
        # The person is in the cohort or not; "exact" is PostHog's older spelling of "in".
        return (f.cohort_id in e.cohorts) == (f.operator != "not_in")
    is_set, value = property_value(e, f.key, f.type)
    op = f.operator
    if op == "is_set":
        return is_set
    if op == "is_not_set":
        return not is_set
    if op in ("exact", "is_not"):
        wanted = {as_text(v) for v in (f.value if isinstance(f.value, list) else [f.value])}
        if not is_set:
            return op == "is_not"  # exact: missing never matches; is_not: missing matches
        return (as_text(value) in wanted) == (op == "exact")
    if op in ("icontains", "not_icontains"):
        if not is_set:
            return op == "not_icontains"  # missing: icontains false, not_icontains true
        found = as_text(f.value).lower() in as_text(value).lower()
        return found == (op == "icontains")
    if op in ("regex", "not_regex"):
        if not is_set:
            return op == "not_regex"  # missing: regex false, not_regex true
        found = _regex(str(f.value)).search(as_text(value)) is not None
        return found == (op == "regex")
    if op in ("gt", "gte", "lt", "lte"):
        # Numeric comparison only when both sides parse as numbers, else false.
        left, right = as_number(value), as_number(f.value)
        if left is None or right is None:
            return False
        return {
            "gt": left > right,
            "gte": left >= right,
            "lt": left < right,
            "lte": left <= right,
        }[op]
    # is_date_before / is_date_after / is_date_exact: both sides must parse as dates.
    left_dt, right_dt = as_datetime(value), as_datetime(f.value)
    if left_dt is None or right_dt is None:
        return False
    if op == "is_date_before":
        return left_dt < right_dt
    if op == "is_date_after":
        return left_dt > right_dt
    if isinstance(f.value, str) and len(f.value.strip()) == 10:
        # A date without a time: the property's instant falls on that (UTC) day.
        return left_dt.astimezone(UTC).date() == date.fromisoformat(f.value.strip())
    return left_dt == right_dt


def properties_match(props: Properties, e: Event) -> bool:
    """A list is an AND of its items; a group is AND or OR of its values (nesting allowed).
    An empty list or group filters nothing out (as in PostHog)."""
    if isinstance(props, PropertyGroup):
        if not props.values:
            return True
        results = (properties_match([item], e) for item in props.values)
        return all(results) if props.type == "AND" else any(results)
    for item in props:
        if isinstance(item, PropertyGroup):
            if not properties_match(item, e):
                return False
        elif not filter_matches(item, e):
            return False
    return True


def node_matches(event: str | None, props: Properties, e: Event) -> bool:
    """Event name (None = any event) and the node's own filters."""
    return (event is None or e.event == event) and properties_match(props, e)


def series_matches(node: EventsNode, e: Event) -> bool:
    return node_matches(node.event, node.properties, e)


def breakdown_value(e: Event, key: str, kind: str) -> str:
    """The breakdown value compared as a string; null or "" become the null label."""
    _, value = property_value(e, key, kind)
    if value is None:
        return NULL_BREAKDOWN
    text = as_text(value)
    return NULL_BREAKDOWN if text == "" else text


def rank_values(
    aggregates: dict[str, float], limit: int, *, rank_null: bool = False
) -> tuple[list[str], set[str]]:
    """(kept values in output order, values folded into "other").

    insights.md: ranked by aggregate desc, then value desc; the top `limit` kept. With
    `rank_null` (trends, as PostHog's breakdown-values query: the null group is ranked with the
    others and can take a slot, or be folded into other; on a tie it ranks after real values,
    as ClickHouse sorts NULL last) the null label competes by its aggregate; without it (funnels)
    the null value is not ranked and is always shown. Either way a kept null comes after the
    ranked values in the output, and other after it."""
    pool = [v for v in aggregates if rank_null or v != NULL_BREAKDOWN]
    ranked = sorted(pool, key=lambda v: (aggregates[v], v != NULL_BREAKDOWN, v), reverse=True)
    kept = ranked[:limit]
    order = [v for v in kept if v != NULL_BREAKDOWN] + [v for v in kept if v == NULL_BREAKDOWN]
    return order, set(ranked[limit:])

"""Cohorts in the query model: PostHog's cohort definition JSON, and the resolved form a
normalised query carries (docs/semantics.md "Cohorts", ADR 0017).

A dynamic cohort is `{"properties": <group>}`, a group `{"type": "AND"|"OR", "values": [...]}`
of groups and conditions: person-property conditions (the property-filter operators) and
behavioural ones ("performed `key` at least / at most / exactly n times in the last t days,
weeks or months", optionally negated). `parse_definition` validates one; `resolve` turns it into
`ResolvedCohort`, whose behavioural windows are epoch-µs bounds fixed at normalisation time, so
two engines (and the result cache) given one normalised query agree on who is in it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Discriminator, Field, JsonValue, Tag, ValidationError

from eventlens.errors import InvalidQuery
from eventlens.query.dates import interval_start, resolve_date, shift, to_us, zone
from eventlens.query.model import (
    MAX_FILTERS,
    MAX_GROUP_DEPTH,
    MAX_TEXT,
    Operator,
    PropertyFilter,
    check_filter,
    field_path,
)

MAX_MEMBERS = 100_000  # persons in one static cohort
MAX_TIME_VALUE = 3650  # behavioural windows: at most ten years in days (fewer weeks / months)
MAX_OPERATOR_VALUE = 1_000_000
_UNIT = {"day": "d", "week": "w", "month": "m"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PersonCondition(_Model):
    """A person-property condition: the property-filter rule on the person's properties."""

    type: Literal["person"]
    key: str = Field(min_length=1, max_length=MAX_TEXT)
    operator: Operator = "exact"
    value: JsonValue = None
    negation: bool = False


class BehavioralCondition(_Model):
    """PostHog's behavioural condition: did the person perform event `key` (performed_event:
    at least once; performed_event_multiple: `operator` gte/lte/exact `operator_value` times)
    within the last `time_value` `time_interval`s; `negation` inverts the answer."""

    type: Literal["behavioral"]
    key: str = Field(min_length=1, max_length=MAX_TEXT)
    event_type: Literal["events"] = "events"
    value: Literal["performed_event", "performed_event_multiple"]
    operator: Literal["gte", "lte", "exact"] | None = None
    operator_value: int | None = Field(default=None, ge=0, le=MAX_OPERATOR_VALUE)
    time_value: int = Field(default=30, ge=1, le=MAX_TIME_VALUE)
    time_interval: Literal["day", "week", "month"] = "day"
    negation: bool = False


def _item_tag(value: object) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if kind in ("AND", "OR"):
        return "group"
    return "behavioral" if kind == "behavioral" else "person"


CohortItem = Annotated[
    Annotated[PersonCondition, Tag("person")]
    | Annotated[BehavioralCondition, Tag("behavioral")]
    | Annotated["CohortGroup", Tag("group")],
    Discriminator(_item_tag),
]


class CohortGroup(_Model):
    type: Literal["AND", "OR"]
    values: list[CohortItem] = Field(max_length=MAX_FILTERS)


CohortGroup.model_rebuild()


class CohortFilters(_Model):
    properties: CohortGroup


def parse_definition(obj: Any, field: str = "filters") -> CohortGroup:
    """A dynamic cohort's `filters` JSON as its top group. InvalidQuery naming the field
    (`filters.properties.values[0].operator_value` ...) for anything malformed: an unknown
    field, a bad operator, a missing operator_value, nesting deeper than MAX_GROUP_DEPTH, or
    no condition at all (a dynamic cohort of nobody or everybody is a mistake)."""
    if not isinstance(obj, dict):
        raise InvalidQuery(f"{field}: must be an object {{properties: group}}", field=field)
    try:
        parsed = CohortFilters.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(p for p in first["loc"] if p not in ("group", "person", "behavioral"))
        path = f"{field}.{field_path(loc)}" if loc else field
        if first["type"] == "extra_forbidden":
            raise InvalidQuery(f"unsupported field {path!r}", field=path) from None
        raise InvalidQuery(f"{path}: {first['msg']}", field=path) from None
    _check(parsed.properties, f"{field}.properties", 1)
    if not any(True for _ in conditions(parsed.properties)):
        raise InvalidQuery(
            f"{field}.properties: a dynamic cohort needs at least one condition",
            field=f"{field}.properties",
        )
    return parsed.properties


def _check(group: CohortGroup, path: str, depth: int) -> None:
    if depth > MAX_GROUP_DEPTH:
        raise InvalidQuery(f"{path}: groups nest at most {MAX_GROUP_DEPTH} levels deep", field=path)
    for i, item in enumerate(group.values):
        at = f"{path}.values[{i}]"
        if isinstance(item, CohortGroup):
            _check(item, at, depth + 1)
        elif isinstance(item, PersonCondition):
            check_filter(as_filter(item), at)
        elif item.value == "performed_event_multiple" and (
            item.operator is None or item.operator_value is None
        ):
            raise InvalidQuery(
                f"{at}.operator_value: performed_event_multiple needs operator (gte, lte, "
                "exact) and operator_value",
                field=f"{at}.operator_value",
            )


def conditions(group: CohortGroup) -> Iterator[PersonCondition | BehavioralCondition]:
    for item in group.values:
        if isinstance(item, CohortGroup):
            yield from conditions(item)
        else:
            yield item


def as_filter(c: PersonCondition) -> PropertyFilter:
    """The condition as the person-property filter whose rule it uses."""
    return PropertyFilter(key=c.key, operator=c.operator, value=c.value, type="person")


# -- the resolved form -------------------------------------------------------------------------


@dataclass(frozen=True)
class Performed:
    """A behavioural condition with its window fixed: events named `event` with
    lo_us <= ts < hi_us, counted, compared `op` (gte / lte / exact) with `n`."""

    event: str
    lo_us: int
    hi_us: int
    op: str
    n: int
    negation: bool


@dataclass(frozen=True)
class PersonProperty:
    filter: PropertyFilter
    negation: bool


@dataclass(frozen=True)
class Group:
    type: str  # "AND" | "OR"
    values: tuple[Group | Performed | PersonProperty, ...]


@dataclass(frozen=True)
class ResolvedCohort:
    """What an engine needs to decide membership: a static cohort's person ids, or a dynamic
    cohort's conditions with fixed windows. `name` labels a breakdown."""

    id: int
    name: str
    members: frozenset[str] | None = None
    group: Group | None = None

    def to_json(self) -> dict[str, Any]:
        """Canonical JSON (part of the normalised query's fingerprint): a static cohort by the
        digest of its sorted members, a dynamic one by its resolved conditions."""
        if self.members is not None:
            digest = hashlib.sha256("\n".join(sorted(self.members)).encode()).hexdigest()
            return {"id": self.id, "static": {"count": len(self.members), "sha256": digest}}
        assert self.group is not None
        return {"id": self.id, "name": self.name, "group": _group_json(self.group)}


def _group_json(g: Group) -> dict[str, Any]:
    values: list[Any] = []
    for v in g.values:
        if isinstance(v, Group):
            values.append(_group_json(v))
        elif isinstance(v, Performed):
            values.append(
                {"event": v.event, "lo": v.lo_us, "hi": v.hi_us, "op": v.op, "n": v.n}
                | {"negation": v.negation}
            )
        else:
            values.append({"person": v.filter.model_dump(mode="json"), "negation": v.negation})
    return {"type": g.type, "values": values}


def window(time_value: int, interval: str, timezone: str, now: datetime) -> tuple[int, int]:
    """The last `time_value` days / weeks / months before `now`, as [lo, hi) epoch µs in the
    project calendar: from the start of the day the relative date `-<n><d|w|m>` names (as a
    dateRange `date_from` of the same string) to the end of `now`'s day. Day-aligned, so the
    window (and the cache key holding it) changes once a day, not every request."""
    tz = zone(timezone)
    start = resolve_date(f"-{time_value}{_UNIT[interval]}", tz, now, "time_value").at
    lo = interval_start(start, "day", 0)
    hi = shift(interval_start(now.astimezone(tz), "day", 0), "day", 1)
    return to_us(lo), to_us(hi)


def resolve(
    cohort_id: int,
    name: str,
    *,
    members: frozenset[str] | None,
    definition: CohortGroup | None,
    timezone: str,
    now: datetime,
) -> ResolvedCohort:
    """A stored cohort (static members, or a dynamic definition) resolved at `now`."""
    if members is not None:
        return ResolvedCohort(cohort_id, name, members=members)
    assert definition is not None
    return ResolvedCohort(cohort_id, name, group=_resolve_group(definition, timezone, now))


def _resolve_group(g: CohortGroup, timezone: str, now: datetime) -> Group:
    out: list[Group | Performed | PersonProperty] = []
    for item in g.values:
        if isinstance(item, CohortGroup):
            out.append(_resolve_group(item, timezone, now))
        elif isinstance(item, PersonCondition):
            out.append(PersonProperty(as_filter(item), item.negation))
        else:
            lo, hi = window(item.time_value, item.time_interval, timezone, now)
            if item.value == "performed_event":
                op, n = "gte", 1
            else:
                assert item.operator is not None and item.operator_value is not None
                op, n = item.operator, item.operator_value
            out.append(Performed(item.key, lo, hi, op, n, item.negation))
    return Group(g.type, tuple(out))


def compare(count: int, op: str, n: int) -> bool:
    """A behavioural condition's count test."""
    if op == "gte":
        return count >= n
    if op == "lte":
        return count <= n
    return count == n


# A lookup the service hands to normalisation: cohort id -> resolved cohort, None if unknown.
CohortLookup = Callable[[int], ResolvedCohort | None]


def definition_json(group: CohortGroup) -> dict[str, Any]:
    """The stored JSON of a definition (`{"properties": group}`)."""
    out: dict[str, Any] = orjson.loads(
        orjson.dumps({"properties": group.model_dump(mode="json", exclude_none=True)})
    )
    return out

"""The insight query model: PostHog's query JSON for the subset EventLens supports (insights.md).

`parse_query(obj)` turns a JSON object into one of the five query models. Every model forbids
unknown fields, so an option we do not implement is a 400 naming it instead of being ignored.
All user errors are raised as `eventlens.errors.InvalidQuery` with `field` set to the path of the
offending input in PostHog's notation, e.g. `series[0].math`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import re2
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
)

from eventlens.errors import InvalidQuery

Operator = Literal[
    "exact",
    "is_not",
    "icontains",
    "not_icontains",
    "regex",
    "not_regex",
    "gt",
    "gte",
    "lt",
    "lte",
    "is_set",
    "is_not_set",
    "is_date_before",
    "is_date_after",
    "is_date_exact",
]

# Trend maths (insights.md "Trends"). Grouped because validation and engines branch on the group.
PROPERTY_MATHS = ("sum", "avg", "min", "max", "median", "p75", "p90", "p95", "p99")
COUNT_PER_ACTOR_MATHS = (
    "avg_count_per_actor",
    "min_count_per_actor",
    "max_count_per_actor",
    "median_count_per_actor",
)
MathType = Literal[
    "total",
    "dau",
    "weekly_active",
    "monthly_active",
    "sum",
    "avg",
    "min",
    "max",
    "median",
    "p75",
    "p90",
    "p95",
    "p99",
    "avg_count_per_actor",
    "min_count_per_actor",
    "max_count_per_actor",
    "median_count_per_actor",
    "first_time_for_user",
]
Interval = Literal["hour", "day", "week", "month"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PropertyFilter(_Model):
    """One property filter; `type` says whether `key` is read from the event or the person."""

    key: str = Field(min_length=1)
    value: Any = None
    operator: Operator = "exact"
    type: Literal["event", "person"] = "event"


def _property_item_tag(value: Any) -> str:
    # Called with the raw JSON when validating and with the model when serialising.
    if isinstance(value, PropertyGroup) or (
        isinstance(value, dict) and value.get("type") in ("AND", "OR")
    ):
        return "PropertyGroup"
    return "PropertyFilter"


PropertyItem = Annotated[
    Annotated[PropertyFilter, Tag("PropertyFilter")]
    | Annotated["PropertyGroup", Tag("PropertyGroup")],
    Discriminator(_property_item_tag),
]


class PropertyGroup(_Model):
    """PostHog's nested filter group: `{"type": "AND"|"OR", "values": [filter | group, ...]}`."""

    type: Literal["AND", "OR"]
    values: list[PropertyItem]


PropertyGroup.model_rebuild()


def _properties_tag(value: Any) -> str:
    return "PropertyGroup" if isinstance(value, dict | PropertyGroup) else "PropertyList"


# A plain list is an AND of its items; a group may nest AND/OR; null (PostHog sends it) = [].
Properties = Annotated[
    Annotated[list[PropertyItem], Tag("PropertyList")]
    | Annotated[PropertyGroup, Tag("PropertyGroup")],
    Discriminator(_properties_tag),
    BeforeValidator(lambda v: [] if v is None else v),
]


class EventsNode(_Model):
    """One series (trends, stickiness, lifecycle) or step (funnels). `event=None` = all events."""

    kind: Literal["EventsNode"] = "EventsNode"
    event: str | None = None
    name: str | None = None
    custom_name: str | None = None
    math: MathType = "total"
    math_property: str | None = None
    properties: Properties = Field(default_factory=list)


class DateRange(_Model):
    """Absolute ISO dates/times or relative strings (-7d, -24h, mStart, all ...); see dates.py."""

    date_from: str | None = None
    date_to: str | None = None
    # PostHog's explicitDate=true (use the instants exactly, no day rounding) is not supported.
    explicitDate: Literal[False] | None = None


class BreakdownFilter(_Model):
    breakdown: str | None = None
    breakdown_type: Literal["event", "person"] = "event"
    breakdown_limit: int = Field(default=25, ge=1, le=10_000)


class TrendsFilter(_Model):
    formula: str | None = None


class FunnelExclusion(_Model):
    """An event that, between steps funnelFromStep and funnelToStep (0-based), drops the person."""

    kind: Literal["EventsNode"] = "EventsNode"
    event: str | None
    name: str | None = None
    custom_name: str | None = None
    properties: Properties = Field(default_factory=list)
    funnelFromStep: int = Field(ge=0)
    funnelToStep: int = Field(ge=1)


class FunnelsFilter(_Model):
    funnelWindowInterval: int = Field(default=14, ge=1)
    funnelWindowIntervalUnit: Literal["second", "minute", "hour", "day", "week", "month"] = "day"
    funnelOrderType: Literal["ordered", "strict", "unordered"] = "ordered"
    funnelVizType: Literal["steps"] = "steps"
    exclusions: list[FunnelExclusion] = Field(default_factory=list)
    breakdownAttributionType: Literal["first_touch", "last_touch", "all_events", "step"] = (
        "first_touch"
    )
    breakdownAttributionValue: int | None = Field(default=None, ge=0)


class RetentionEntity(_Model):
    id: str
    name: str | None = None
    type: Literal["events"] = "events"
    kind: Literal["EventsNode"] | None = None
    custom_name: str | None = None
    order: int | None = None
    properties: Properties = Field(default_factory=list)


class RetentionFilter(_Model):
    targetEntity: RetentionEntity = Field(
        default_factory=lambda: RetentionEntity(id="$pageview", name="$pageview")
    )
    returningEntity: RetentionEntity = Field(
        default_factory=lambda: RetentionEntity(id="$pageview", name="$pageview")
    )
    period: Literal["Hour", "Day", "Week", "Month"] = "Day"
    totalIntervals: int = Field(default=8, ge=1, le=1000)
    retentionType: Literal["retention_recurring", "retention_first_time"] = "retention_recurring"


class _Query(_Model):
    dateRange: DateRange = Field(default_factory=DateRange)
    properties: Properties = Field(default_factory=list)
    # Accepted only as false: we have no notion of test accounts, so true cannot be honoured.
    filterTestAccounts: Literal[False] = False


class TrendsQuery(_Query):
    kind: Literal["TrendsQuery"] = "TrendsQuery"
    series: list[EventsNode] = Field(min_length=1, max_length=26)
    interval: Interval = "day"
    breakdownFilter: BreakdownFilter | None = None
    trendsFilter: TrendsFilter | None = None


class FunnelsQuery(_Query):
    kind: Literal["FunnelsQuery"] = "FunnelsQuery"
    series: list[EventsNode] = Field(min_length=2, max_length=20)
    # PostHog sends it for the trends view of a funnel; the steps view does not bucket by time.
    interval: Interval = "day"
    breakdownFilter: BreakdownFilter | None = None
    funnelsFilter: FunnelsFilter = Field(default_factory=FunnelsFilter)


class RetentionQuery(_Query):
    kind: Literal["RetentionQuery"] = "RetentionQuery"
    retentionFilter: RetentionFilter = Field(default_factory=RetentionFilter)


class StickinessQuery(_Query):
    kind: Literal["StickinessQuery"] = "StickinessQuery"
    series: list[EventsNode] = Field(min_length=1, max_length=26)
    interval: Interval = "day"


class LifecycleQuery(_Query):
    kind: Literal["LifecycleQuery"] = "LifecycleQuery"
    series: list[EventsNode] = Field(min_length=1, max_length=1)
    interval: Interval = "day"


InsightQuery = TrendsQuery | FunnelsQuery | RetentionQuery | StickinessQuery | LifecycleQuery

QUERY_KINDS: dict[str, type[_Query]] = {
    "TrendsQuery": TrendsQuery,
    "FunnelsQuery": FunnelsQuery,
    "RetentionQuery": RetentionQuery,
    "StickinessQuery": StickinessQuery,
    "LifecycleQuery": LifecycleQuery,
}

_UNION_TAGS = {"PropertyFilter", "PropertyGroup", "PropertyList"}


def field_path(loc: tuple[int | str, ...]) -> str:
    """Pydantic's error location as PostHog-style path: ('series', 0, 'math') -> series[0].math."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _UNION_TAGS:
            continue
        else:
            out += f".{part}" if out else part
    return out


def _invalid_from(error: ValidationError) -> InvalidQuery:
    first = error.errors()[0]
    path = field_path(tuple(first["loc"]))
    if first["type"] == "extra_forbidden":
        message = f"unsupported field {path!r}"
    else:
        message = f"{path or 'query'}: {first['msg']}"
    return InvalidQuery(message, field=path or None)


def parse_query(obj: Any) -> InsightQuery:
    """Validate a query JSON object (already decoded) into its model.

    Raises InvalidQuery (field = path, e.g. "series[0].math") for: a missing or unknown `kind`,
    any unsupported field, a wrong type or value, an unknown operator, a property math without
    `math_property`, an invalid RE2 pattern, an exclusion naming steps outside the funnel, an
    unparseable date, or a date range that ends before it starts.
    """
    if not isinstance(obj, dict):
        raise InvalidQuery("query must be a JSON object", field=None)
    kind = obj.get("kind")
    model = QUERY_KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise InvalidQuery(
            f"kind must be one of {', '.join(QUERY_KINDS)}, got {kind!r}", field="kind"
        )
    try:
        query: InsightQuery = model.model_validate(obj)  # type: ignore[assignment]
    except ValidationError as exc:
        raise _invalid_from(exc) from None
    _check_semantics(query)
    return query


def _check_semantics(query: InsightQuery) -> None:
    """Rules a field type cannot express: regexes compile, steps exist, maths fit the kind."""
    _check_properties(query.properties, "properties")
    if isinstance(query, RetentionQuery):
        rf = query.retentionFilter
        _check_properties(rf.targetEntity.properties, "retentionFilter.targetEntity.properties")
        _check_properties(
            rf.returningEntity.properties, "retentionFilter.returningEntity.properties"
        )
    else:
        for i, node in enumerate(query.series):
            _check_properties(node.properties, f"series[{i}].properties")
            if node.math in PROPERTY_MATHS and not node.math_property:
                raise InvalidQuery(
                    f"series[{i}].math_property: math {node.math!r} needs a math_property",
                    field=f"series[{i}].math_property",
                )
            if not isinstance(query, TrendsQuery) and node.math != "total":
                raise InvalidQuery(
                    f"series[{i}].math: {node.math!r} is not supported in a {query.kind}",
                    field=f"series[{i}].math",
                )
    if isinstance(query, FunnelsQuery):
        ff = query.funnelsFilter
        steps = len(query.series)
        for i, exc in enumerate(ff.exclusions):
            path = f"funnelsFilter.exclusions[{i}]"
            _check_properties(exc.properties, f"{path}.properties")
            if ff.funnelOrderType == "unordered":
                raise InvalidQuery(
                    f"{path}: exclusions are not supported in unordered funnels", field=path
                )
            if not exc.funnelFromStep < exc.funnelToStep < steps:
                raise InvalidQuery(
                    f"{path}.funnelToStep: need 0 <= funnelFromStep < funnelToStep <= {steps - 1}",
                    field=f"{path}.funnelToStep",
                )
        if ff.breakdownAttributionType == "step":
            value = ff.breakdownAttributionValue
            if value is None or value >= steps:
                raise InvalidQuery(
                    f"funnelsFilter.breakdownAttributionValue: step attribution needs a step "
                    f"index 0..{steps - 1}",
                    field="funnelsFilter.breakdownAttributionValue",
                )
    if isinstance(query, TrendsQuery) and query.trendsFilter and query.trendsFilter.formula:
        from eventlens.query.formula import check_formula

        check_formula(query.trendsFilter.formula, len(query.series))
    if isinstance(query, TrendsQuery | FunnelsQuery):
        bf = query.breakdownFilter
        if bf is not None and bf.breakdown is not None and not bf.breakdown:
            raise InvalidQuery(
                "breakdownFilter.breakdown: must not be empty", field="breakdownFilter.breakdown"
            )
    # Dates are resolved later, but a malformed one should fail at parse time too.
    from eventlens.query.dates import check_date_range

    check_date_range(query.dateRange)


def _check_properties(
    props: list[PropertyFilter | PropertyGroup] | PropertyGroup, path: str
) -> None:
    if isinstance(props, PropertyGroup):
        _check_properties(props.values, f"{path}.values")
        return
    for i, item in enumerate(props):
        item_path = f"{path}[{i}]"
        if isinstance(item, PropertyGroup):
            _check_properties(item.values, f"{item_path}.values")
            continue
        _check_filter(item, item_path)


def _check_filter(f: PropertyFilter, path: str) -> None:
    if f.operator in ("regex", "not_regex"):
        if not isinstance(f.value, str):
            raise InvalidQuery(f"{path}.value: a regex must be a string", field=f"{path}.value")
        try:
            re2.compile(f.value)
        except re2.error as exc:
            reason = exc.args[0] if exc.args else exc
            if isinstance(reason, bytes):
                reason = reason.decode(errors="replace")
            raise InvalidQuery(
                f"{path}.value: invalid RE2 regular expression: {reason}", field=f"{path}.value"
            ) from None
    elif f.operator not in ("exact", "is_not", "is_set", "is_not_set"):
        if isinstance(f.value, list | dict) or f.value is None:
            raise InvalidQuery(
                f"{path}.value: operator {f.operator!r} needs a single value",
                field=f"{path}.value",
            )
    elif f.operator in ("exact", "is_not") and (f.value is None or isinstance(f.value, dict)):
        raise InvalidQuery(
            f"{path}.value: operator {f.operator!r} needs a value or a list of values",
            field=f"{path}.value",
        )

"""The insight query model: PostHog's query JSON for the subset EventLens supports (insights.md).

`parse_query(obj)` turns a JSON object into one of the five query models. Every model forbids
unknown fields, so an option we do not implement is a 400 naming it instead of being ignored.
All user errors are raised as `eventlens.errors.InvalidQuery` with `field` set to the path of the
offending input in PostHog's notation, e.g. `series[0].math`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias

import orjson
import re2
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    Tag,
    ValidationError,
)

from eventlens.errors import InvalidQuery
from eventlens.query.regex import compile_pattern

# Size limits, checked before anything runs (docs/api.md "Limits"); each 400 names the field and
# its limit. Generous for real queries, small enough that no query is expensive by size alone.
MAX_TEXT = 1000  # event names, property keys, labels, breakdown keys
MAX_DATE_TEXT = 64  # dateRange.date_from / date_to
MAX_VALUE_TEXT = 10_000  # one filter value as text
MAX_VALUES = 1000  # items in one filter's value list
MAX_FILTERS = 200  # filters or groups in one properties list
MAX_GROUP_DEPTH = 10  # AND/OR property groups nested in each other
MAX_JSON_DEPTH = 64  # any JSON nesting in the query object
MAX_EXCLUSIONS = 20
MAX_COHORT_BREAKDOWNS = 25  # cohorts in one cohort breakdown (each is one engine pass)
# Funnel conversion windows: at most ten years, in whatever unit (a month counts 30 days).
MAX_WINDOW_DAYS = 3650
# Window units as fixed durations (ClickHouse windowFunnel counts seconds); a month is 30 days.
WINDOW_SECONDS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86_400,
    "week": 7 * 86_400,
    "month": 30 * 86_400,
}

Text = Annotated[str, Field(max_length=MAX_TEXT)]

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


# A field of PostHog's schema that only changes how the answer is drawn (colours, legends, axis
# formats ...): accepted as any JSON value, kept in the model (so a saved insight round-trips it)
# and never read by an engine. docs/api.md "PostHog's query fields" lists them. The marker lets
# the result cache leave these fields out of its key (`answer_fields`): two queries that differ
# only in how they are drawn share one cached answer.
class _PresentationOnly:
    """Metadata marking a model field as presentation-only (see `answer_fields`)."""

    def __repr__(self) -> str:
        return "PRESENTATION_ONLY"


PRESENTATION_ONLY = _PresentationOnly()
Presentation: TypeAlias = Annotated[JsonValue, PRESENTATION_ONLY]


def answer_fields(value: object) -> object:
    """`value` (a query model, or any value inside one) as JSON without the presentation-only
    fields, recursively: what determines the answer. Field names are kept as declared; null
    fields and options objects left empty are dropped, so `trendsFilter: {showLegend: true}`
    and no trendsFilter at all are the same answer."""
    if isinstance(value, BaseModel):
        out: dict[str, object] = {}
        for name, info in type(value).model_fields.items():
            if PRESENTATION_ONLY in info.metadata:
                continue
            inner = answer_fields(getattr(value, name))
            if inner is not None and inner != {}:
                out[name] = inner
        return out
    if isinstance(value, list | tuple):
        return [answer_fields(v) for v in value]
    if isinstance(value, dict):
        return {str(k): answer_fields(v) for k, v in value.items()}
    if isinstance(value, frozenset | set):
        return sorted((answer_fields(v) for v in value), key=repr)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


class PropertyFilter(_Model):
    """One property filter; `type` says whether `key` is read from the event or the person."""

    key: str = Field(min_length=1, max_length=MAX_TEXT)
    value: JsonValue = None
    # "in" / "not_in": cohort filters only (type "cohort", key "id", value the cohort id).
    operator: Literal[Operator, "in", "not_in"] = "exact"
    type: Literal["event", "person", "cohort"] = "event"
    label: Presentation = None

    @property
    def cohort_id(self) -> int:
        """A cohort filter's cohort id (check_filter made sure it is one)."""
        value = self.value
        return int(value) if isinstance(value, int | str) and not isinstance(value, bool) else 0


def _property_item_tag(value: object) -> str:
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
    values: list[PropertyItem] = Field(max_length=MAX_FILTERS)


PropertyGroup.model_rebuild()


def _properties_tag(value: object) -> str:
    return "PropertyGroup" if isinstance(value, dict | PropertyGroup) else "PropertyList"


# A plain list is an AND of its items; a group may nest AND/OR; null (PostHog sends it) = [].
Properties = Annotated[
    Annotated[list[PropertyItem], Tag("PropertyList"), Field(max_length=MAX_FILTERS)]
    | Annotated[PropertyGroup, Tag("PropertyGroup")],
    Discriminator(_properties_tag),
    BeforeValidator(lambda v: [] if v is None else v),
]


class EventsNode(_Model):
    """One series (trends, stickiness, lifecycle) or step (funnels). `event=None` = all events."""

    kind: Literal["EventsNode"] = "EventsNode"
    event: Text | None = None
    name: Text | None = None
    custom_name: Text | None = None
    math: MathType = "total"
    math_property: Text | None = None
    properties: Properties = Field(default_factory=list)
    # PostHog's other EntityNode fields. Answer-changing ones are checked in _check_node.
    version: Presentation = None
    response: Presentation = None
    math_property_type: Presentation = None  # taxonomy hint for the UI
    math_hogql: JsonValue = None
    math_group_type_index: JsonValue = None
    math_multiplier: JsonValue = None
    math_property_revenue_currency: JsonValue = None
    fixedProperties: JsonValue = None
    optionalInFunnel: JsonValue = None
    limit: Presentation = None  # events-list options; insights do not list events
    orderBy: Presentation = None


class DateRange(_Model):
    """Absolute ISO dates/times or relative strings (-7d, -24h, mStart, all ...); see dates.py."""

    date_from: Annotated[str, Field(max_length=MAX_DATE_TEXT)] | None = None
    date_to: Annotated[str, Field(max_length=MAX_DATE_TEXT)] | None = None
    # PostHog's explicitDate=true (use the instants exactly, no day rounding) is not supported.
    explicitDate: Literal[False] | None = None


# A cohort breakdown's list of cohort ids (0 or "all": every person, as PostHog).
CohortIds = Annotated[
    list[Annotated[int, Field(ge=0, le=2**63 - 1)] | Literal["all"]],
    Field(min_length=1, max_length=MAX_COHORT_BREAKDOWNS),
]


class BreakdownFilter(_Model):
    breakdown: Text | CohortIds | None = None
    breakdown_type: Literal["event", "person", "cohort"] = "event"
    breakdown_limit: int = Field(default=25, ge=1, le=10_000)
    # Answer-changing options not implemented yet: accepted only at their neutral value
    # (_check_breakdown), else a 400 "not supported yet" naming the field.
    breakdowns: JsonValue = None
    breakdown_normalize_url: JsonValue = None
    breakdown_path_cleaning: JsonValue = None
    breakdown_group_type_index: JsonValue = None
    breakdown_histogram_bin_count: JsonValue = None
    breakdown_hide_other_aggregation: JsonValue = None


class CompareFilter(_Model):
    """PostHog's compare-to-previous-period; only `compare: false` is supported yet."""

    compare: JsonValue = None
    compare_to: JsonValue = None


class TrendsFilter(_Model):
    formula: str | None = None
    display: JsonValue = None  # shapes other than a time series: posthog_fields
    smoothingIntervals: JsonValue = None
    formulas: JsonValue = None
    formulaNodes: JsonValue = None
    breakdown_histogram_bin_count: JsonValue = None
    showLegend: Presentation = None
    legendPosition: Presentation = None
    showAlertThresholdLines: Presentation = None
    aggregationAxisFormat: Presentation = None
    aggregationAxisPrefix: Presentation = None
    aggregationAxisPostfix: Presentation = None
    decimalPlaces: Presentation = None
    minDecimalPlaces: Presentation = None
    xAxisLabel: Presentation = None
    yAxisLabel: Presentation = None
    showValuesOnSeries: Presentation = None
    showLabelsOnSeries: Presentation = None
    showPercentStackView: Presentation = None
    stackBreakdownValues: Presentation = None
    yAxisScaleType: Presentation = None
    showMultipleYAxes: Presentation = None
    hiddenLegendIndexes: Presentation = None
    resultCustomizationBy: Presentation = None
    resultCustomizations: Presentation = None
    goalLines: Presentation = None
    showConfidenceIntervals: Presentation = None
    confidenceLevel: Presentation = None
    showTrendLines: Presentation = None
    showMovingAverage: Presentation = None
    movingAverageIntervals: Presentation = None
    detailedResultsAggregationType: Presentation = None
    excludeBoxPlotOutliers: Presentation = None
    hideWeekends: Presentation = None
    showAnnotations: Presentation = None
    metricShowChange: Presentation = None
    metricChangeIncreaseColor: Presentation = None
    metricChangeDecreaseColor: Presentation = None
    metricColorByDirection: Presentation = None
    metricLineIncreaseColor: Presentation = None
    metricLineDecreaseColor: Presentation = None
    metricSummary: Presentation = None


class FunnelExclusion(_Model):
    """An event that, between steps funnelFromStep and funnelToStep (0-based), drops the person."""

    kind: Literal["EventsNode"] = "EventsNode"
    event: Text | None
    name: Text | None = None
    custom_name: Text | None = None
    properties: Properties = Field(default_factory=list)
    version: Presentation = None
    response: Presentation = None
    math: Presentation = None  # an exclusion matches events; PostHog ignores its math
    math_property: Presentation = None
    math_property_type: Presentation = None
    funnelFromStep: int = Field(ge=0, le=100)
    funnelToStep: int = Field(ge=1, le=100)


class FunnelsFilter(_Model):
    funnelWindowInterval: int = Field(default=14, ge=1)  # bounded per unit (_check_semantics)
    funnelWindowIntervalUnit: Literal["second", "minute", "hour", "day", "week", "month"] = "day"
    funnelOrderType: Literal["ordered", "strict", "unordered"] = "ordered"
    # steps, time_to_convert and trends are computed; flow is a 400 (_check_supported).
    funnelVizType: Literal["steps", "trends", "time_to_convert", "flow"] = "steps"
    exclusions: list[FunnelExclusion] = Field(default_factory=list, max_length=MAX_EXCLUSIONS)
    breakdownAttributionType: Literal["first_touch", "last_touch", "all_events", "step"] = (
        "first_touch"
    )
    breakdownAttributionValue: int | None = Field(default=None, ge=0, le=100)
    # PostHog's runner never reads these two: its frontend derives the conversion rate against
    # step 1 ("total") or the previous step from the same counts; EventLens returns both rates.
    funnelStepReference: Presentation = None
    layout: Presentation = None  # vertical / horizontal bars: same numbers
    # time_to_convert view: the histogram's bin count (PostHog clamps it to 1..90; None = auto)
    binCount: int | None = Field(default=None, ge=-(2**31), le=2**31)
    hiddenLegendBreakdowns: Presentation = None
    resultCustomizations: Presentation = None
    goalLines: Presentation = None
    showTrendLines: Presentation = None
    showLegend: Presentation = None
    legendPosition: Presentation = None
    showValuesOnSeries: Presentation = None
    breakdownSorting: Presentation = None
    showAnnotations: Presentation = None
    hideIncompleteConversionWindowPeriods: Presentation = None  # trends view only
    useUdf: Presentation = None  # ClickHouse execution choice, same answer
    funnelAggregateByHogQL: JsonValue = None
    customAggregationTarget: JsonValue = None
    # The step range of the trends / time_to_convert views (0-based). PostHog checks the range
    # whatever the view, and the steps view does not read it (_check_semantics checks it too).
    funnelFromStep: int | None = Field(default=None, ge=0, le=100)
    funnelToStep: int | None = Field(default=None, ge=1, le=100)


class RetentionEntity(_Model):
    """A retention start or return event. `id: null` is PostHog's "All events" (its UI sends
    `{"id": null, "type": "events", "name": "All events"}`): every event matches, the entity's
    `properties` still apply. An empty `id` is refused (it would name no event, so every count
    would silently be zero)."""

    id: Text | None = None
    name: Text | None = None
    type: Literal["events"] = "events"
    kind: Literal["EventsNode"] | None = None
    custom_name: Text | None = None
    order: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)
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
    # PostHog marks these "frontend only": the cohort counts are the same, the UI derives them.
    meanRetentionCalculation: Presentation = None
    retentionReference: Presentation = None
    display: Presentation = None
    dashboardDisplay: Presentation = None
    showTrendLines: Presentation = None
    selectedInterval: Presentation = None
    goalLines: Presentation = None
    cohortLabelStartIndex: Presentation = None
    # cumulative: a member counts in period k if they returned in k or any later period.
    cumulative: bool | None = None
    # A return counts only in a period holding at least this many return events.
    minimumOccurrences: int | None = Field(default=None, ge=1, le=1_000_000)
    timeWindowMode: JsonValue = None
    retentionCustomBrackets: JsonValue = None
    aggregationType: JsonValue = None
    aggregationProperty: JsonValue = None
    aggregationPropertyType: JsonValue = None
    customAggregationTarget: JsonValue = None


class StickinessFilter(_Model):
    display: Presentation = None
    showLegend: Presentation = None
    legendPosition: Presentation = None
    showValuesOnSeries: Presentation = None
    showMultipleYAxes: Presentation = None
    hiddenLegendIndexes: Presentation = None
    resultCustomizationBy: Presentation = None
    resultCustomizations: Presentation = None
    stickinessCriteria: JsonValue = None
    computedAs: JsonValue = None


class LifecycleFilter(_Model):
    # toggledLifecycles hides statuses in the chart; PostHog still returns all four.
    toggledLifecycles: Presentation = None
    showValuesOnSeries: Presentation = None
    showPercentagesOnSeries: Presentation = None
    showLegend: Presentation = None
    legendPosition: Presentation = None
    stacked: Presentation = None


class _Query(_Model):
    dateRange: DateRange = Field(default_factory=DateRange)
    properties: Properties = Field(default_factory=list)
    # Accepted only as false (or null): there is no project list of test-account filters yet.
    filterTestAccounts: JsonValue = False
    # InsightsQueryBase fields. Presentation / execution hints are kept untouched; the others
    # are accepted at their neutral value only (_check_base).
    version: Presentation = None
    response: Presentation = None
    tags: Presentation = None
    dataColorTheme: Presentation = None
    modifiers: Presentation = None  # HogQL execution modifiers: no HogQL here
    samplingFactor: JsonValue = None
    aggregation_group_type_index: JsonValue = None


class TrendsQuery(_Query):
    kind: Literal["TrendsQuery"] = "TrendsQuery"
    series: list[EventsNode] = Field(min_length=1, max_length=26)
    interval: Interval = "day"
    breakdownFilter: BreakdownFilter | None = None
    trendsFilter: TrendsFilter | None = None
    compareFilter: CompareFilter | None = None
    calendarHeatmapFilter: Presentation = None  # read only by display CalendarHeatmap
    conversionGoal: JsonValue = None


class FunnelsQuery(_Query):
    kind: Literal["FunnelsQuery"] = "FunnelsQuery"
    series: list[EventsNode] = Field(min_length=2, max_length=20)
    # PostHog sends it for the trends view of a funnel; the steps view does not bucket by time.
    interval: Interval = "day"
    breakdownFilter: BreakdownFilter | None = None
    funnelsFilter: FunnelsFilter = Field(default_factory=FunnelsFilter)
    compareFilter: CompareFilter | None = None


class RetentionQuery(_Query):
    kind: Literal["RetentionQuery"] = "RetentionQuery"
    retentionFilter: RetentionFilter = Field(default_factory=RetentionFilter)
    breakdownFilter: BreakdownFilter | None = None


class StickinessQuery(_Query):
    kind: Literal["StickinessQuery"] = "StickinessQuery"
    series: list[EventsNode] = Field(min_length=1, max_length=26)
    interval: Interval = "day"
    intervalCount: JsonValue = None
    stickinessFilter: StickinessFilter | None = None
    compareFilter: CompareFilter | None = None


class LifecycleQuery(_Query):
    kind: Literal["LifecycleQuery"] = "LifecycleQuery"
    series: list[EventsNode] = Field(min_length=1, max_length=1)
    interval: Interval = "day"
    lifecycleFilter: LifecycleFilter | None = None
    customAggregationTarget: JsonValue = None


# -- paths (docs/semantics.md "Paths") --------------------------------------------------------
PathType = Literal["$pageview", "$screen", "custom_event", "hogql"]
MAX_PATH_STEPS = 20  # PostHog's UI offers up to 20 steps
MAX_PATH_EDGES = 10_000
MAX_PATH_RULES = 100  # groupings or cleaning filters in one query (or project)


class PathCleaningFilter(_Model):
    """PostHog's path cleaning rule: every match of `regex` (RE2) in a node name is replaced by
    `alias` (literally)."""

    alias: Text | None = None
    regex: Annotated[str, Field(max_length=MAX_TEXT)] | None = None
    order: Presentation = None  # the list order is the order rules apply in


class PathsFilter(_Model):
    includeEventTypes: list[PathType] | None = Field(default=None, max_length=4)
    startPoint: Text | None = None
    endPoint: Text | None = None
    stepLimit: int = Field(default=5, ge=2, le=MAX_PATH_STEPS)
    edgeLimit: int = Field(default=50, ge=1, le=MAX_PATH_EDGES)
    minEdgeWeight: int | None = Field(default=None, ge=0)
    maxEdgeWeight: int | None = Field(default=None, ge=0)
    excludeEvents: list[Text] = Field(default_factory=list, max_length=MAX_VALUES)
    pathGroupings: list[Text] = Field(default_factory=list, max_length=MAX_PATH_RULES)
    localPathCleaningFilters: list[PathCleaningFilter] | None = Field(
        default=None, max_length=MAX_PATH_RULES
    )
    pathReplacements: bool | None = None
    # Selectors of the persons behind an edge or a drop-off (actors); the insight ignores them.
    pathStartKey: Text | None = None
    pathEndKey: Text | None = None
    pathDropoffKey: Text | None = None
    pathsHogQLExpression: JsonValue = None  # accepted only when empty (no HogQL here)
    showFullUrls: Presentation = None


class FunnelPathsFilter(_Model):
    funnelPathType: Literal[
        "funnel_path_before_step", "funnel_path_after_step", "funnel_path_between_steps"
    ]
    funnelStep: int = Field(ge=-20, le=20)
    funnelSource: FunnelsQuery


class PathsQuery(_Query):
    kind: Literal["PathsQuery"] = "PathsQuery"
    pathsFilter: PathsFilter = Field(default_factory=PathsFilter)
    funnelPathsFilter: FunnelPathsFilter | None = None


InsightQuery = (
    TrendsQuery | FunnelsQuery | RetentionQuery | StickinessQuery | LifecycleQuery | PathsQuery
)

QUERY_KINDS: dict[str, type[_Query]] = {
    "TrendsQuery": TrendsQuery,
    "FunnelsQuery": FunnelsQuery,
    "RetentionQuery": RetentionQuery,
    "StickinessQuery": StickinessQuery,
    "LifecycleQuery": LifecycleQuery,
    "PathsQuery": PathsQuery,
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
            f"kind must be one of {', '.join(QUERY_KINDS)}, got {repr(kind)[:200]}", field="kind"
        )
    _check_json_depth(obj)
    try:
        query: InsightQuery = model.model_validate(obj)  # type: ignore[assignment]
    except ValidationError as exc:
        raise _invalid_from(exc) from None
    _check_semantics(query)
    return query


def _check_json_depth(obj: object) -> None:
    """InvalidQuery if the raw query nests deeper than MAX_JSON_DEPTH: validation recurses, so
    depth must be bounded before it runs. Iterative, so the check itself cannot recurse."""
    stack: list[tuple[object, int, str]] = [(obj, 0, "")]
    while stack:
        item, depth, path = stack.pop()
        if depth > MAX_JSON_DEPTH:
            top = path.split(".")[0].split("[")[0] or None
            raise InvalidQuery(
                f"{top or 'query'}: nested more than {MAX_JSON_DEPTH} levels deep",
                field=top,
            )
        if isinstance(item, dict):
            stack.extend((v, depth + 1, f"{path}.{k}" if path else str(k)) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, depth + 1, f"{path}[{i}]") for i, v in enumerate(item))


def _check_semantics(query: InsightQuery) -> None:
    """Rules a field type cannot express: regexes compile, steps exist, maths fit the kind."""
    # posthog_fields imports the models defined here, hence the import at call time.
    from eventlens.query.posthog_fields import check_supported

    check_supported(query)
    _check_properties(query.properties, "properties")
    if isinstance(query, RetentionQuery):
        rf = query.retentionFilter
        for name in ("targetEntity", "returningEntity"):
            if getattr(rf, name).id == "":
                raise InvalidQuery(
                    f"retentionFilter.{name}.id is empty: name an event, or send null for all "
                    'events (PostHog\'s "All events")',
                    field=f"retentionFilter.{name}.id",
                )
        _check_properties(rf.targetEntity.properties, "retentionFilter.targetEntity.properties")
        _check_properties(
            rf.returningEntity.properties, "retentionFilter.returningEntity.properties"
        )
    elif isinstance(query, PathsQuery):
        _check_paths(query)
    else:
        for i, node in enumerate(query.series):
            _check_properties(node.properties, f"series[{i}].properties")
            if node.math in PROPERTY_MATHS and not node.math_property:
                raise InvalidQuery(
                    f"series[{i}].math_property: math {node.math!r} needs a math_property",
                    field=f"series[{i}].math_property",
                )
            # PostHog's stickiness counts persons whatever the math; its UI sends "dau" there.
            allowed = ("total", "dau") if isinstance(query, StickinessQuery) else ("total",)
            if not isinstance(query, TrendsQuery) and node.math not in allowed:
                raise InvalidQuery(
                    f"series[{i}].math: {node.math!r} is not supported in a {query.kind}",
                    field=f"series[{i}].math",
                )
    if isinstance(query, FunnelsQuery):
        ff = query.funnelsFilter
        unit = ff.funnelWindowIntervalUnit
        most = MAX_WINDOW_DAYS * 86_400 // WINDOW_SECONDS[unit]
        if ff.funnelWindowInterval > most:
            in_unit = "" if unit == "day" else f" ({most} {unit}s)"
            raise InvalidQuery(
                f"funnelsFilter.funnelWindowInterval: a conversion window is at most "
                f"{MAX_WINDOW_DAYS} days{in_unit}, got {ff.funnelWindowInterval} {unit}s",
                field="funnelsFilter.funnelWindowInterval",
            )
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
        lo, hi = ff.funnelFromStep, ff.funnelToStep
        if lo is not None and lo > steps - 2:
            raise InvalidQuery(
                f"funnelsFilter.funnelFromStep: must be 0..{steps - 2}, got {lo}",
                field="funnelsFilter.funnelFromStep",
            )
        if hi is not None and (hi > steps - 1 or (lo is not None and lo >= hi)):
            raise InvalidQuery(
                f"funnelsFilter.funnelToStep: must be {(lo or 0) + 1}..{steps - 1}, got {hi}",
                field="funnelsFilter.funnelToStep",
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
    if isinstance(query, TrendsQuery | FunnelsQuery | RetentionQuery):
        _check_cohort_breakdown(query.breakdownFilter)
    if isinstance(query, TrendsQuery | FunnelsQuery):
        bf = query.breakdownFilter
        if bf is not None and bf.breakdown is not None and not bf.breakdown:
            raise InvalidQuery(
                "breakdownFilter.breakdown: must not be empty", field="breakdownFilter.breakdown"
            )
    # Dates are resolved later, but a malformed one should fail at parse time too.
    from eventlens.query.dates import check_date_range

    check_date_range(query.dateRange)


def _check_paths(query: PathsQuery) -> None:
    """Paths options a field type cannot express: regexes compile, weights are ordered, the
    funnel step exists, the funnel source is itself a valid funnel."""
    pf = query.pathsFilter
    if "hogql" in (pf.includeEventTypes or []):
        raise InvalidQuery(
            "pathsFilter.includeEventTypes: 'hogql' paths are not supported yet (no HogQL here)",
            field="pathsFilter.includeEventTypes",
        )
    if pf.pathsHogQLExpression not in (None, ""):
        raise InvalidQuery(
            "pathsFilter.pathsHogQLExpression: not supported yet (no HogQL here)",
            field="pathsFilter.pathsHogQLExpression",
        )
    check_path_cleaning(pf.localPathCleaningFilters or [], "pathsFilter.localPathCleaningFilters")
    for i, pattern in enumerate(pf.pathGroupings):
        compile_pattern(grouping_regex(pattern), f"pathsFilter.pathGroupings[{i}]")
    lo, hi = pf.minEdgeWeight, pf.maxEdgeWeight
    if lo is not None and hi is not None and lo > hi:
        raise InvalidQuery(
            f"pathsFilter.maxEdgeWeight: must be >= minEdgeWeight ({lo}), got {hi}",
            field="pathsFilter.maxEdgeWeight",
        )
    fp = query.funnelPathsFilter
    if fp is None:
        return
    source = fp.funnelSource
    steps = len(source.series)
    n = fp.funnelStep
    path = "funnelPathsFilter.funnelStep"
    if n == 0 or abs(n) > steps:
        raise InvalidQuery(f"{path}: must be 1..{steps} or -{steps}..-2, got {n}", field=path)
    if n == -1:
        raise InvalidQuery(f"{path}: nobody drops off before step 1 (use -2..-{steps})", field=path)
    if fp.funnelPathType == "funnel_path_between_steps" and n == 1:
        raise InvalidQuery(f"{path}: between steps needs a step after the first", field=path)
    prefix = "funnelPathsFilter.funnelSource"
    if source.breakdownFilter is not None and source.breakdownFilter.breakdown is not None:
        raise InvalidQuery(
            f"{prefix}.breakdownFilter: funnel paths of a broken-down funnel are not supported",
            field=f"{prefix}.breakdownFilter",
        )
    if source.dateRange != DateRange() and source.dateRange != query.dateRange:
        raise InvalidQuery(
            f"{prefix}.dateRange: the funnel runs over the paths query's dateRange; leave it out "
            "or send the same one",
            field=f"{prefix}.dateRange",
        )
    try:
        _check_semantics(source)
    except InvalidQuery as exc:
        field = f"{prefix}.{exc.field}" if exc.field else prefix
        raise InvalidQuery(f"{prefix}.{exc.message}", field=field) from None


def grouping_regex(pattern: str) -> str:
    """A pathGroupings pattern as an RE2 pattern for a full match: `*` matches any run of
    characters (slashes too), everything else literally."""
    return ".*".join(re2.escape(part) for part in pattern.split("*"))


def check_path_cleaning(filters: list[PathCleaningFilter], path: str) -> None:
    """Every rule has a regex that compiles under RE2's bounds; InvalidQuery naming it."""
    for i, f in enumerate(filters):
        if f.regex is None or f.regex == "":
            raise InvalidQuery(
                f"{path}[{i}].regex: a cleaning rule needs a regex", field=f"{path}[{i}].regex"
            )
        compile_pattern(f.regex, f"{path}[{i}].regex")


def _check_cohort_breakdown(bf: BreakdownFilter | None) -> None:
    """A list breakdown is a cohort breakdown, and a cohort breakdown is a list of ids."""
    if bf is None:
        return
    is_list = isinstance(bf.breakdown, list)
    if bf.breakdown_type == "cohort" and not is_list:
        raise InvalidQuery(
            "breakdownFilter.breakdown: a cohort breakdown is a list of cohort ids",
            field="breakdownFilter.breakdown",
        )
    if is_list and bf.breakdown_type != "cohort":
        raise InvalidQuery(
            'breakdownFilter.breakdown: a list of cohort ids needs breakdown_type "cohort"',
            field="breakdownFilter.breakdown",
        )
    if is_list and bf.breakdowns not in (None, []):
        raise InvalidQuery(
            "breakdownFilter.breakdowns: give either a cohort breakdown or breakdowns",
            field="breakdownFilter.breakdowns",
        )


def cohort_breakdown(bf: BreakdownFilter | None) -> list[int] | None:
    """A cohort breakdown's cohort ids in query order ("all" is 0), None for any other."""
    if bf is None or bf.breakdown_type != "cohort" or not isinstance(bf.breakdown, list):
        return None
    return [0 if v == "all" else int(v) for v in bf.breakdown]


def cohort_ids(props: list[PropertyFilter | PropertyGroup] | PropertyGroup) -> set[int]:
    """Every cohort id a filter list or group names."""
    out: set[int] = set()
    items = props.values if isinstance(props, PropertyGroup) else props
    for item in items:
        if isinstance(item, PropertyGroup):
            out |= cohort_ids(item)
        elif item.type == "cohort":
            out.add(item.cohort_id)
    return out


def _check_properties(
    props: list[PropertyFilter | PropertyGroup] | PropertyGroup, path: str
) -> None:
    """Every filter under `path` is valid, and groups nest at most MAX_GROUP_DEPTH deep."""
    # (items, their path, how many groups enclose them); iterative, depth is checked first.
    todo: list[tuple[list[PropertyFilter | PropertyGroup], str, int]] = []
    if isinstance(props, PropertyGroup):
        todo.append((props.values, f"{path}.values", 1))
    else:
        todo.append((props, path, 0))
    while todo:
        items, items_path, depth = todo.pop()
        if depth > MAX_GROUP_DEPTH:
            raise InvalidQuery(
                f"{path}: property groups nest at most {MAX_GROUP_DEPTH} levels deep",
                field=path,
            )
        for i, item in enumerate(items):
            item_path = f"{items_path}[{i}]"
            if isinstance(item, PropertyGroup):
                todo.append((item.values, f"{item_path}.values", depth + 1))
            else:
                check_filter(item, item_path)


def check_filter(f: PropertyFilter, path: str) -> None:
    """InvalidQuery naming `path...` if the filter's operator and value do not fit."""
    if f.type == "cohort":
        _check_cohort_filter(f, path)
        return
    if f.operator in ("in", "not_in"):
        raise InvalidQuery(
            f"{path}.operator: {f.operator!r} applies to cohort filters only",
            field=f"{path}.operator",
        )
    _check_value_size(f.value, f"{path}.value")
    if f.operator in ("regex", "not_regex"):
        if not isinstance(f.value, str):
            raise InvalidQuery(f"{path}.value: a regex must be a string", field=f"{path}.value")
        compile_pattern(f.value, f"{path}.value")
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


def _check_cohort_filter(f: PropertyFilter, path: str) -> None:
    # PostHog's cohort filter: {"type": "cohort", "key": "id", "value": <id>, "operator": "in"};
    # its older UI sends no operator (here the default "exact"), which means "in".
    if f.key != "id":
        raise InvalidQuery(f'{path}.key: a cohort filter\'s key is "id"', field=f"{path}.key")
    if f.operator not in ("in", "not_in", "exact"):
        raise InvalidQuery(
            f"{path}.operator: a cohort filter's operator is in or not_in", field=f"{path}.operator"
        )
    value = f.value
    if isinstance(value, str) and value.isdigit() and len(value) < 19:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**63:
        raise InvalidQuery(
            f"{path}.value: a cohort filter's value is a cohort id", field=f"{path}.value"
        )


def _check_value_size(value: object, field: str) -> None:
    """A filter value: at most MAX_VALUES items, each at most MAX_VALUE_TEXT characters as text
    and its JSON text (how it is compared) representable."""
    items = value if isinstance(value, list) else [value]
    if len(items) > MAX_VALUES:
        raise InvalidQuery(
            f"{field}: a filter has at most {MAX_VALUES} values, got {len(items)}", field=field
        )
    for item in items:
        if isinstance(item, str) and len(item) > MAX_VALUE_TEXT:
            raise InvalidQuery(
                f"{field}: a filter value is at most {MAX_VALUE_TEXT} characters", field=field
            )
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        # Values are compared as their JSON text, which has no integers beyond 64 bits.
        raise InvalidQuery(
            f"{field}: an integer in a filter value must lie within -2^63 .. 2^64-1",
            field=field,
        ) from None


# PostHog's DashboardFilter, as sent in the /query envelope's `filters_override`.
_OVERRIDE_KEYS = ("date_from", "date_to", "explicitDate", "properties", "breakdown_filter")


def apply_filters_override(query: Any, override: Any) -> Any:
    """The query JSON with PostHog's `filters_override` (a DashboardFilter) applied, as PostHog
    applies dashboard filters: `date_from` / `date_to` / `explicitDate` replace the query's
    dateRange values that are given (non-null), `properties` are ANDed with the query's
    properties, `breakdown_filter` replaces the query's breakdownFilter (trends and funnels).

    Raises InvalidQuery (field `filters_override...`) for anything else. `query` is returned
    unchanged if it is not an object (parse_query reports that) or the override is empty.
    """
    if override is None or not isinstance(query, dict):
        return query
    if not isinstance(override, dict):
        raise InvalidQuery("filters_override must be a JSON object", field="filters_override")
    for key in override:
        if key not in _OVERRIDE_KEYS:
            raise InvalidQuery(
                f"filters_override.{key}: not supported yet (supported: "
                f"{', '.join(_OVERRIDE_KEYS)})",
                field=f"filters_override.{key}",
            )
    out = dict(query)
    date_range = dict(out.get("dateRange") or {})
    for key in ("date_from", "date_to", "explicitDate"):
        if override.get(key) is not None:
            date_range[key] = override[key]
    if date_range:
        out["dateRange"] = date_range
    props = override.get("properties")
    if props:
        if not isinstance(props, list):
            raise InvalidQuery(
                "filters_override.properties: must be a list of property filters",
                field="filters_override.properties",
            )
        own = out.get("properties")
        if not own:
            out["properties"] = props
        else:
            out["properties"] = {
                "type": "AND",
                "values": [
                    own if isinstance(own, dict) else {"type": "AND", "values": own},
                    {"type": "AND", "values": props},
                ],
            }
    breakdown = override.get("breakdown_filter")
    if breakdown is not None:
        if out.get("kind") not in ("TrendsQuery", "FunnelsQuery"):
            raise InvalidQuery(
                f"filters_override.breakdown_filter: not supported for a {out.get('kind')}",
                field="filters_override.breakdown_filter",
            )
        out["breakdownFilter"] = breakdown
    return out


# -- ActorsQuery: the persons behind a number (docs/api.md "Actors") ---------------------------

MAX_ACTORS_LIMIT = 10_000
MAX_ACTORS_OFFSET = 10_000_000
MAX_SEARCH = 200


class InsightActorsQuery(_Model):
    """PostHog's InsightActorsQuery: which point of `source` (an insight query, parsed by
    `parse_query`) to list the persons of. Which fields apply depends on the source's kind
    (eventlens.query.semantics.actors resolves them against the insight's answer)."""

    kind: Literal["InsightActorsQuery"] = "InsightActorsQuery"
    source: dict[str, JsonValue]
    day: str | int | None = None
    series: int | None = Field(default=None, ge=0, le=1000)
    breakdown: JsonValue = None
    compare: Literal["current", "previous"] | None = None
    status: str | None = Field(default=None, max_length=MAX_TEXT)
    interval: int | None = Field(default=None, ge=0, le=100_000)
    funnelStep: int | None = Field(default=None, ge=-100, le=100)
    funnelStepBreakdown: JsonValue = None
    includeRecordings: Presentation = None
    modifiers: Presentation = None
    response: Presentation = None
    version: Presentation = None
    tags: Presentation = None


class ActorsQuery(_Model):
    """PostHog's ActorsQuery: persons of an insight point (`source`), or of the project
    (`source` null), filtered by `search` and person `properties`, one page in person id order."""

    kind: Literal["ActorsQuery"] = "ActorsQuery"
    source: InsightActorsQuery | None = None
    search: str | None = Field(default=None, max_length=MAX_SEARCH)
    properties: Properties = Field(default_factory=list)
    limit: int = Field(default=100, ge=1, le=MAX_ACTORS_LIMIT)
    offset: int = Field(default=0, ge=0, le=MAX_ACTORS_OFFSET)
    # PostHog's UI names its columns; EventLens answers the one column "person".
    select: Presentation = None
    orderBy: Presentation = None
    modifiers: Presentation = None
    response: Presentation = None
    version: Presentation = None
    tags: Presentation = None


def parse_actors_query(obj: Any) -> ActorsQuery:
    """Validate an ActorsQuery JSON object. InvalidQuery (field = path) for a wrong field, a
    limit outside 1..MAX_ACTORS_LIMIT, or a `properties` filter that is not on persons. The
    source insight is parsed later (`parse_query(source.source)`), so its errors name
    `source.source.<field>`."""
    if not isinstance(obj, dict):
        raise InvalidQuery("query must be a JSON object", field=None)
    _check_json_depth(obj)
    try:
        query = ActorsQuery.model_validate(obj)
    except ValidationError as exc:
        raise _invalid_from(exc) from None
    _check_properties(query.properties, "properties")
    for f in _leaf_filters(query.properties):
        if f.type != "person":
            raise InvalidQuery(
                'properties: an ActorsQuery filters persons: each filter needs "type": "person"',
                field="properties",
            )
    return query


def _leaf_filters(
    props: list[PropertyFilter | PropertyGroup] | PropertyGroup,
) -> list[PropertyFilter]:
    items = props.values if isinstance(props, PropertyGroup) else props
    out: list[PropertyFilter] = []
    for item in items:
        if isinstance(item, PropertyGroup):
            out.extend(_leaf_filters(item))
        else:
            out.append(item)
    return out

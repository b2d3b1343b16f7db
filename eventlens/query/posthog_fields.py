"""PostHog's query fields that change the answer and are not implemented (docs/api.md "PostHog's
query fields"): each is accepted only at its neutral value, the one that leaves the answer as
EventLens computes it; any other value is a 400 "not supported yet" naming PostHog's field.

`check_supported(query)` is called by `model.parse_query` after validation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from eventlens.errors import InvalidQuery
from eventlens.query.model import (
    MAX_FILTERS,
    MAX_TEXT,
    BreakdownFilter,
    FunnelsQuery,
    InsightQuery,
    LifecycleQuery,
    PathCleaningFilter,
    PathsQuery,
    Properties,
    PropertyGroup,
    RetentionQuery,
    StickinessQuery,
    TrendsQuery,
)

# PostHog's chart types that draw the time series the engines return.
TIME_SERIES_DISPLAYS = (
    "ActionsLineGraph",
    "ActionsBar",
    "ActionsStackedBar",
    "ActionsUnstackedBar",
    "ActionsAreaGraph",
)
# Running totals of the time series (semantics/trends_shape.py).
CUMULATIVE_DISPLAY = "ActionsLineGraphCumulative"
# PostHog's "total value" displays: one number per series over the whole range, by day.
AGGREGATED_DISPLAYS = ("ActionsBarValue", "ActionsPie", "BoldNumber", "ActionsTable", "WorldMap")
# Displays PostHog answers with other query runners (other result shapes): a 400 for now.
OTHER_RUNNER_DISPLAYS = ("CalendarHeatmap", "BoxPlot", "TwoDimensionalHeatmap")
DISPLAYS = (*TIME_SERIES_DISPLAYS, CUMULATIVE_DISPLAY, *AGGREGATED_DISPLAYS)
# compareFilter.compare_to: how far back the compared period starts (PostHog's relative dates).
COMPARE_TO = re.compile(r"^-[1-9]\d{0,5}[hdwmqy]$")
MAX_BREAKDOWNS = 3  # PostHog's limit on breakdownFilter.breakdowns
_BREAKDOWN_ITEM_KEYS = {
    "property",
    "type",
    "histogram_bin_count",
    "group_type_index",
    "normalize_url",
}
MAX_SMOOTHING = 100  # PostHog's UI offers up to 28; more is a moving mean nobody reads
MAX_CRITERIA = 1_000_000  # stickinessCriteria.value: events of one person in one interval


def display_of(q: TrendsQuery) -> str | None:
    tf = q.trendsFilter
    return tf.display if tf is not None and isinstance(tf.display, str) else None


def is_aggregated(q: TrendsQuery) -> bool:
    """The display asks for one value per series over the range (no time series)."""
    return display_of(q) in AGGREGATED_DISPLAYS


def _shown(value: object, limit: int) -> str:
    """`value` as JSON for an error message, at most `limit` characters."""
    try:
        return orjson.dumps(value).decode()[:limit]
    except TypeError:  # e.g. an integer beyond 64 bits: still a 400 that names the field
        return repr(value)[:limit]


def not_supported(path: str, value: object, why: str = "") -> InvalidQuery:
    """The 400 for a PostHog field whose value would change the answer in a way EventLens does
    not implement yet: it names the field and says so (never silently ignored)."""
    detail = f"{path}: {_shown(value, 200)} is not supported yet"
    return InvalidQuery(f"{detail} ({why})" if why else detail, field=path)


def _neutral(value: object, *neutral: object) -> bool:
    """`value` is absent (None) or one of the values that leave the answer unchanged."""
    return value is None or any(value == n and type(value) is type(n) for n in neutral)


def require_neutral(path: str, value: object, *neutral: object, why: str = "") -> None:
    if not _neutral(value, *neutral):
        raise not_supported(path, value, why)


def check_supported(query: InsightQuery) -> None:
    """PostHog fields accepted only at the value that does not change the answer."""
    if query.filterTestAccounts is not None and not isinstance(query.filterTestAccounts, bool):
        raise InvalidQuery("filterTestAccounts: must be true or false", field="filterTestAccounts")
    require_neutral("samplingFactor", query.samplingFactor, 1, 1.0, why="no sampling")
    require_neutral(
        "aggregation_group_type_index", query.aggregation_group_type_index, why="no groups"
    )
    if not isinstance(query, RetentionQuery | PathsQuery):
        for i, node in enumerate(query.series):
            path = f"series[{i}]"
            require_neutral(f"{path}.math_hogql", node.math_hogql)
            require_neutral(f"{path}.math_group_type_index", node.math_group_type_index)
            require_neutral(f"{path}.math_multiplier", node.math_multiplier, 1, 1.0)
            require_neutral(
                f"{path}.math_property_revenue_currency", node.math_property_revenue_currency
            )
            require_neutral(f"{path}.fixedProperties", node.fixedProperties, [])
            require_neutral(f"{path}.optionalInFunnel", node.optionalInFunnel, False)
    if isinstance(query, FunnelsQuery) and query.compareFilter is not None:
        require_neutral("compareFilter.compare", query.compareFilter.compare, False)
        require_neutral("compareFilter.compare_to", query.compareFilter.compare_to)
    if isinstance(query, TrendsQuery | StickinessQuery):
        _check_compare(query)
    if isinstance(query, TrendsQuery | FunnelsQuery | RetentionQuery):
        check_breakdown(
            query.breakdownFilter,
            isinstance(query, RetentionQuery),
            trends=isinstance(query, TrendsQuery),
        )
    if isinstance(query, TrendsQuery):
        require_neutral("conversionGoal", query.conversionGoal)
        tf = query.trendsFilter
        if tf is not None:
            _check_display(query)
            _check_smoothing(tf.smoothingIntervals)
            require_neutral("trendsFilter.formulas", tf.formulas, [])
            require_neutral("trendsFilter.formulaNodes", tf.formulaNodes, [])
            require_neutral(
                "trendsFilter.breakdown_histogram_bin_count", tf.breakdown_histogram_bin_count
            )
    elif isinstance(query, FunnelsQuery):
        ff = query.funnelsFilter
        require_neutral("funnelsFilter.funnelAggregateByHogQL", ff.funnelAggregateByHogQL)
        require_neutral("funnelsFilter.customAggregationTarget", ff.customAggregationTarget, False)
        require_neutral(
            "funnelsFilter.funnelVizType",
            ff.funnelVizType,
            "steps",
            "time_to_convert",
            "trends",
            why="the steps, time_to_convert and trends views are",
        )
        bf = query.breakdownFilter
        if ff.funnelVizType != "steps" and bf is not None and bf.breakdown is not None:
            raise InvalidQuery(
                f"breakdownFilter.breakdown: a breakdown is not supported yet with "
                f"funnelsFilter.funnelVizType {ff.funnelVizType!r} (only with the steps view)",
                field="breakdownFilter.breakdown",
            )
    elif isinstance(query, RetentionQuery):
        rf = query.retentionFilter
        require_neutral(
            "retentionFilter.timeWindowMode", rf.timeWindowMode, "strict_calendar_dates"
        )
        require_neutral("retentionFilter.retentionCustomBrackets", rf.retentionCustomBrackets, [])
        require_neutral("retentionFilter.aggregationType", rf.aggregationType, "count")
        require_neutral("retentionFilter.aggregationProperty", rf.aggregationProperty)
        require_neutral(
            "retentionFilter.customAggregationTarget", rf.customAggregationTarget, False
        )
    elif isinstance(query, StickinessQuery):
        require_neutral("intervalCount", query.intervalCount, 1)
        sf = query.stickinessFilter
        if sf is not None:
            _check_stickiness(sf.computedAs, sf.stickinessCriteria)
    elif isinstance(query, LifecycleQuery):
        require_neutral("customAggregationTarget", query.customAggregationTarget, False)


_PROPERTIES: TypeAdapter[Any] = TypeAdapter(Properties)


def parse_test_account_filters(obj: object, field: str = "test_account_filters") -> list[Any]:
    """A project's test-account filters (PostHog's team.test_account_filters): a JSON list of
    property filters / groups as a query's `properties` takes them. InvalidQuery naming `field`
    otherwise. Returns the list as given (stored as JSON)."""
    from eventlens.query.model import _check_properties, field_path

    if not isinstance(obj, list) or len(obj) > MAX_FILTERS:
        raise InvalidQuery(
            f"{field}: must be a list of at most {MAX_FILTERS} property filters", field=field
        )
    try:
        parsed = _PROPERTIES.validate_python(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = f"{field}{field_path(('x', *first['loc']))[1:]}"
        raise InvalidQuery(f"{path}: {first['msg']}", field=path) from None
    _check_properties(parsed, field)
    return obj


def with_test_account_filters(query: InsightQuery, filters: Sequence[Any]) -> InsightQuery:
    """The query PostHog runs: with `filterTestAccounts: true`, the project's test-account
    filters ANDed with the query's own properties (a no-op without filters)."""
    if query.filterTestAccounts is not True or not filters:
        return query
    own = query.properties
    own_group = own if isinstance(own, PropertyGroup) else PropertyGroup(type="AND", values=own)
    extra = PropertyGroup(type="AND", values=_PROPERTIES.validate_python(list(filters)))
    merged = PropertyGroup(type="AND", values=[own_group, extra])
    return query.model_copy(update={"properties": merged})


def with_path_cleaning(query: InsightQuery, filters: Sequence[Any]) -> InsightQuery:
    """The paths query PostHog runs: with `pathsFilter.pathReplacements: true`, the project's
    path cleaning rules (PostHog's team.path_cleaning_filters) in front of the query's own
    `localPathCleaningFilters`, so engines read one list and the fingerprint (hence the result
    cache and the partial cache) covers the rules the answer used. A no-op otherwise."""
    if not isinstance(query, PathsQuery):
        return query
    pf = query.pathsFilter
    if pf.pathReplacements is not True or not filters:
        return query
    project = [PathCleaningFilter.model_validate(f) for f in filters]
    local = list(pf.localPathCleaningFilters or [])
    merged = pf.model_copy(update={"localPathCleaningFilters": [*project, *local]})
    return query.model_copy(update={"pathsFilter": merged})


def parse_path_cleaning_filters(obj: object, field: str = "path_cleaning_filters") -> list[Any]:
    """A project's path cleaning rules: a JSON list of `{"alias": str, "regex": str}` (RE2,
    PostHog's team.path_cleaning_filters). InvalidQuery naming `field` otherwise. Returns the
    list as given (stored as JSON)."""
    from eventlens.query.model import MAX_PATH_RULES, check_path_cleaning, field_path

    if not isinstance(obj, list) or len(obj) > MAX_PATH_RULES:
        raise InvalidQuery(
            f"{field}: must be a list of at most {MAX_PATH_RULES} {{alias, regex}} rules",
            field=field,
        )
    try:
        parsed = [PathCleaningFilter.model_validate(f) for f in obj]
    except ValidationError as exc:
        first = exc.errors()[0]
        path = f"{field}{field_path(('x', *first['loc']))[1:]}"
        raise InvalidQuery(f"{path}: {first['msg']}", field=path) from None
    check_path_cleaning(parsed, field)
    return obj


def has_compare(query: InsightQuery) -> bool:
    """A trends or stickiness query asking for the previous period too (compareFilter)."""
    if not isinstance(query, TrendsQuery | StickinessQuery) or query.compareFilter is None:
        return False
    return query.compareFilter.compare is True


def _check_compare(query: TrendsQuery | StickinessQuery) -> None:
    cf = query.compareFilter
    if cf is None:
        return
    if cf.compare is not None and not isinstance(cf.compare, bool):
        raise InvalidQuery(
            "compareFilter.compare: must be true or false", field="compareFilter.compare"
        )
    to = cf.compare_to
    if to is not None and (not isinstance(to, str) or not COMPARE_TO.match(to)):
        raise InvalidQuery(
            "compareFilter.compare_to: must be a relative offset like -1d, -2w, -1m, -1y or -6h",
            field="compareFilter.compare_to",
        )
    if cf.compare is True and query.dateRange.date_from == "all":
        raise InvalidQuery(
            "compareFilter.compare: an all-time range has no previous period",
            field="compareFilter.compare",
        )


def _check_display(q: TrendsQuery) -> None:
    tf = q.trendsFilter
    display = tf.display if tf is not None else None
    path = "trendsFilter.display"
    if display is None:
        return
    if display in OTHER_RUNNER_DISPLAYS:
        raise not_supported(path, display, why="PostHog answers it with a different result shape")
    if not isinstance(display, str) or display not in DISPLAYS:
        raise InvalidQuery(
            f"{path}: must be one of {', '.join(DISPLAYS + OTHER_RUNNER_DISPLAYS)}", field=path
        )


def _check_smoothing(value: object) -> None:
    path = "trendsFilter.smoothingIntervals"
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SMOOTHING:
        raise InvalidQuery(
            f"{path}: must be an integer from 1 to {MAX_SMOOTHING}, got {_shown(value, 100)}",
            field=path,
        )


def _check_stickiness(computed_as: object, criteria: object) -> None:
    if computed_as is not None and computed_as not in ("non_cumulative", "cumulative"):
        raise InvalidQuery(
            "stickinessFilter.computedAs: must be 'non_cumulative' or 'cumulative'",
            field="stickinessFilter.computedAs",
        )
    path = "stickinessFilter.stickinessCriteria"
    if criteria is None:
        return
    ok = (
        isinstance(criteria, dict)
        and set(criteria) <= {"operator", "value"}
        and criteria.get("operator") in ("gte", "lte", "exact")
        and isinstance(criteria.get("value"), int)
        and not isinstance(criteria.get("value"), bool)
        and 1 <= criteria["value"] <= MAX_CRITERIA
    )
    if not ok:
        value = criteria.get("value") if isinstance(criteria, dict) else None
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and not 1 <= value <= MAX_CRITERIA
        ):
            # PostHog's ValidateStickinessCriteria: 0 events can match no interval a person was in.
            raise InvalidQuery(
                f"{path}.value: must be 1..{MAX_CRITERIA}, got {value}", field=f"{path}.value"
            )
        raise InvalidQuery(
            f"{path}: must be {{operator: gte|lte|exact, value: 1..{MAX_CRITERIA}}}", field=path
        )


def _check_breakdowns(bf: BreakdownFilter) -> None:
    """`breakdowns`: 1..MAX_BREAKDOWNS of {property, type event|person} (PostHog's
    MultipleBreakdownType options that would change the answer only at their neutral value)."""
    items = bf.breakdowns
    path = "breakdownFilter.breakdowns"
    if items is None or items == []:
        return
    if not isinstance(items, list) or len(items) > MAX_BREAKDOWNS:
        raise InvalidQuery(
            f"{path}: must be a list of at most {MAX_BREAKDOWNS} breakdowns (PostHog's limit)",
            field=path,
        )
    if bf.breakdown is not None:
        raise InvalidQuery(
            "breakdownFilter.breakdown: give either breakdown or breakdowns, not both",
            field="breakdownFilter.breakdown",
        )
    for i, item in enumerate(items):
        at = f"{path}[{i}]"
        if not isinstance(item, dict):
            raise InvalidQuery(f"{at}: must be an object {{property, type}}", field=at)
        unknown = set(item) - _BREAKDOWN_ITEM_KEYS
        if unknown:
            raise InvalidQuery(f"unsupported field '{at}.{sorted(unknown)[0]}'", field=at)
        prop = item.get("property")
        if not isinstance(prop, str) or not 0 < len(prop) <= MAX_TEXT:
            raise InvalidQuery(
                f"{at}.property: a property name of 1..{MAX_TEXT} characters",
                field=f"{at}.property",
            )
        kind = item.get("type", "event")
        if kind in ("group", "session", "hogql", "cohort", "data_warehouse"):
            raise not_supported(f"{at}.type", kind, why="only event and person properties")
        if kind not in ("event", "person", None):
            raise InvalidQuery(f"{at}.type: must be event or person", field=f"{at}.type")
        require_neutral(f"{at}.histogram_bin_count", item.get("histogram_bin_count"))
        require_neutral(f"{at}.group_type_index", item.get("group_type_index"))
        require_neutral(f"{at}.normalize_url", item.get("normalize_url"), False)


def check_breakdown(bf: BreakdownFilter | None, retention: bool, trends: bool = False) -> None:
    if bf is None:
        return
    if retention:
        retention_breakdown(bf)  # one property, as `breakdown` or a one-item `breakdowns`
    elif trends:
        _check_breakdowns(bf)
    else:
        require_neutral("breakdownFilter.breakdowns", bf.breakdowns, [], why="multiple breakdowns")
    require_neutral("breakdownFilter.breakdown_normalize_url", bf.breakdown_normalize_url, False)
    require_neutral("breakdownFilter.breakdown_path_cleaning", bf.breakdown_path_cleaning, False)
    require_neutral("breakdownFilter.breakdown_group_type_index", bf.breakdown_group_type_index)
    require_neutral(
        "breakdownFilter.breakdown_histogram_bin_count", bf.breakdown_histogram_bin_count
    )
    require_neutral(
        "breakdownFilter.breakdown_hide_other_aggregation",
        bf.breakdown_hide_other_aggregation,
        False,
    )


def _item_field(item: object, name: str) -> object:
    # A `breakdowns` item as JSON or as a model (whichever BreakdownFilter declares).
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def retention_breakdown(bf: BreakdownFilter | None) -> tuple[str, str] | None:
    """The retention breakdown as (property, "event" | "person"), or None. PostHog's retention
    breaks down by one property, given as `breakdown` + `breakdown_type` or, as its UI sends
    it, a one-item `breakdowns` list of `{"property", "type"}`. Anything else: InvalidQuery."""
    if bf is None:
        return None
    items = bf.breakdowns
    if items is None or items == []:
        # (A cohort breakdown is run per cohort: semantics/cohorts.py.)
        return (bf.breakdown, bf.breakdown_type) if isinstance(bf.breakdown, str) else None
    path = "breakdownFilter.breakdowns"
    if bf.breakdown is not None or not isinstance(items, list) or len(items) != 1:
        raise not_supported(path, items, why="retention breaks down by one property")
    key, kind = _item_field(items[0], "property"), _item_field(items[0], "type") or "event"
    if not isinstance(key, str) or not key or len(key) > MAX_TEXT:
        raise InvalidQuery(f"{path}[0].property: a property name is required", field=path)
    if kind not in ("event", "person"):
        raise not_supported(f"{path}[0].type", kind, why="event and person breakdowns")
    for other in ("group_type_index", "histogram_bin_count", "normalize_url"):
        require_neutral(f"{path}[0].{other}", _item_field(items[0], other), False)
    return key, str(kind)

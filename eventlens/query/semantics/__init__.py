"""Rules both engines share (insights.md "Common rules"): property filters, breakdown values,
ranking, range buckets and quantiles, and per kind the windows, matching and output rows.
Imports neither engine; both engines import it.

    filters      as_text / as_number / as_datetime, filter_matches, breakdown_value, rank_values
    buckets      axis, quantile, range_buckets
    events       Event (one event as the per-value rules see it)
    trends       QUANTILES, ROLLING_DAYS, formula_rows
    funnels      WINDOW_SECONDS, max_step_matching, step_rows
    trends_shape finish_trends (smoothing, cumulative, aggregated displays, action/filter)
    compare      with_compare, previous_period (compareFilter: a second run)
    breakdowns   breakdown_keys, event_breakdown, output_value (multiple breakdowns)
    stickiness   stickiness_row, criteria_of (computedAs, stickinessCriteria)
    lifecycle    STATUSES, extended_buckets, lifecycle_rows
    retention    cohort_date, cohort_rows, cumulative
"""

from eventlens.query.semantics.buckets import axis, quantile
from eventlens.query.semantics.events import Event
from eventlens.query.semantics.filters import (
    NULL_BREAKDOWN,
    OTHER_BREAKDOWN,
    breakdown_value,
    filter_matches,
    properties_match,
    rank_values,
)

__all__ = [
    "NULL_BREAKDOWN",
    "OTHER_BREAKDOWN",
    "Event",
    "axis",
    "breakdown_value",
    "filter_matches",
    "properties_match",
    "quantile",
    "rank_values",
]

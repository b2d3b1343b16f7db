"""How PostHog shapes a trends answer from per-series rows (insights.md "Trends", "Displays"),
shared by both engines: each computes per-series rows and hands them to `finish_trends`.

- `trendsFilter.smoothingIntervals` N > 1: each bucket is the floor of the mean of itself and
  the N-1 buckets before it (fewer at the start of the range), as PostHog's window
  `floor(avg(..) OVER (ROWS N-1 PRECEDING))`; `count` is the sum of the smoothed data.
- `display: ActionsLineGraphCumulative`: each bucket is the running sum of the buckets so far
  (after smoothing), also for distinct-person maths (PostHog sums the per-bucket counts); `count`
  is the last value.
- Aggregated displays (AGGREGATED_DISPLAYS): the engines put the series math over the whole range
  in `aggregated_value` (distinct persons over the range for dau, not a sum of days); the row
  then has `data: []`, `count: 0`, `days` (every day of the range) and no `labels`.
- Formulas combine the shaped series (`formula_rows`), aggregated values too.
- Every row carries PostHog's `action` (None for a formula row) and `filter`.
"""

from __future__ import annotations

import math
from typing import Any

from eventlens.query.dates import Buckets
from eventlens.query.model import EventsNode, TrendsQuery
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.posthog_fields import CUMULATIVE_DISPLAY, display_of, is_aggregated
from eventlens.query.semantics.breakdowns import breakdown_keys, is_multiple, output_value
from eventlens.query.semantics.trends import formula_rows

__all__ = ["cumulative", "finish_trends", "is_aggregated", "series_action", "smooth"]


def smoothing_of(q: TrendsQuery) -> int:
    tf = q.trendsFilter
    n = tf.smoothingIntervals if tf is not None else None
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1


def smooth(data: list[float], n: int) -> list[float]:
    """Floor of the moving mean over the bucket and the n-1 before it."""
    out: list[float] = []
    for j in range(len(data)):
        window = data[max(0, j - n + 1) : j + 1]
        out.append(float(math.floor(sum(window) / len(window))))
    return out


def cumulative(data: list[float]) -> list[float]:
    out: list[float] = []
    total: float = 0
    for x in data:
        total += x
        out.append(total)
    return out


def series_action(node: EventsNode, order: int, days: list[str]) -> dict[str, Any]:
    """PostHog's `action` of a trends series (its TrendsQueryRunner fills these keys)."""
    return {
        "days": days,
        "id": node.event,
        "type": "events",
        "order": order,
        "name": node.event or "All events",
        "custom_name": node.custom_name,
        "math": node.math,
        "math_property": node.math_property,
        "math_hogql": None,
        "math_group_type_index": None,
        "properties": {},
    }


def query_filter(nq: NormalisedQuery[TrendsQuery], buckets: Buckets) -> dict[str, Any]:
    """PostHog's legacy `filter` echo of the query on each row (None values dropped); date_from
    is where the range's first bucket starts (for `all`: the earliest event's interval)."""
    q = nq.query
    start = buckets.starts[0] if buckets.starts else nq.date_from
    out: dict[str, Any] = {
        "insight": "TRENDS",
        "properties": _dump(q.properties),
        "filter_test_accounts": q.filterTestAccounts,
        "date_to": nq.date_to.isoformat(),
        "date_from": None if start is None else start.isoformat(),
        "entity_type": "events",
        "interval": q.interval,
    }
    if q.trendsFilter is not None:
        out.update(q.trendsFilter.model_dump(mode="json", exclude_none=True))
    if q.breakdownFilter is not None:
        out.update(q.breakdownFilter.model_dump(mode="json", exclude_none=True))
    return {k: v for k, v in out.items() if v is not None}


def _dump(props: Any) -> Any:
    if isinstance(props, list):
        return [p.model_dump(mode="json", exclude_none=True) for p in props]
    return props.model_dump(mode="json", exclude_none=True)


def finish_trends(
    nq: NormalisedQuery[TrendsQuery], per_series: list[list[dict[str, Any]]], buckets: Buckets
) -> list[dict[str, Any]]:
    """The trends result from each series' rows (query order; breakdown rows within a series).
    Rows of an aggregated display must carry `aggregated_value`."""
    q = nq.query
    n = smoothing_of(q)
    running = display_of(q) == CUMULATIVE_DISPLAY
    for rows in per_series:
        for row in rows:
            if n > 1:
                row["data"] = smooth(row["data"], n)
                row["count"] = sum(row["data"])
            if running:
                row["data"] = cumulative(row["data"])
                row["count"] = row["data"][-1] if row["data"] else 0
    formula = q.trendsFilter.formula if q.trendsFilter is not None else None
    days = [s.isoformat() for s in buckets.starts]
    if formula:
        out = formula_rows(q, formula, per_series, buckets)
        for row in out:
            row["action"] = None
    else:
        out = [row for rows in per_series for row in rows]
        for row in out:
            row["action"] = series_action(q.series[row["series_index"]], row["series_index"], days)
    echo = query_filter(nq, buckets)
    keys = breakdown_keys(q.breakdownFilter)
    multiple = is_multiple(q.breakdownFilter)
    for row in out:
        if multiple and keys is not None and "breakdown_value" in row:
            row["breakdown_value"] = output_value(row["breakdown_value"], len(keys))
        row["filter"] = echo
        if is_aggregated(q):
            row["data"] = []
            row["count"] = 0
            row.pop("labels", None)
    return out

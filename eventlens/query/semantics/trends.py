"""Trends rules both engines share: quantile maths, rolling windows, formula rows."""

from __future__ import annotations

import string
from typing import Any

from eventlens.query.dates import Buckets
from eventlens.query.formula import evaluate
from eventlens.query.model import TrendsQuery
from eventlens.query.semantics.breakdowns import breakdown_keys
from eventlens.query.semantics.buckets import axis
from eventlens.query.semantics.filters import NULL_BREAKDOWN, OTHER_BREAKDOWN

QUANTILES = {"median": 0.5, "p75": 0.75, "p90": 0.9, "p95": 0.95, "p99": 0.99}
# weekly_active / monthly_active: persons with an event in (d - (N-1) days, d + 1 day].
ROLLING_DAYS = {"weekly_active": 7, "monthly_active": 30}


def formula_rows(
    q: TrendsQuery, formula: str, per_series: list[list[dict[str, Any]]], buckets: Buckets
) -> list[dict[str, Any]]:
    """Combine series bucket by bucket (A = first series ...); per breakdown value if any.

    Works on finished series rows, so every engine applies formulas with this one function.
    """
    letters = string.ascii_uppercase
    has_breakdown = breakdown_keys(q.breakdownFilter) is not None
    values: list[str | None] = []
    if has_breakdown:
        for rows in per_series:
            for row in rows:
                if row["breakdown_value"] not in values:
                    values.append(row["breakdown_value"])
        # Null and other stay last, as in every breakdown.
        values.sort(key=lambda v: (v == NULL_BREAKDOWN) + 2 * (v == OTHER_BREAKDOWN))
    else:
        values = [None]
    out = []
    zero = [0.0] * len(buckets)
    for value in values:
        inputs = []
        totals: list[float] = []  # aggregated displays: each series' aggregated value
        for rows in per_series:
            match = [r for r in rows if r.get("breakdown_value") == value]
            inputs.append(match[0]["data"] if match else zero)
            totals.append(match[0].get("aggregated_value", 0) if match else 0)
        data = [
            evaluate(formula, {letters[i]: inputs[i][j] for i in range(len(inputs))})
            for j in range(len(buckets))
        ]
        formula_row: dict[str, Any] = {
            "label": formula,
            "series_index": 0,
            "formula": formula,
            **axis(buckets),
            "data": data,
            "count": sum(data),
        }
        if any("aggregated_value" in r for rows in per_series for r in rows):
            formula_row["aggregated_value"] = evaluate(
                formula, {letters[i]: totals[i] for i in range(len(totals))}
            )
        if value is not None:
            formula_row["breakdown_value"] = value
        out.append(formula_row)
    return out

"""Retention output rows, shared by both engines (PostHog's RetentionResult shape)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from eventlens.query.model import RetentionQuery
from eventlens.query.semantics.filters import NULL_BREAKDOWN, OTHER_BREAKDOWN, rank_values


def cohort_date(start: datetime) -> str:
    """A cohort's `date`: the start of its period as an ISO 8601 date-time in the project's
    timezone, as PostHog serialises it ("2024-01-02T00:00:00Z" when the offset is zero, else
    "2024-01-02T00:00:00+01:00")."""
    text = start.isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def cohort_rows(
    q: RetentionQuery, starts: Sequence[datetime], cells: Sequence[Sequence[int]]
) -> list[dict[str, Any]]:
    """One row per cohort, oldest first, from `cells[c]` = [cohort size, returners k = 1, 2 ...]
    (already cumulative if the query asks for it): `{"date", "label": "Day c", "values":
    [{"count", "label": "Day k"}, ...]}`. Every engine shapes its retention rows here."""
    period = q.retentionFilter.period
    return [
        {
            "date": cohort_date(start),
            "label": f"{period} {c}",
            "values": [{"count": int(n), "label": f"{period} {k}"} for k, n in enumerate(row)],
        }
        for c, (start, row) in enumerate(zip(starts, cells, strict=True))
    ]


def cumulative(row: Sequence[int]) -> list[int]:
    """For counts of members by the *latest* period they returned in (k = 1, 2 ...), the members
    who returned in period k or any later one: suffix sums (PostHog's `cumulative`)."""
    out = list(row)
    for k in range(len(out) - 2, -1, -1):
        out[k] += out[k + 1]
    return out


def breakdown_rows(
    q: RetentionQuery,
    starts: Sequence[datetime],
    per_value: Mapping[str, Sequence[Sequence[int]]],
    limit: int,
) -> list[dict[str, Any]]:
    """A breakdown's rows: for each value, its cohort rows (each with `breakdown_value`), one
    value after the other. `per_value[v]` holds the cells of the retention computed over the
    events carrying value v (PostHog groups persons by (person, value)). Values are ranked by
    their cohorts' total size (the common breakdown rule, rank_values), the top `limit` kept,
    then the null value, then the others summed into the other value."""
    totals = {v: float(sum(row[0] for row in cells)) for v, cells in per_value.items()}
    kept, folded = rank_values(totals, limit)
    order = [(v, per_value[v]) for v in kept]
    if NULL_BREAKDOWN in per_value:
        order.append((NULL_BREAKDOWN, per_value[NULL_BREAKDOWN]))
    if folded:
        summed = [
            [sum(cells) for cells in zip(*rows, strict=True)]
            for rows in zip(*(per_value[v] for v in sorted(folded)), strict=True)
        ]
        order.append((OTHER_BREAKDOWN, summed))
    out = []
    for value, cells in order:
        for row in cohort_rows(q, starts, cells):
            row["breakdown_value"] = value
            out.append(row)
    return out

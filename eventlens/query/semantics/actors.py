"""Which persons a number of an insight stands for (docs/semantics.md "Actors"), shared by both
engines: an InsightActorsQuery's selector resolved against the insight's own answer into a
`Cell`, the engine-independent address of one number.

Resolution reads the answer, not the query alone, because what a point means can depend on the
data: which breakdown values were ranked in (so which fold into "other"), which cohort dates
exist. Both engines then compute the persons of the cell by the rules their insight uses (in
reference/<kind>.py and parallel/kernels/<kind>.py, named in eventlens.query.kinds), and
`shown_number` is the number the cell has in the answer (what a test holds the actors to).

Bad selectors are InvalidQuery naming the field (`source.funnelStep`, `source.day` ...): a
point the insight does not show has no persons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

from eventlens.errors import InvalidQuery
from eventlens.query.model import (
    FunnelsQuery,
    InsightActorsQuery,
    LifecycleQuery,
    PathsQuery,
    RetentionQuery,
    StickinessQuery,
    TrendsQuery,
    cohort_breakdown,
)
from eventlens.query.normalise import NormalisedQuery, with_query
from eventlens.query.posthog_fields import (
    CUMULATIVE_DISPLAY,
    display_of,
    has_compare,
    is_aggregated,
)
from eventlens.query.semantics.breakdowns import breakdown_keys, combo_label, is_multiple
from eventlens.query.semantics.cohorts import restricted_to_cohort
from eventlens.query.semantics.compare import previous_period
from eventlens.query.semantics.filters import NULL_BREAKDOWN, OTHER_BREAKDOWN
from eventlens.query.semantics.lifecycle import STATUSES
from eventlens.query.semantics.paths import actor_selector
from eventlens.query.semantics.stickiness import is_cumulative

__all__ = [
    "Cell",
    "FunnelCell",
    "LifecycleCell",
    "RetentionCell",
    "StickinessCell",
    "TrendsCell",
    "folds",
    "resolve",
]


@dataclass(frozen=True)
class TrendsCell:
    """Series `series`, bucket `bucket` (None: the whole range, aggregated displays; with
    `through`: every bucket up to `bucket`, cumulative displays), breakdown label `breakdown`
    (internal label; None without a breakdown). For "other", `kept` is every value the series
    shows on its own: every other value folds into it."""

    series: int
    bucket: int | None
    breakdown: str | None = None
    kept: frozenset[str] = frozenset()
    through: bool = False


@dataclass(frozen=True)
class FunnelCell:
    """Persons who reached step `step` (0-based: a level > `step`), or with `dropped`: who
    reached step `step` - 1 and not step `step` (a level of exactly `step`). `breakdown`: the
    breakdown value (None without one); for "other", `kept` holds every value shown on its own
    (the null value is shown on its own, never folded)."""

    step: int
    dropped: bool = False
    breakdown: str | None = None
    kept: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RetentionCell:
    """Cohort `cohort` (0 = the oldest), interval `interval` (0 = the cohort itself), of
    breakdown value `breakdown` (None without one; "other" folds values not in `kept`)."""

    cohort: int
    interval: int
    breakdown: str | None = None
    kept: frozenset[str] = frozenset()


@dataclass(frozen=True)
class StickinessCell:
    """Series `series`: persons active in exactly `intervals` intervals (with computedAs
    cumulative: in `intervals` or more)."""

    series: int
    intervals: int
    at_least: bool = False


@dataclass(frozen=True)
class LifecycleCell:
    """Persons of lifecycle `status` in bucket `bucket`."""

    bucket: int
    status: str


Cell: TypeAlias = TrendsCell | FunnelCell | RetentionCell | StickinessCell | LifecycleCell | None


def folds(value: str, cell_breakdown: str | None, kept: frozenset[str]) -> bool:
    """Does an item with breakdown `value` belong to the cell's breakdown value? ("other" takes
    every value the answer does not show on its own: `kept` is every shown value.)"""
    if cell_breakdown == OTHER_BREAKDOWN:
        return value not in kept
    return value == cell_breakdown


@dataclass(frozen=True)
class Resolved:
    """The cell, the query the engines compute it over (the previous period's for compare
    "previous") and the number the answer shows there."""

    cell: Cell
    query: NormalisedQuery
    shown: float


def _bad(message: str, field: str) -> InvalidQuery:
    return InvalidQuery(message, field=f"source.{field}")


def _wanted_value(raw: Any, multiple: bool) -> str:
    """A breakdown value as the request names it -> the internal label."""
    if raw is None:
        return NULL_BREAKDOWN
    if isinstance(raw, list):
        if multiple and raw and all(v == OTHER_BREAKDOWN for v in raw):
            return OTHER_BREAKDOWN
        parts = [NULL_BREAKDOWN if v is None else str(v) for v in raw]
        return combo_label(parts) if multiple else (parts[0] if len(parts) == 1 else str(raw))
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw)


def _row_value(row: dict[str, Any], multiple: bool) -> str | None:
    value = row.get("breakdown_value")
    if value is None:
        return None
    return _wanted_value(value, multiple)


def _day_index(days: list[Any], day: Any, field: str = "day") -> int:
    if day is None:
        raise _bad(f"{field} is required: one of the insight's days", field)
    wanted = str(day)
    texts = [str(d) for d in days]
    if wanted in texts:
        return texts.index(wanted)
    # A date names its day's bucket (PostHog sends "2024-01-02" for "2024-01-02T00:00:00Z").
    starts = [t[:10] for t in texts]
    if len(set(starts)) == len(starts) and wanted[:10] in starts and len(wanted) <= 25:
        return starts.index(wanted[:10])
    raise _bad(
        f"{field} {wanted!r} is not a point of this insight (its days run "
        f"{days[0] if days else '-'} .. {days[-1] if days else '-'})",
        field,
    )


def resolve(nq: NormalisedQuery, sel: InsightActorsQuery, result: list[Any]) -> Resolved:
    """The cell `sel` selects in `result` (the insight answer of `nq`). InvalidQuery naming the
    selector field for a point the answer does not have."""
    q = nq.query
    ids = cohort_breakdown(getattr(q, "breakdownFilter", None))
    if ids is not None:
        return _cohort_breakdown(nq, sel, result, ids)
    if isinstance(q, TrendsQuery):
        return _trends(nq, q, sel, result)
    if isinstance(q, FunnelsQuery):
        return _funnels(nq, q, sel, result)
    if isinstance(q, RetentionQuery):
        return _retention(nq, q, sel, result)
    if isinstance(q, StickinessQuery):
        return _stickiness(nq, q, sel, result)
    if isinstance(q, LifecycleQuery):
        return _lifecycle(nq, sel, result)
    if isinstance(q, PathsQuery):
        return _paths(nq, q, result)
    raise _bad(f"no actors for a {q.kind}", "source.kind")


def _paths(nq: NormalisedQuery, q: PathsQuery, result: list[Any]) -> Resolved:
    """A path's selector is the query's own pathsFilter keys (PostHog's pathStartKey /
    pathEndKey / pathDropoffKey), so there is no cell. The number shown: the edge's value
    (start and end key), the drop-offs at the node (drop-off key), else the persons of the
    edges leaving (start key) or entering (end key) the node: an upper bound, since a person
    can take two of those edges. An edge the chart trims (edgeLimit) still has its persons."""
    pf = q.pathsFilter
    select = actor_selector(pf)  # InvalidQuery naming the key when none is given or malformed
    start, end = pf.pathStartKey, pf.pathEndKey
    if select.dropoff is not None and start is None and end is None:
        key = pf.pathDropoffKey
        shown = next((e["target_dropoffs"] for e in result if e["target"] == key), 0)
    else:
        edges = [
            e
            for e in result
            if (start is None or e["source"] == start) and (end is None or e["target"] == end)
        ]
        shown = sum(e["value"] for e in edges)
    return Resolved(None, nq, float(shown))


def _cohort_breakdown(
    nq: NormalisedQuery, sel: InsightActorsQuery, result: list[Any], ids: list[int]
) -> Resolved:
    """A cohort breakdown is one run per cohort with that cohort as a filter
    (semantics.cohorts.with_cohort_breakdown), so a point's persons are those of the same
    point of that cohort's run: the query restricted to it, over its own rows."""
    funnels = isinstance(nq.query, FunnelsQuery)
    field = "funnelStepBreakdown" if funnels else "breakdown"
    raw = getattr(sel, field)
    try:
        cid = 0 if raw == "all" else int(raw)
    except (TypeError, ValueError):
        msg = f"{field} must be a cohort id of this cohort breakdown, got {raw!r}"
        raise _bad(msg, field) from None
    if cid not in ids:
        raise _bad(f"{field} {raw!r} is not a cohort of this breakdown ({ids})", field)
    rows: list[Any]
    if funnels:
        rows = next((steps for steps in result if steps and steps[0]["breakdown_value"] == cid), [])
    else:
        rows = [r for r in result if r.get("breakdown_value") == cid]
    one = with_query(nq, restricted_to_cohort(nq.query, cid))
    return resolve(one, sel.model_copy(update={field: None}), rows)


def _compared(
    nq: NormalisedQuery, sel: InsightActorsQuery, rows: list[Any]
) -> tuple[NormalisedQuery, list[Any]]:
    """The period's query and rows: compare "previous" selects the previous period's rows."""
    if not has_compare(nq.query):
        if sel.compare == "previous":
            raise _bad("compare 'previous' needs a query with compareFilter.compare", "compare")
        return nq, rows
    label = sel.compare or "current"
    mine = [r for r in rows if r.get("compare_label") == label]
    return (previous_period(nq) if label == "previous" else nq), mine


def _trends(
    nq: NormalisedQuery, q: TrendsQuery, sel: InsightActorsQuery, result: list[Any]
) -> Resolved:
    tf = q.trendsFilter
    if tf is not None and tf.formula:
        raise _bad(
            "a formula's numbers are not persons: list the actors of one of its series "
            "(a query without trendsFilter.formula)",
            "source.trendsFilter.formula",
        )
    period, rows = _compared(nq, sel, result)
    series = sel.series or 0
    if series >= len(q.series):
        raise _bad(f"series {series} does not exist (the query has {len(q.series)})", "series")
    rows = [r for r in rows if r.get("series_index") == series]
    multiple = is_multiple(q.breakdownFilter)
    breakdown: str | None = None
    kept: frozenset[str] = frozenset()
    if breakdown_keys(q.breakdownFilter) is not None:
        shown = [v for r in rows if (v := _row_value(r, multiple)) is not None]
        breakdown = _wanted_value(sel.breakdown, multiple)
        if breakdown not in shown:
            raise _bad(f"breakdown {sel.breakdown!r} is not a value this series shows", "breakdown")
        kept = frozenset(v for v in shown if v != OTHER_BREAKDOWN)
        rows = [r for r in rows if _row_value(r, multiple) == breakdown]
    if not rows:
        raise _bad("the insight has no row for this series", "series")
    row = rows[0]
    if is_aggregated(q):
        return Resolved(
            TrendsCell(series, None, breakdown, kept), period, float(row["aggregated_value"])
        )
    j = _day_index(row["days"], sel.day)
    through = display_of(q) == CUMULATIVE_DISPLAY
    return Resolved(TrendsCell(series, j, breakdown, kept, through), period, float(row["data"][j]))


def _funnels(
    nq: NormalisedQuery, q: FunnelsQuery, sel: InsightActorsQuery, result: list[Any]
) -> Resolved:
    view = q.funnelsFilter.funnelVizType
    if view != "steps":
        # Those answers have no step cells (a histogram bin / an interval's rate would need their
        # own selectors: PostHog's funnelStepBreakdown / funnelTrendsDropOff ...).
        raise _bad(
            f"the persons of a funnel's {view} view are not supported yet (only the steps view)",
            "funnelsFilter.funnelVizType",
        )
    n = len(q.series)
    step = sel.funnelStep
    if step is None or step == 0 or abs(step) > n or step == -1:
        raise _bad(
            f"funnelStep must be 1..{n} (converted at that step) or -2..-{n} (dropped off "
            f"before that step), got {step}",
            "funnelStep",
        )
    bf = q.breakdownFilter
    breakdown: str | None = None
    kept: frozenset[str] = frozenset()
    steps: list[dict[str, Any]]
    if bf is not None and bf.breakdown is not None:
        groups = [g for g in result if g]
        values = [str(g[0]["breakdown_value"]) for g in groups]
        breakdown = _wanted_value(sel.funnelStepBreakdown, False)
        if breakdown not in values:
            raise _bad(
                f"funnelStepBreakdown {sel.funnelStepBreakdown!r} is not a value this funnel shows",
                "funnelStepBreakdown",
            )
        kept = frozenset(v for v in values if v != OTHER_BREAKDOWN)
        steps = groups[values.index(breakdown)]
    else:
        steps = result
    s = abs(step) - 1
    if step > 0:
        return Resolved(FunnelCell(s, False, breakdown, kept), nq, float(steps[s]["count"]))
    shown = steps[s - 1]["count"] - steps[s]["count"]
    return Resolved(FunnelCell(s, True, breakdown, kept), nq, float(shown))


def _retention(
    nq: NormalisedQuery, q: RetentionQuery, sel: InsightActorsQuery, result: list[Any]
) -> Resolved:
    breakdown: str | None = None
    kept: frozenset[str] = frozenset()
    rows = result
    if any("breakdown_value" in r for r in result):
        values = list(dict.fromkeys(str(r["breakdown_value"]) for r in result))
        breakdown = _wanted_value(sel.breakdown, False)
        if breakdown not in values:
            raise _bad(
                f"breakdown {sel.breakdown!r} is not a value this retention shows", "breakdown"
            )
        kept = frozenset(v for v in values if v != OTHER_BREAKDOWN)
        rows = [r for r in result if str(r["breakdown_value"]) == breakdown]
    c = _day_index([r["date"] for r in rows], sel.day)
    k = 0 if sel.interval is None else sel.interval
    values_c = rows[c]["values"]
    if k >= len(values_c):
        raise _bad(
            f"interval {k} is past the range for the cohort of {rows[c]['date']} "
            f"(0..{len(values_c) - 1})",
            "interval",
        )
    return Resolved(RetentionCell(c, k, breakdown, kept), nq, float(values_c[k]["count"]))


def _stickiness(
    nq: NormalisedQuery, q: StickinessQuery, sel: InsightActorsQuery, result: list[Any]
) -> Resolved:
    period, rows = _compared(nq, sel, result)
    series = sel.series or 0
    rows = [r for r in rows if r.get("series_index") == series]
    if not rows:
        raise _bad(f"series {series} does not exist (the query has {len(q.series)})", "series")
    row = rows[0]
    day = sel.day
    try:
        n = int(str(day)) if day is not None else -1
    except ValueError:
        n = -1
    if not 1 <= n <= len(row["data"]):
        raise _bad(f"day is the number of intervals, 1..{len(row['data'])}, got {day!r}", "day")
    cell = StickinessCell(series, n, at_least=is_cumulative(q))
    return Resolved(cell, period, float(row["data"][n - 1]))


def _lifecycle(nq: NormalisedQuery, sel: InsightActorsQuery, result: list[Any]) -> Resolved:
    if sel.status not in STATUSES:
        raise _bad(f"status must be one of {', '.join(STATUSES)}, got {sel.status!r}", "status")
    row = next(r for r in result if r["status"] == sel.status)
    j = _day_index(row["days"], sel.day)
    # Dormant persons are counted negative: the number stands for abs(count) persons.
    return Resolved(LifecycleCell(j, sel.status), nq, float(abs(row["data"][j])))

"""Every point of an insight answer as an InsightActorsQuery selector, and the check that both
engines list the same persons for it, as many as the answer shows."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from eventlens.query import normalise, parse_query
from eventlens.query.model import InsightActorsQuery, TrendsQuery
from eventlens.query.parallel import ParallelEngine
from eventlens.query.posthog_fields import CUMULATIVE_DISPLAY, display_of
from eventlens.query.reference import ReferenceEngine
from eventlens.query.semantics.actors import resolve
from eventlens.query.semantics.filters import OTHER_BREAKDOWN
from eventlens.query.semantics.trends_shape import smoothing_of
from eventlens.query.testing import event_rows, parse_instant
from eventlens.storage.event_table import EventTable

# Trends maths whose number is a count of distinct persons: the actors total equals it.
PERSON_COUNTS = ("dau", "weekly_active", "monthly_active", "first_time_for_user")


def selectors(query: dict[str, Any], result: list[Any]) -> list[dict[str, Any]]:
    """One selector per point of `result` (the answer of `query`)."""
    kind = query["kind"]
    out: list[dict[str, Any]] = []
    if kind in ("TrendsQuery", "StickinessQuery"):
        for row in result:
            base: dict[str, Any] = {"series": row["series_index"]}
            if "compare_label" in row:
                base["compare"] = row["compare_label"]
            if "breakdown_value" in row:
                base["breakdown"] = row["breakdown_value"]
            if kind == "StickinessQuery":
                out += [{**base, "day": d} for d in row["days"]]
            elif "aggregated_value" in row:
                out.append(base)
            else:
                out += [{**base, "day": d} for d in row["days"]]
    elif kind == "FunnelsQuery":
        groups = result if result and isinstance(result[0], list) else [result]
        for steps in (g for g in groups if g):
            base = (
                {"funnelStepBreakdown": steps[0]["breakdown_value"]}
                if "breakdown_value" in steps[0]
                else {}
            )
            for s in range(1, len(steps) + 1):
                out.append({**base, "funnelStep": s})
                if s > 1:
                    out.append({**base, "funnelStep": -s})
    elif kind == "RetentionQuery":
        for row in result:
            base = {"breakdown": row["breakdown_value"]} if "breakdown_value" in row else {}
            out += [{**base, "day": row["date"], "interval": k} for k in range(len(row["values"]))]
    elif kind == "LifecycleQuery":
        for row in result:
            out += [{"status": row["status"], "day": d} for d in row["days"]]
    return out


def _exact(query: dict[str, Any], nq_query: Any, sel: dict[str, Any]) -> bool:
    """Is the actors total of this point the very number the answer shows?"""
    if isinstance(nq_query, TrendsQuery):
        node = nq_query.series[sel.get("series", 0)]
        return (
            node.math in PERSON_COUNTS
            and display_of(nq_query) != CUMULATIVE_DISPLAY
            and smoothing_of(nq_query) == 1
        )
    other = (
        sel.get("breakdown") == OTHER_BREAKDOWN or sel.get("funnelStepBreakdown") == OTHER_BREAKDOWN
    )
    if query["kind"] == "RetentionQuery":
        return not other  # "other" sums its values' counts: one person may count twice
    if query["kind"] == "FunnelsQuery":
        attribution = query.get("funnelsFilter", {}).get("breakdownAttributionType")
        return not (other and attribution == "all_events")
    return True


def check_actors(
    events: list[dict[str, Any]],
    query: dict[str, Any],
    *,
    now: str,
    timezone: str = "UTC",
    buckets: int = 4,
    points: int = 8,
) -> int:
    """For every point of the answer: parallel persons == reference persons, and their number
    equals the shown number where it stands for persons (else: none iff zero, at most it for
    event counts). Returns the number of points checked."""
    nq = normalise(parse_query(query), timezone=timezone, week_start=0, now=parse_instant(now))
    reference = ReferenceEngine()
    parallel = ParallelEngine("inline", min_task_rows=0)
    checked = 0
    with tempfile.TemporaryDirectory(prefix="eventlens-actors-") as tmp:
        table = EventTable.open_or_create(Path(tmp) / "events", buckets=buckets)
        if events:
            table.append(event_rows(events), log_offset=None)
        snapshot = table.snapshot()
        result = reference.run(nq, snapshot)
        if (
            isinstance(nq.query, TrendsQuery)
            and nq.query.trendsFilter
            and nq.query.trendsFilter.formula
        ):
            return 0
        every = selectors(query, result)
        # Evenly spread, at most `points` of them (hour-interval trends have hundreds).
        step = max(1, -(-len(every) // points))
        for sel in every[::step]:
            r = resolve(nq, InsightActorsQuery(source=query, **sel), result)
            want = reference.actors(r.query, snapshot, r.cell)
            got = parallel.actors(r.query, snapshot, r.cell)
            assert got == want, f"{sel}: parallel {got} != reference {want}\nquery={query}"
            if _exact(query, nq.query, sel):
                assert len(want) == r.shown, (
                    f"{sel}: {len(want)} persons, shown {r.shown}\nquery={query}"
                )
            elif (
                isinstance(nq.query, TrendsQuery)
                and nq.query.series[sel.get("series", 0)].math == "total"
                and display_of(nq.query) != CUMULATIVE_DISPLAY
                and smoothing_of(nq.query) == 1
            ):
                assert len(want) <= r.shown and (len(want) == 0) == (r.shown == 0), (
                    sel,
                    want,
                    r.shown,
                )
            checked += 1
    return checked

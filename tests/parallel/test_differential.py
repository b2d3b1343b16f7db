"""Differential tests: the parallel engine returns exactly the reference engine's results
(floats within 1e-9 relative) on generated events and queries of every kind, with each
executor, with 1, 2 and 16 person buckets, from resident buckets (built at once or extended
append by append) or Parquet scans."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.parallel import strategies as s
from tests.parallel.support import compare_engines

# Modest in CI; EVENTLENS_PARALLEL_EXAMPLES=500 for a thorough local run.
SETTINGS = settings(
    max_examples=int(os.environ.get("EVENTLENS_PARALLEL_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LAYOUTS = st.tuples(
    st.sampled_from((1, 2, 16)),  # person buckets
    st.sampled_from(("inline", "local")),  # executor
    st.sampled_from(s.TIMEZONES),
    st.sampled_from((0, 1)),  # week start
    st.sampled_from((0, 20, 10**9)),  # min_task_rows: one sub-task per bucket .. all in one
    st.booleans(),  # resident buckets (else the Parquet scan path)
    st.sampled_from((1, 2, 3)),  # appends, querying in between (resident buckets extended)
)


def _check(events: list[dict[str, Any]], query: dict[str, Any], layout: tuple[Any, ...]) -> None:
    buckets, executor, timezone, week_start, min_task_rows, resident, appends = layout
    compare_engines(
        events,
        query,
        buckets=buckets,
        executor=executor,
        timezone=timezone,
        week_start=week_start,
        now=s.NOW,
        min_task_rows=min_task_rows,
        resident=resident,
        appends=appends,
    )


@SETTINGS
@given(s.event_sets(), s.trends_queries(), LAYOUTS)
def test_trends(events: list[dict[str, Any]], query: dict[str, Any], layout: Any) -> None:
    _check(events, query, layout)


@SETTINGS
@given(s.event_sets(), s.funnels_queries(), LAYOUTS)
def test_funnels(events: list[dict[str, Any]], query: dict[str, Any], layout: Any) -> None:
    _check(events, query, layout)


@settings(SETTINGS, max_examples=int(os.environ.get("EVENTLENS_PARALLEL_EXAMPLES", "30")))
@given(s.event_sets(), s.funnel_view_queries(), LAYOUTS)
def test_funnel_views(events: list[dict[str, Any]], query: dict[str, Any], layout: Any) -> None:
    """time_to_convert (merged multisets binned once) and trends (per-interval counts)."""
    _check(events, query, layout)


@SETTINGS
@given(s.event_sets(), s.retention_queries(), LAYOUTS)
def test_retention(events: list[dict[str, Any]], query: dict[str, Any], layout: Any) -> None:
    _check(events, query, layout)


@SETTINGS
@given(s.event_sets(), s.stickiness_queries(), LAYOUTS)
def test_stickiness(events: list[dict[str, Any]], query: dict[str, Any], layout: Any) -> None:
    _check(events, query, layout)


@SETTINGS
@given(s.event_sets(), s.lifecycle_queries(), LAYOUTS)
def test_lifecycle(events: list[dict[str, Any]], query: dict[str, Any], layout: Any) -> None:
    _check(events, query, layout)


@SETTINGS
@given(s.path_event_sets(), s.paths_queries(), LAYOUTS)
def test_paths(events: list[dict[str, Any]], query: dict[str, Any], layout: Any) -> None:
    _check(events, query, layout)

"""Differential tests of actors: for generated events and insight queries of every kind, at
every point of the answer, the parallel engine lists exactly the reference's persons, and as
many as the answer shows where the number counts persons (tests/query/actors_support.py)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from tests.parallel import strategies as s
from tests.query.actors_support import check_actors

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(s.event_sets(), s.trends_queries())
def test_trends(events: list[dict[str, Any]], query: dict[str, Any]) -> None:
    check_actors(events, query, now=s.NOW)


@SETTINGS
@given(s.event_sets(), s.funnels_queries())
def test_funnels(events: list[dict[str, Any]], query: dict[str, Any]) -> None:
    check_actors(events, query, now=s.NOW)


@SETTINGS
@given(s.event_sets(), s.retention_queries())
def test_retention(events: list[dict[str, Any]], query: dict[str, Any]) -> None:
    check_actors(events, query, now=s.NOW)


@SETTINGS
@given(s.event_sets(), s.stickiness_queries())
def test_stickiness(events: list[dict[str, Any]], query: dict[str, Any]) -> None:
    check_actors(events, query, now=s.NOW)


@SETTINGS
@given(s.event_sets(), s.lifecycle_queries())
def test_lifecycle(events: list[dict[str, Any]], query: dict[str, Any]) -> None:
    check_actors(events, query, now=s.NOW)

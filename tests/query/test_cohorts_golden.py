"""Cohort golden fixtures (tests/fixtures/cohorts): hand-computed answers of queries naming
cohorts, on every engine; and the normalised query's cohort rules (unknown ids are 400s naming
the field, the fingerprint holds each cohort's definition and its resolved window)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eventlens.errors import InvalidQuery
from eventlens.query.cohorts import CohortLookup, ResolvedCohort, parse_definition, resolve
from eventlens.query.model import parse_query
from eventlens.query.normalise import normalise
from eventlens.query.testing import parse_instant, run_on_events
from tests.query.golden.compare import mismatches

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cohorts"
PATHS = sorted(FIXTURES.glob("*.json"))


def lookup(cohorts: list[dict[str, Any]], timezone: str, now: str) -> CohortLookup:
    found: dict[int, ResolvedCohort] = {}
    for c in cohorts:
        static = "person_ids" in c
        found[c["id"]] = resolve(
            c["id"],
            c["name"],
            members=frozenset(c["person_ids"]) if static else None,
            definition=None if static else parse_definition(c["filters"]),
            timezone=timezone,
            now=parse_instant(now),
        )
    return found.get


def test_there_are_fixtures() -> None:
    assert len(PATHS) >= 3


@pytest.mark.parametrize("engine", ["reference", "parallel"])
@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_cohort_fixture(path: Path, engine: str) -> None:
    fx = json.loads(path.read_text())
    tz = fx["project"]["timezone"]
    result = run_on_events(
        fx["events"],
        fx["query"],
        timezone=tz,
        week_start=fx["project"]["week_start"],
        now=fx["now"],
        engine=engine,
        cohorts=lookup(fx["cohorts"], tz, fx["now"]),
    )
    problems = mismatches(fx["expected"], json.loads(json.dumps(result)))
    assert not problems, f"{path.name}: {problems[:5]}"


BUYERS = {
    "properties": {
        "type": "AND",
        "values": [
            {
                "type": "behavioral",
                "key": "purchase",
                "value": "performed_event",
                "time_value": 30,
                "time_interval": "day",
            }
        ],
    }
}
QUERY = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview"}],
    "properties": [{"type": "cohort", "key": "id", "value": 5, "operator": "in"}],
}


def _fingerprint(filters: dict[str, Any], now: str, query: dict[str, Any] = QUERY) -> str:
    return normalise(
        parse_query(query),
        now=parse_instant(now),
        cohorts=lookup([{"id": 5, "name": "b", "filters": filters}], "UTC", now),
    ).answer_fingerprint()


def test_fingerprint_holds_the_definition_and_the_day_of_its_window() -> None:
    base = _fingerprint(BUYERS, "2024-01-31T08:00:00Z")
    # Same day: same window, same key (the window is day-aligned).
    assert _fingerprint(BUYERS, "2024-01-31T09:00:00Z") == base
    edited = json.loads(json.dumps(BUYERS))
    edited["properties"]["values"][0]["time_value"] = 7
    assert _fingerprint(edited, "2024-01-31T08:00:00Z") != base


def test_unknown_cohort_is_a_400_naming_the_field() -> None:
    query = {
        **QUERY,
        "properties": [],
        "breakdownFilter": {"breakdown_type": "cohort", "breakdown": ["all", 77]},
    }
    with pytest.raises(InvalidQuery) as info:
        normalise(
            parse_query(query), now=parse_instant("2024-01-31T08:00:00Z"), cohorts=lambda _: None
        )
    assert info.value.field == "breakdownFilter.breakdown" and "cohort 77" in str(info.value)


@pytest.mark.parametrize(
    ("filt", "field"),
    [
        ({"type": "cohort", "key": "name", "value": 1}, "properties[0].key"),
        ({"type": "cohort", "key": "id", "value": "x"}, "properties[0].value"),
        ({"type": "cohort", "key": "id", "value": 1, "operator": "gt"}, "properties[0].operator"),
        ({"type": "event", "key": "a", "value": 1, "operator": "in"}, "properties[0].operator"),
    ],
)
def test_bad_cohort_filters(filt: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidQuery) as info:
        parse_query({**QUERY, "properties": [filt]})
    assert info.value.field == field


def test_a_cohort_breakdown_is_a_list_of_ids() -> None:
    bad = {**QUERY, "breakdownFilter": {"breakdown_type": "cohort", "breakdown": "$browser"}}
    with pytest.raises(InvalidQuery) as info:
        parse_query(bad)
    assert info.value.field == "breakdownFilter.breakdown"

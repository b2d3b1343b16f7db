"""Golden fixtures: every rule of insights.md, hand-computed, run against every engine.

One loader for all of tests/fixtures/insights/**/*.json (format: that folder's README.md).
Adding a case is adding one file; adding an engine is adding its name to ENGINES.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from eventlens.errors import EventLensError
from eventlens.query.model import parse_query
from tests.query.golden.compare import assert_matches

# Engines checked against the fixtures; the reference engine is the oracle and comes first.
ENGINES: tuple[str, ...] = ("reference", "parallel")

FIXTURE_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "insights"
RULES_FILE = FIXTURE_DIR / "rules.json"
FIXTURE_KEYS = {"rules", "description", "project", "now", "events", "query"}
EVENT_KEYS = {"event", "distinct_id", "person_id", "timestamp", "properties", "person_properties"}


def fixture_paths() -> list[Path]:
    return sorted(p for p in FIXTURE_DIR.rglob("*.json") if p != RULES_FILE)


def fixture_id(path: Path) -> str:
    return path.relative_to(FIXTURE_DIR).as_posix()


@cache
def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@cache
def rule_ids() -> tuple[str, ...]:
    return tuple(rule["id"] for rule in json.loads(RULES_FILE.read_text()))


PATHS = fixture_paths()
IDS = [fixture_id(p) for p in PATHS]


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_fixture_is_well_formed(path: Path) -> None:
    """Structure per the query contract, and the query parses (or fails as the fixture says)."""
    fx = load(path)
    assert set(fx) == FIXTURE_KEYS | (
        {"expected_error"} if "expected_error" in fx else {"expected"}
    )
    assert fx["rules"] and all(isinstance(r, str) for r in fx["rules"])
    assert isinstance(fx["description"], str) and len(fx["description"]) > 20
    assert set(fx["project"]) == {"timezone", "week_start"}
    assert fx["project"]["week_start"] in (0, 1)
    assert isinstance(fx["now"], str)
    for ev in fx["events"]:
        assert {"event", "distinct_id", "timestamp"} <= set(ev) <= EVENT_KEYS, ev
    if "expected_error" in fx:
        err = fx["expected_error"]
        assert set(err) <= {"type", "field"} and "type" in err
    else:
        parse_query(fx["query"])


def test_every_rule_has_a_fixture_and_every_fixture_rule_exists() -> None:
    known = rule_ids()
    assert len(known) == len(set(known)), "duplicate rule ids in rules.json"
    used: set[str] = set()
    for path in PATHS:
        for rule in load(path)["rules"]:
            assert rule in known, f"{fixture_id(path)}: unknown rule {rule!r}"
            used.add(rule)
    uncovered = [r for r in known if r not in used]
    assert not uncovered, f"rules without a fixture: {uncovered}"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_golden(path: Path, engine: str) -> None:
    from eventlens.query.testing import run_on_events

    fx = load(path)
    kwargs: dict[str, Any] = {
        "timezone": fx["project"]["timezone"],
        "week_start": fx["project"]["week_start"],
        "now": fx["now"],
        "engine": engine,
    }
    context = f"{fixture_id(path)} {fx['rules']}: {fx['description']}"
    if "expected_error" in fx:
        want = fx["expected_error"]
        with pytest.raises(EventLensError) as info:
            run_on_events(fx["events"], fx["query"], **kwargs)
        assert type(info.value).__name__ == want["type"], context
        if "field" in want:
            assert info.value.field == want["field"], context
        return
    actual = run_on_events(fx["events"], fx["query"], **kwargs)
    # Results must be JSON-able (the API serves them as they are).
    actual = json.loads(json.dumps(actual))
    try:
        assert_matches(fx["expected"], actual)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n-- {context}") from None

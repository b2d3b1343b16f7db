"""Every golden fixture of the reference engine (tests/fixtures/insights) passes on the parallel
engine, through the same helper the golden tests use (a real event table)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eventlens.query.testing import run_on_events
from tests.query.golden.compare import mismatches

FIXTURE_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "insights"


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


# Error fixtures (expected_error) are rejected by parse_query before any engine runs.
PATHS = sorted(
    p for p in FIXTURE_DIR.rglob("*.json") if p.name != "rules.json" and "expected" in _load(p)
)


@pytest.mark.parametrize("path", PATHS, ids=[p.relative_to(FIXTURE_DIR).as_posix() for p in PATHS])
def test_fixture_on_parallel_engine(path: Path) -> None:
    fx = _load(path)
    result = run_on_events(
        fx["events"],
        fx["query"],
        timezone=fx["project"]["timezone"],
        week_start=fx["project"]["week_start"],
        now=fx["now"],
        engine="parallel",
    )
    result = json.loads(json.dumps(result))  # JSON-able, as the API serves it
    problems = mismatches(fx["expected"], result)
    assert not problems, "\n".join(problems[:10])


def test_there_are_fixtures() -> None:
    assert len(PATHS) > 50

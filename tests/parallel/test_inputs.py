"""The parallel engine takes what the reference engine takes: a Snapshot, an Arrow table of
event rows, or row dicts; and it is registered as engine "parallel"."""

from __future__ import annotations

import pytest

from eventlens.errors import InvalidInput
from eventlens.query import engine_names, get_engine, normalise, parse_query, register_engine
from eventlens.query.parallel import ParallelEngine, make_engine
from eventlens.query.testing import event_rows, parse_instant
from tests.query import engine_support as es

EVENTS = [
    es.ev("$pageview", "a", "2024-01-08T10:00:00Z", plan="pro"),
    es.ev("$pageview", "a", "2024-01-08T11:00:00Z"),
    es.ev("signup", "b", "2024-01-09T10:00:00Z", plan="free"),
    es.ev("$pageview", "b", "2024-01-09T10:00:00Z"),
]
QUERY = {
    "kind": "TrendsQuery",
    "series": [{"event": "$pageview", "math": "dau"}, {"event": None}],
    "breakdownFilter": {"breakdown": "plan"},
}


def _nq() -> object:
    return normalise(
        parse_query(QUERY), timezone="Europe/Berlin", now=parse_instant("2024-01-10T12:00:00Z")
    )


def test_row_dicts_and_arrow_tables_give_the_reference_result() -> None:
    expected = es.run(EVENTS, QUERY, timezone="Europe/Berlin")
    engine = ParallelEngine("inline")
    assert engine.run(_nq(), es.rows(EVENTS)) == expected  # type: ignore[arg-type]
    assert engine.run(_nq(), event_rows(es.rows(EVENTS))) == expected  # type: ignore[arg-type]
    assert any(row["data"] != [0] * len(row["data"]) for row in expected)


def test_other_inputs_are_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="Snapshot or an Arrow table"):
        ParallelEngine().run(_nq(), 42)  # type: ignore[arg-type]


def test_registering_an_engine_keeps_the_built_ins() -> None:
    register_engine(make_engine())
    assert {"parallel", "reference"} <= set(engine_names())
    assert isinstance(get_engine("parallel"), ParallelEngine)

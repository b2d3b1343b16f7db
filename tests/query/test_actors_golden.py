"""Golden actors: hand-computed persons behind insight numbers (tests/fixtures/actors/
cases.json), in both engines, with the number the answer shows at each point."""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from eventlens.query import normalise, parse_query
from eventlens.query.model import InsightActorsQuery
from eventlens.query.parallel import ParallelEngine
from eventlens.query.reference import ReferenceEngine
from eventlens.query.semantics.actors import resolve
from eventlens.query.testing import event_rows, parse_instant
from eventlens.storage.event_table import EventTable, Snapshot

CASES = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "actors" / "cases.json").read_text()
)


def _alias(person: str) -> str:
    # Person ids must be bucketable (hex-led UUIDs); the fixture's "p1" .. are mapped.
    return str(uuid.uuid5(uuid.NAMESPACE_OID, person))


@pytest.fixture(scope="module")
def snapshot() -> Iterator[Snapshot]:
    events = [
        {**e, "distinct_id": e["person_id"], "person_id": _alias(e["person_id"])}
        for e in CASES["events"]
    ]
    with tempfile.TemporaryDirectory(prefix="eventlens-actors-golden-") as tmp:
        table = EventTable.open_or_create(Path(tmp) / "events", buckets=4)
        rows: pa.Table = event_rows(events)
        table.append(rows, log_offset=None)
        yield table.snapshot()


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["name"][:50] for c in CASES["cases"]])
@pytest.mark.parametrize("engine", ["reference", "parallel"])
def test_golden_actors(case: dict[str, Any], engine: str, snapshot: Snapshot) -> None:
    nq = normalise(
        parse_query(case["query"]), timezone="UTC", week_start=0, now=parse_instant(CASES["now"])
    )
    result = ReferenceEngine().run(nq, snapshot)
    runner = (
        ReferenceEngine() if engine == "reference" else ParallelEngine("inline", min_task_rows=0)
    )
    back = {_alias(p): p for p in {e["person_id"] for e in CASES["events"]}}
    for point in case["points"]:
        sel = InsightActorsQuery(source=case["query"], **point["selector"])
        r = resolve(nq, sel, result)
        persons = sorted(back[p] for p in runner.actors(r.query, snapshot, r.cell))
        assert persons == point["persons"], point["selector"]
        assert r.shown == point["shown"], point["selector"]

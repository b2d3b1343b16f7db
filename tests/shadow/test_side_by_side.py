"""Correct engines side by side on a generated workload, with ingestion committing new versions
while the queries run: zero mismatches, because both engines read the same pinned version."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from eventlens.generate import generate
from eventlens.generate.writer import write_file
from eventlens.ingest.bulk_import import import_file
from eventlens.query.engines import Engine
from eventlens.query.querylog import FILE_NAME
from eventlens.shadow.replay import replay_log
from eventlens.shadow.report import Policy, build_report
from eventlens.shadow.wiring import shadow_of
from eventlens.storage.event_table import EventTable
from eventlens.storage.schema import EVENT_SCHEMA
from tests.shadow.conftest import Shadowed
from tests.shadow.engines import ReferenceCandidate

END = datetime(2026, 11, 21, tzinfo=UTC)
RANGE = {"date_from": "2026-11-01", "date_to": "2026-11-20"}
_PV = {"kind": "EventsNode", "event": "$pageview"}
QUERIES: list[dict[str, Any]] = [
    {"kind": "TrendsQuery", "series": [_PV], "interval": "day", "dateRange": RANGE},
    {
        "kind": "TrendsQuery",
        "series": [{**_PV, "math": "dau"}, {"kind": "EventsNode", "event": "signup"}],
        "interval": "week",
        "dateRange": RANGE,
    },
    {
        "kind": "FunnelsQuery",
        "series": [
            {"kind": "EventsNode", "event": "signup"},
            {"kind": "EventsNode", "event": "activated"},
            {"kind": "EventsNode", "event": "purchase"},
        ],
        "dateRange": RANGE,
    },
    {
        "kind": "RetentionQuery",
        "retentionFilter": {
            "targetEntity": {"id": "signup", "type": "events"},
            "returningEntity": {"id": "$pageview", "type": "events"},
            "period": "Day",
            "totalIntervals": 7,
        },
        "dateRange": {"date_to": "2026-11-20"},
    },
    {"kind": "StickinessQuery", "series": [_PV], "interval": "day", "dateRange": RANGE},
    {"kind": "LifecycleQuery", "series": [_PV], "interval": "day", "dateRange": RANGE},
]


def _with_persons(batch: pa.RecordBatch) -> pa.Table:
    # Generated events carry no person id (ingest assigns it); derive a stable bucketable one.
    t = pa.Table.from_batches([batch])
    persons = [str(uuid.uuid5(uuid.NAMESPACE_URL, d)) for d in t.column("distinct_id").to_pylist()]
    return pa.table(
        {
            "uuid": t.column("uuid"),
            "event": t.column("event"),
            "distinct_id": t.column("distinct_id"),
            "person_id": pa.array(persons, pa.string()),
            "timestamp": t.column("timestamp"),
            "properties": t.column("properties"),
            "person_properties": pa.array(["{}"] * t.num_rows, pa.string()),
        },
        schema=EVENT_SCHEMA,
    )


def _candidates() -> list[Engine | str]:
    out: list[Engine | str] = [ReferenceCandidate()]
    try:
        import eventlens.query.parallel  # noqa: F401  (registered on first use by the runner)
    except ImportError:
        return out
    return [*out, "parallel"]


@pytest.mark.parametrize("candidate", _candidates(), ids=lambda c: getattr(c, "name", c))
def test_zero_mismatches_with_concurrent_ingestion(
    shadowed: Shadowed, tmp_path: Path, candidate: Engine | str
) -> None:
    source = tmp_path / "generated.parquet"
    write_file(source, 1500, seed=7, end=END, days=21)
    import_file(shadowed.settings, shadowed.project.id, source)

    table = EventTable.open_or_create(shadowed.settings.event_table_dir(shadowed.project.id))
    done, committed = threading.Event(), threading.Event()

    def ingest() -> None:
        # Keep committing new versions until the queries are done.
        for batch in generate(1_000_000, seed=8, end=END, days=21, chunk_size=50):
            if done.wait(0.2):
                return
            table.append(_with_persons(batch), log_offset=None)
            committed.set()

    writer = threading.Thread(target=ingest, daemon=True)
    service = shadowed.service(candidate, shadow_queue=64)
    writer.start()
    try:
        for q in QUERIES:
            # At least one commit between two queries, and more while the candidates run.
            assert committed.wait(60)
            committed.clear()
            service.run_sync(shadowed.project.id, q, engine="reference")
    finally:
        done.set()
        writer.join(60)
    assert shadow_of(service) is not None and shadow_of(service).drain(120)

    report = build_report(
        shadow_of(service).store, policy=Policy(min_days=0, min_queries=len(QUERIES))
    )
    problems = [(r["outcome"], r["first_diff"], r["error"]) for r in report["records"]]
    assert report["outcomes"]["match"] == len(QUERIES), problems
    assert report["verdict"] == "ready", report["reasons"]

    # The queries really did see different versions (ingestion ran in between).
    log = shadowed.settings.data_dir / FILE_NAME
    versions = {orjson.loads(line)["data_version"] for line in log.read_bytes().splitlines()}
    assert len(versions) == len(QUERIES)

    # The production query log replays offline on both engines, each on its own version.
    name = getattr(candidate, "name", candidate)
    replayed = replay_log(shadowed.settings, log, primary="reference", candidate=str(name))
    assert replayed["replayed"] == len(QUERIES)
    assert replayed["outcomes"] == {"match": len(QUERIES)}, replayed["problems"][:3]

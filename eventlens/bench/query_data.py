"""Benchmark data for `eventlens bench query`: the seeded generator's events in an event table.

Person resolution here is the simplest one (person = distinct_id, uuid5): the benchmark measures
query engines, and every engine reads the same table, so the numbers compare like with like.
"""

from __future__ import annotations

import uuid as uuidlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from eventlens.generate import generate
from eventlens.generate.shape import DEFAULT_END
from eventlens.query.cohorts import CohortLookup, parse_definition, resolve, window
from eventlens.storage.event_table import EventTable
from eventlens.storage.schema import EVENT_SCHEMA, PERSON_NAMESPACE

BENCH_DAYS = 90
QUERY_DAYS = 30


def load_bench_table(path: Path, n_events: int, buckets: int = 16, seed: int = 42) -> EventTable:
    """Create (or reuse, if it already holds data) a table at `path` with `n_events` events."""
    table = EventTable.open_or_create(path, buckets=buckets)
    if table.snapshot().files:
        return table
    for batch in generate(n_events, seed=seed, days=BENCH_DAYS, chunk_size=1_000_000):
        t = pa.Table.from_batches([batch])
        ids = pc.dictionary_encode(t.column("distinct_id").combine_chunks())
        persons = pa.array(
            [str(uuidlib.uuid5(PERSON_NAMESPACE, f"bench:{d}")) for d in ids.dictionary.to_pylist()]
        )
        person = pc.take(persons, ids.indices)
        rows = pa.table(
            {
                "uuid": t.column("uuid"),
                "event": t.column("event"),
                "distinct_id": t.column("distinct_id"),
                "person_id": person,
                "timestamp": t.column("timestamp"),
                "properties": t.column("properties"),
                "person_properties": pa.array(["{}"] * t.num_rows, pa.string()),
            }
        ).cast(EVENT_SCHEMA)
        table.append(rows, log_offset=None)
    # One file per (day, bucket), as the background compaction leaves a table at rest.
    table.compact(2)
    return table


def load_import_table(root: Path, data: Path) -> tuple[EventTable, datetime]:
    """`data` (Parquet / JSON lines, any encoding `eventlens import` reads) imported into a
    table under `root` (reused when it already holds rows), and the end of its data: the UTC
    midnight after its last event. Rows the import rejects are a failure (InvalidInput)."""
    from eventlens.config import Settings
    from eventlens.errors import InvalidInput
    from eventlens.ingest.bulk_import import import_file

    settings = Settings().with_data_dir(root)
    table_dir = settings.event_table_dir(1)
    if not (EventTable.exists(table_dir) and EventTable.open_or_create(table_dir).snapshot().files):
        result = import_file(settings, 1, data)
        if result.invalid:
            raise InvalidInput(f"{data}: {result.invalid:,} rows rejected ({result.reasons})")
    table = EventTable.open_or_create(table_dir)
    last = max((f.max_ts or 0) for f in table.snapshot().files)
    day = datetime.fromtimestamp(last / 1e6, UTC).date() + timedelta(days=1)
    return table, datetime(day.year, day.month, day.day, tzinfo=UTC)


def query_range(end: datetime = DEFAULT_END) -> dict[str, str]:
    """The last QUERY_DAYS days before `end` (a UTC midnight: the generator's end, or the
    day after a `--data` file's last event), absolute, so `now` does not matter."""
    last = end - timedelta(days=1)
    first = end - timedelta(days=QUERY_DAYS)
    return {"date_from": first.date().isoformat(), "date_to": last.date().isoformat()}


# The mix's cohort: persons with at least two purchases in the 30 days before the data's end.
BENCH_COHORT_ID = 1
BENCH_COHORT_FILTERS = {
    "properties": {
        "type": "AND",
        "values": [
            {
                "type": "behavioral",
                "key": "purchase",
                "event_type": "events",
                "value": "performed_event_multiple",
                "operator": "gte",
                "operator_value": 2,
                "time_value": 30,
                "time_interval": "day",
            }
        ],
    }
}


def cohort_window(end: datetime | None = None) -> tuple[int, int]:
    """[lo, hi) epoch µs of the mix cohort's window, resolved at `end` (the mix's now)."""
    return window(30, "day", "UTC", DEFAULT_END if end is None else end)


def bench_cohorts(now: datetime) -> CohortLookup:
    """The mix's cohorts by id, resolved at `now` (normalise's `cohorts=`)."""
    cohort = resolve(
        BENCH_COHORT_ID,
        "repeat buyers",
        members=None,
        definition=parse_definition(BENCH_COHORT_FILTERS),
        timezone="UTC",
        now=now,
    )
    return {BENCH_COHORT_ID: cohort}.get


def query_mix(end: datetime = DEFAULT_END) -> dict[str, dict[str, object]]:
    """benchmark.md's query mix over the last QUERY_DAYS days before `end`."""
    dr = query_range(end)
    funnel: dict[str, object] = {
        "kind": "FunnelsQuery",
        "series": [
            {"kind": "EventsNode", "event": "$pageview"},
            {"kind": "EventsNode", "event": "signup"},
            {"kind": "EventsNode", "event": "purchase"},
        ],
        "dateRange": dr,
        "funnelsFilter": {"funnelWindowInterval": 7, "funnelWindowIntervalUnit": "day"},
    }
    return {
        "trends_breakdown": {
            "kind": "TrendsQuery",
            "series": [
                {"kind": "EventsNode", "event": "$pageview"},
                {"kind": "EventsNode", "event": "$pageview", "math": "dau"},
            ],
            "interval": "day",
            "dateRange": dr,
            "breakdownFilter": {"breakdown": "$browser", "breakdown_type": "event"},
        },
        "trends_sum_filter": {
            "kind": "TrendsQuery",
            "series": [
                {
                    "kind": "EventsNode",
                    "event": "purchase",
                    "math": "sum",
                    "math_property": "revenue",
                }
            ],
            "interval": "week",
            "dateRange": dr,
            "properties": [{"key": "country", "value": ["US", "DE", "GB"], "operator": "exact"}],
        },
        "trends_cohort": {
            "kind": "TrendsQuery",
            "series": [
                {"kind": "EventsNode", "event": "$pageview"},
                {"kind": "EventsNode", "event": "$pageview", "math": "dau"},
            ],
            "interval": "day",
            "dateRange": dr,
            "properties": [
                {"type": "cohort", "key": "id", "value": BENCH_COHORT_ID, "operator": "in"}
            ],
        },
        "funnel": funnel,
        "funnel_breakdown": {
            **funnel,
            "breakdownFilter": {"breakdown": "$browser", "breakdown_type": "event"},
        },
        "retention": {
            "kind": "RetentionQuery",
            "dateRange": {"date_to": dr["date_to"]},
            "retentionFilter": {
                "period": "Week",
                "totalIntervals": 8,
                "targetEntity": {"id": "$pageview", "type": "events"},
                "returningEntity": {"id": "$pageview", "type": "events"},
            },
        },
        "stickiness": {
            "kind": "StickinessQuery",
            "series": [{"kind": "EventsNode", "event": "$pageview"}],
            "interval": "day",
            "dateRange": dr,
        },
        "lifecycle": {
            "kind": "LifecycleQuery",
            "series": [{"kind": "EventsNode", "event": "$pageview"}],
            "interval": "day",
            "dateRange": dr,
        },
        # Page paths: 30-minute sessions, repeats collapsed, 5 steps, the 50 heaviest edges.
        "paths": {
            "kind": "PathsQuery",
            "dateRange": dr,
            "pathsFilter": {"includeEventTypes": ["$pageview"]},
        },
    }

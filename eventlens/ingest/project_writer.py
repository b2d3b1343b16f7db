"""The exactly-once core of ingest: apply decoded log records of one project to its event table
and state db (storage.md item 1).

Protocol of `apply()` (docs/adr/0002-event-table-and-persons.md):
1. skip records at or below the state offset (already fully applied);
2. records at or below the table's committed log offset were committed to the table but the
   process died before the state commit: re-derive their state (same deterministic code) without
   writing rows again;
3. the rest: one SQLite transaction (persons, uuid dedupe, dead letters), ONE Delta append that
   also records the log offset as app transaction "eventlens-ingest", then the SQLite commit
   with the new state offset.
A crash between any two steps leaves either nothing or the table ahead of the state, which
step 2 repairs; nothing is lost (the log is replayed from the state offset) or duplicated.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
import pyarrow as pa

from eventlens.capture.model import CapturedEvent, DeadLetter
from eventlens.config import Settings
from eventlens.ingest.batch import prepare_batch
from eventlens.observability import metrics
from eventlens.persons.merges import MergeLag, merge_lag, rewrite_pending_merges
from eventlens.storage import deadletters, state, uuid_runs
from eventlens.storage.event_table import TARGET_FILE_ROWS, EventTable

# Rows one maintain() call may rewrite by compaction (about two compacted files).
MAINTAIN_COMPACT_ROWS = 2 * TARGET_FILE_ROWS

# Test seam: crash-injection tests replace this to die (os._exit) at a named point.
checkpoint: Callable[[str], None] = lambda name: None  # noqa: E731

_INPUT_SCHEMA = pa.schema(
    [
        ("uuid", pa.string()),
        ("event", pa.string()),
        ("distinct_id", pa.string()),
        ("timestamp", pa.int64()),
        ("properties", pa.string()),
    ]
)


@dataclass
class LogRecord:
    """One decoded log record of this project."""

    end_offset: int  # log offset just after this record (monotonic)
    received_at: int  # µs UTC
    events: list[CapturedEvent]
    dead: list[DeadLetter] = field(default_factory=list)
    traceparent: str | None = None  # the capture request's span (tracing on), for span links


def events_to_table(events: list[CapturedEvent]) -> pa.Table:
    """CapturedEvents -> the input table of ingest.batch.prepare_batch."""
    return pa.Table.from_arrays(
        [
            pa.array([e.uuid for e in events], pa.string()),
            pa.array([e.event for e in events], pa.string()),
            pa.array([e.distinct_id for e in events], pa.string()),
            pa.array([e.timestamp for e in events], pa.int64()),
            pa.array([orjson.dumps(e.properties).decode() for e in events], pa.string()),
        ],
        schema=_INPUT_SCHEMA,
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def wire_event(e: CapturedEvent) -> dict[str, object]:
    """A stored event in PostHog wire form (ISO timestamp when representable): what capture's
    parser accepts again, so a quarantined event can be replayed."""
    ts: object = e.timestamp
    with suppress(OverflowError):
        ts = (_EPOCH + timedelta(microseconds=e.timestamp)).isoformat()
    return {
        "uuid": e.uuid,
        "event": e.event,
        "distinct_id": e.distinct_id,
        "timestamp": ts,
        "properties": e.properties,
    }


def _storable(payload: object) -> object:
    """`payload` if orjson can encode it, else its stdlib-JSON round trip (integers beyond 64
    bits become floats): a quarantine must not fail on the value that made the record bad."""
    try:
        orjson.dumps(payload)
    except TypeError:
        return orjson.loads(json.dumps(payload, default=repr))
    return payload


@contextmanager
def writer_lock(settings: Settings, project_id: int) -> Iterator[None]:
    """Exclusive per-project writer lock across processes (server consumer vs import)."""
    d = settings.project_dir(project_id)
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / "writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class ProjectWriter:
    """Applies log records of one project; safe to use from one thread at a time."""

    def __init__(self, settings: Settings, project_id: int) -> None:
        self.settings = settings
        self.project_id = project_id
        with writer_lock(settings, project_id):
            self.table = EventTable.open_or_create(
                settings.event_table_location(project_id), settings.buckets
            )
            self.conn = state.connect(settings.state_db(project_id))
        self.duplicates_total = 0

    def applied_offset(self) -> int:
        """Log offset through which this project's records are fully applied (0 if none)."""
        return state.get_meta(self.conn, state.STATE_OFFSET) or 0

    def apply(self, records: list[LogRecord]) -> int | None:
        """Apply `records` (in log order) exactly once; returns the new table version, or None
        when no rows were committed."""
        with writer_lock(self.settings, self.project_id):
            applied = self.applied_offset()
            todo = [r for r in records if r.end_offset > applied]
            if not todo:
                return None
            table_offset = self.table.committed_log_offset()
            if table_offset is None:
                table_offset = -1
            replay = [r for r in todo if r.end_offset <= table_offset]
            fresh = [r for r in todo if r.end_offset > table_offset]
            if replay:
                self._transaction(replay, write_table=False)
            return self._transaction(fresh, write_table=True) if fresh else None

    def _transaction(self, records: list[LogRecord], *, write_table: bool) -> int | None:
        conn = self.conn
        end = records[-1].end_offset
        conn.execute("BEGIN IMMEDIATE")
        try:
            events = [e for r in records for e in r.events]
            prepared = prepare_batch(conn, self.project_id, events_to_table(events))
            for r in records:
                if r.dead:
                    deadletters.add(
                        conn, r.received_at, ((d.index, d.reason, d.payload) for d in r.dead)
                    )
            version = None
            checkpoint("before_table_commit")
            if write_table and prepared.rows.num_rows:
                version = self.table.append(prepared.rows, log_offset=end)
                checkpoint("after_table_commit")
            state.set_meta(conn, state.STATE_OFFSET, end)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        checkpoint("after_state_commit")
        if write_table and prepared.duplicates:
            self.duplicates_total += prepared.duplicates
            metrics.ingest_duplicates.inc(prepared.duplicates)
        return version

    def quarantine(self, record: LogRecord, reason: str) -> int:
        """Move a record that cannot be applied to the dead letters: each event (in the wire
        form `eventlens deadletter replay` re-validates) with `reason`, each dead letter it
        carried with its own reason; the state offset then passes the record, so the next
        records apply. Returns how many dead letters were added (0 if already applied)."""
        with writer_lock(self.settings, self.project_id):
            if record.end_offset <= self.applied_offset():
                return 0
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                added = deadletters.add(
                    conn,
                    record.received_at,
                    ((i, reason, _storable(wire_event(e))) for i, e in enumerate(record.events)),
                )
                added += deadletters.add(
                    conn,
                    record.received_at,
                    ((d.index, d.reason, _storable(d.payload)) for d in record.dead),
                )
                state.set_meta(conn, state.STATE_OFFSET, record.end_offset)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return added

    def maintain(self) -> None:
        """Compaction (settings.compact_min_files) and pending person-merge rewrites; cheap
        when there is nothing to do."""
        with writer_lock(self.settings, self.project_id):
            # A bounded share per call: re-laying a big backlog (a table from before coarse
            # periods) must not hold ingest behind the writer lock for long.
            self.table.compact(self.settings.compact_min_files, max_rows=MAINTAIN_COMPACT_ROWS)
            rewrite_pending_merges(self.conn, self.table)
            uuid_runs.remove_orphans(self.conn)  # runs of big batches, merged or rolled back
            lag = merge_lag(self.conn)
        metrics.person_merge_pending.labels(str(self.project_id)).set(lag.pending)
        metrics.person_merge_lag_seconds.labels(str(self.project_id)).set(lag.oldest_age_seconds)

    def merge_lag(self) -> MergeLag:
        return merge_lag(self.conn)

    def close(self) -> None:
        self.conn.close()


def open_state(settings: Settings, project_id: int) -> sqlite3.Connection:
    """A state-db connection for readers (status, dead-letter CLI)."""
    return state.connect(settings.state_db(project_id))

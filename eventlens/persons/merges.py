"""The merge rewrite job (storage.md item 6): after two persons with events were merged, move
the old person's events to the survivor's id and bucket in one atomic table commit.

Until the job has run, queries see the old person_id on those events; the lag (pending
overrides, age of the oldest) is exported as metrics and shown by `eventlens status`.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from eventlens.storage.event_table import EventTable

# Bounded so one rewrite commit stays small; the next maintain() call takes the rest.
MAX_OVERRIDES_PER_REWRITE = 5_000


@dataclass(frozen=True)
class MergeLag:
    pending: int  # overrides whose events are not rewritten yet
    oldest_age_seconds: float  # age of the oldest pending override (0 if none)


def pending_overrides(conn: sqlite3.Connection, limit: int | None = None) -> dict[str, str]:
    """old person_id -> surviving person_id for overrides not rewritten yet, oldest first."""
    sql = (
        "SELECT old_person_id, new_person_id FROM person_overrides "
        "WHERE rewritten_at IS NULL ORDER BY created_at, old_person_id"
    )
    rows = conn.execute(sql + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
    return {str(old): str(new) for old, new in rows}


def merge_lag(conn: sqlite3.Connection, now_us: int | None = None) -> MergeLag:
    now = time.time_ns() // 1000 if now_us is None else now_us
    count, oldest = conn.execute(
        "SELECT count(*), min(created_at) FROM person_overrides WHERE rewritten_at IS NULL"
    ).fetchone()
    age = 0.0 if oldest is None else max(0.0, (now - int(oldest)) / 1e6)
    return MergeLag(int(count), age)


def rewrite_pending_merges(conn: sqlite3.Connection, table: EventTable) -> int:
    """Rewrite the events of pending overrides (one table commit), then mark them rewritten.

    The caller holds the project's writer lock. A crash between the two steps only makes the
    next run redo a rewrite that finds no old ids left. Returns how many overrides were done.
    """
    todo = pending_overrides(conn, MAX_OVERRIDES_PER_REWRITE)
    if not todo:
        return 0
    table.rewrite_persons(todo)
    now = time.time_ns() // 1000
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(
            "UPDATE person_overrides SET rewritten_at = ? "
            "WHERE old_person_id = ? AND new_person_id = ? AND rewritten_at IS NULL",
            [(now, old, new) for old, new in todo.items()],
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(todo)

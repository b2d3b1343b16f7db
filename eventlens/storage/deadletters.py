"""Per-project dead-letter store: invalid events kept with their reason (capture.md).

Rows are added by the ingest writer (inside its state transaction) and by bulk import;
`eventlens deadletter list|replay` reads them and marks replayed ones.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from eventlens.config import Settings
from eventlens.storage import state


@dataclass(frozen=True)
class DeadLetterRow:
    id: int
    received_at: int  # µs UTC
    index: int  # index in its request (capture) or row number in its file (import)
    reason: str
    payload: Any  # the raw event JSON value
    replayed_at: int | None  # µs UTC


def add(conn: sqlite3.Connection, received_at: int, items: Iterable[tuple[int, str, Any]]) -> int:
    """Insert (index, reason, payload) dead letters inside the caller's transaction; returns
    how many were added."""
    rows = [
        (received_at, i, reason, orjson.dumps(payload).decode()) for i, reason, payload in items
    ]
    conn.executemany(
        "INSERT INTO dead_letters(received_at, idx, reason, payload) VALUES (?, ?, ?, ?)", rows
    )
    return len(rows)


def list_(
    settings: Settings, project_id: int, limit: int = 100, include_replayed: bool = False
) -> list[DeadLetterRow]:
    """Oldest first, at most `limit` rows; replayed ones only with `include_replayed`."""
    conn = state.connect(settings.state_db(project_id))
    try:
        where = "" if include_replayed else "WHERE replayed_at IS NULL"
        rows = conn.execute(
            "SELECT id, received_at, idx, reason, payload, replayed_at FROM dead_letters "
            f"{where} ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
    finally:
        conn.close()
    return [DeadLetterRow(r[0], r[1], r[2], r[3], orjson.loads(r[4]), r[5]) for r in rows]


def count(settings: Settings, project_id: int, include_replayed: bool = False) -> int:
    conn = state.connect(settings.state_db(project_id))
    try:
        where = "" if include_replayed else "WHERE replayed_at IS NULL"
        return int(conn.execute(f"SELECT count(*) FROM dead_letters {where}").fetchone()[0])
    finally:
        conn.close()


def mark_replayed(settings: Settings, project_id: int, ids: Iterable[int]) -> int:
    """Mark dead letters as replayed (now); returns how many were newly marked."""
    now = time.time_ns() // 1000
    conn = state.connect(settings.state_db(project_id))
    try:
        conn.execute("BEGIN IMMEDIATE")
        cur = conn.executemany(
            "UPDATE dead_letters SET replayed_at = ? WHERE id = ? AND replayed_at IS NULL",
            [(now, int(i)) for i in ids],
        )
        conn.execute("COMMIT")
        return int(cur.rowcount)
    finally:
        conn.close()

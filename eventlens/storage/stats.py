"""Read-only counts of a project's state database, for `eventlens status`.

The state schema belongs to storage (storage/state.py), so the SQL that counts its rows lives
here and not in the CLI.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

__all__ = ["StateCounts", "state_counts"]


@dataclass(frozen=True)
class StateCounts:
    persons: int
    dead_letters: int  # not yet replayed


def state_counts(db: Path) -> StateCounts | None:
    """Persons and unreplayed dead letters of the state db at `db`, opened read-only (a running
    consumer is never blocked or written to). None if the db does not exist or cannot be read
    (e.g. created but its schema not yet committed)."""
    if not db.exists():
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        persons = int(conn.execute("SELECT count(*) FROM persons").fetchone()[0])
        dead = int(
            conn.execute("SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL").fetchone()[
                0
            ]
        )
        return StateCounts(persons=persons, dead_letters=dead)
    except sqlite3.Error:
        return None
    finally:
        conn.close()

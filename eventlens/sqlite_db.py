"""The one way EventLens's SQLite stores open their database file.

Each store (projects, dashboards, cohorts, accounts, shadow records) keeps one connection,
shared by its threads under the store's own lock, in autocommit mode (the stores run their own
BEGIN ... COMMIT), in WAL mode (readers never wait for a writer) and with a busy timeout (two
processes, the server and a CLI command, may write the same file).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["open_store_db"]

BUSY_TIMEOUT_MS = 5000


def open_store_db(path: Path, schema: str) -> sqlite3.Connection:
    """A connection to `path` (its directory created if missing) with `schema` (idempotent
    DDL: CREATE ... IF NOT EXISTS) applied. sqlite3.Error if the file cannot be opened."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    db.executescript(schema)
    return db

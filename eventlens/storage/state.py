"""The per-project state database (SQLite, WAL): persons, distinct ids, overrides, the uuid
dedupe index, dead letters and the ingest progress marker.

It is written in one transaction per applied batch, committed right after the matching Delta
commit; the Delta app-transaction marker tells a restarted writer which of the two happened
(docs/adr/0002-event-table-and-persons.md).
"""

from __future__ import annotations

import sqlite3
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from eventlens.storage import uuid_runs
from eventlens.storage.uuid_runs import UuidRuns, sort_by_hi

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS distinct_ids (
    distinct_id TEXT PRIMARY KEY,
    person_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS distinct_ids_person ON distinct_ids(person_id);
CREATE TABLE IF NOT EXISTS persons (
    person_id TEXT PRIMARY KEY,
    properties TEXT NOT NULL,        -- JSON object
    is_identified INTEGER NOT NULL,
    created_at INTEGER NOT NULL      -- µs UTC: timestamp of the event that created it
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS person_overrides (
    old_person_id TEXT PRIMARY KEY,
    new_person_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,     -- µs UTC, wall clock when the merge was applied
    rewritten_at INTEGER             -- µs UTC, NULL while the table still has old ids
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS person_overrides_new ON person_overrides(new_person_id);
-- Dedupe index: a uuid that parses as a UUID is kept as its 128 bits (two signed big-endian
-- int64 halves: int keys insert ~2x faster than blobs), any other uuid text as text.
CREATE TABLE IF NOT EXISTS event_uuids (
    hi INTEGER NOT NULL,
    lo INTEGER NOT NULL,
    PRIMARY KEY (hi, lo)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS event_uuid_texts (uuid TEXT PRIMARY KEY) WITHOUT ROWID;
-- Sorted key files of large batches (storage/uuid_runs.py), registered here transactionally.
CREATE TABLE IF NOT EXISTS uuid_runs (seq INTEGER PRIMARY KEY, rows INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,    -- µs UTC
    idx INTEGER NOT NULL,            -- index of the event in its request / row in its file
    reason TEXT NOT NULL,
    payload TEXT NOT NULL,           -- JSON
    replayed_at INTEGER
);
"""

STATE_OFFSET = "state_offset"


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating) a state db. Autocommit mode: callers use explicit BEGIN IMMEDIATE."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=60.0, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode is durable at checkpoints and consistent always; anything lost in a
    # power cut is re-derived from the ingest log, which is the durable source of truth.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-131072")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.executescript(_SCHEMA)
    return conn


def get_meta(conn: sqlite3.Connection, key: str) -> int | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else int(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: int) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def _signed(x: int) -> int:
    return x - (1 << 64) if x >= 1 << 63 else x


def uuid_key(value: str) -> tuple[int, int] | str:
    """The dedupe key of an event uuid: (hi, lo) signed int64 halves if it parses as a UUID
    (any spelling uuid.UUID accepts), else the text itself."""
    try:
        n = uuidlib.UUID(value).int
    except ValueError:
        return value
    return _signed(n >> 64), _signed(n & ((1 << 64) - 1))


@dataclass
class UuidKeys:
    pairs: np.ndarray  # (n, 2) int64: the UUID halves, valid where texts[i] is None
    texts: list[str | None] | None  # None: every value is a UUID


_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX[_c] = 10 + _i
_DASHES = [8, 13, 18, 23]


def uuid_keys(values: pa.Array | pa.ChunkedArray) -> UuidKeys:
    """uuid_key of every value; vectorised (numpy) when all are in the 8-4-4-4-12 spelling."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    arr = arr.cast(pa.string())
    n = len(arr)
    if n and arr.null_count == 0 and (pc.binary_length(arr).to_numpy() == 36).all():
        start = int(np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset])
        chars = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[start : start + 36 * n]
        chars = chars.reshape(n, 36)
        # One table lookup over the whole block (dashes map to 255), then strided slices per
        # 8-4-4-4-12 group: ~10x cheaper than gathering the 32 digit columns.
        v = _HEX[chars]
        if (chars[:, _DASHES] == ord("-")).all() and np.count_nonzero(v == 255) == 4 * n:
            raw = np.empty((n, 16), dtype=np.uint8)
            for dst, a, b in ((0, 0, 8), (4, 9, 13), (6, 14, 18), (8, 19, 23), (10, 24, 36)):
                raw[:, dst : dst + (b - a) // 2] = (v[:, a:b:2] << 4) | v[:, a + 1 : b : 2]
            halves = raw.view(">i8").astype(np.int64)
            return UuidKeys(halves.reshape(n, 2), None)
    out = np.zeros((n, 2), dtype=np.int64)
    texts: list[str | None] = []
    for i, v in enumerate(arr.to_pylist()):
        k = uuid_key(str(v))
        if isinstance(k, str):
            texts.append(k)
        else:
            out[i] = k
            texts.append(None)
    return UuidKeys(out, texts)


_INSERT_PAIRS = (
    "INSERT OR IGNORE INTO event_uuids(hi, lo) SELECT value->>0, value->>1 FROM json_each(?)"
)


def _pairs_json(pairs: np.ndarray) -> str:
    # One JSON array for SQLite's json_each: no Python object per key.
    return orjson.dumps(pairs, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _dedupe_bulk(conn: sqlite3.Connection, runs: UuidRuns, pairs: np.ndarray) -> np.ndarray:
    """dedupe_keys for a large all-UUID batch: numpy against the runs, kept keys as a new run.
    Keys in SQLite's event_uuids (from small batches) move into a run first, so the runs alone
    are the index of UUID-shaped keys here."""
    old = conn.execute("SELECT hi, lo FROM event_uuids").fetchall()
    if old:
        old_keys = np.array(old, dtype=np.int64)
        runs.add(*sort_by_hi(old_keys[:, 0], old_keys[:, 1]))
        conn.execute("DELETE FROM event_uuids")
    order = np.argsort(pairs[:, 0], kind="stable")
    hi = pairs[order, 0]
    lo = pairs[order, 1]
    dup = np.zeros(len(hi), dtype=bool)
    tie = np.flatnonzero(hi[1:] == hi[:-1])
    if len(tie):  # keys sharing a high half: exact check, first in input order wins
        members = np.unique(np.concatenate([tie, tie + 1]))
        sub = members[np.lexsort((order[members], lo[members], hi[members]))]
        same = (hi[sub[1:]] == hi[sub[:-1]]) & (lo[sub[1:]] == lo[sub[:-1]])
        dup[sub[1:][same]] = True
    new = ~dup & ~runs.contains(hi, lo)
    if new.any():
        runs.add(hi[new], lo[new])
    keep = np.zeros(len(hi), dtype=bool)
    keep[order[new]] = True
    return keep


def dedupe_keys(conn: sqlite3.Connection, keys: UuidKeys) -> np.ndarray:
    """Keep-mask over `keys`: first occurrence of each key not already in the index; the kept
    keys are added to the index (inside the caller's transaction). Large all-UUID batches use
    the numpy runs (storage.uuid_runs), others SQLite; a lookup checks both."""
    n = len(keys.pairs)
    runs = UuidRuns(conn)
    if keys.texts is None and n >= uuid_runs.RUN_MIN_KEYS:
        return _dedupe_bulk(conn, runs, keys.pairs)
    is_text = (
        np.zeros(n, dtype=bool)
        if keys.texts is None
        else np.array([t is not None for t in keys.texts], dtype=bool)
    )
    in_runs = np.zeros(n, dtype=bool)
    if len(runs):
        u = np.flatnonzero(~is_text)
        in_runs[u] = runs.contains(keys.pairs[u, 0], keys.pairs[u, 1])
    u_idx = np.flatnonzero(~is_text & ~in_runs)
    t_idx = np.flatnonzero(is_text)
    texts = keys.texts or []

    def insert(u: np.ndarray, t: np.ndarray) -> int:
        added = 0
        if len(u):
            p = keys.pairs[u]
            p = p[np.lexsort((p[:, 1], p[:, 0]))]  # key order keeps B-tree inserts local
            added += conn.execute(_INSERT_PAIRS, (_pairs_json(p),)).rowcount
        if len(t):
            added += conn.executemany(
                "INSERT OR IGNORE INTO event_uuid_texts(uuid) VALUES (?)",
                ((texts[i],) for i in t.tolist()),
            ).rowcount
        return added

    conn.execute("SAVEPOINT dedupe")
    if insert(u_idx, t_idx) == len(u_idx) + len(t_idx):  # common: all new, all distinct
        conn.execute("RELEASE dedupe")
        keep = np.ones(n, dtype=bool)
        keep[in_runs] = False
        return keep
    conn.execute("ROLLBACK TO dedupe")
    conn.execute("RELEASE dedupe")
    keep = np.zeros(n, dtype=bool)
    if len(u_idx):
        _, first = np.unique(keys.pairs[u_idx], axis=0, return_index=True)
        cand = u_idx[np.sort(first)]
        probe = np.column_stack([cand, keys.pairs[cand]])
        existing = np.array(
            [
                r[0]
                for r in conn.execute(
                    "SELECT j.value->>0 FROM json_each(?) j JOIN event_uuids e "
                    "ON e.hi = j.value->>1 AND e.lo = j.value->>2",
                    (_pairs_json(probe),),
                )
            ],
            dtype=np.int64,
        )
        keep[cand[~np.isin(cand, existing)]] = True
    seen: set[str] = set()
    for i in t_idx.tolist():
        t = texts[i]
        assert t is not None
        if t not in seen:
            seen.add(t)
            if (
                conn.execute("SELECT 1 FROM event_uuid_texts WHERE uuid = ?", (t,)).fetchone()
                is None
            ):
                keep[i] = True
    insert(np.flatnonzero(keep & ~is_text), np.flatnonzero(keep & is_text))
    return keep

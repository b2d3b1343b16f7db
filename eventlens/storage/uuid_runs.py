"""Sorted immutable runs of uuid keys: the bulk part of the dedupe index.

SQLite inserts cost ~1 µs of B-tree work per uuid, the largest single cost of a bulk import, so
large batches (>= RUN_MIN_KEYS keys, i.e. import chunks) keep their keys in numpy files instead:
`<state dir>/uuid-runs/run-<seq>.npy`, one (2, n) int64 array (row 0: the uuid's high halves
sorted ascending, row 1: the low halves in the same order). Lookups are `searchsorted` on the
memory-mapped high halves; the rare keys whose high half occurs more than once in a run are
checked one by one.

Crash consistency: a run file is written and fsynced first, then registered in the state db's
`uuid_runs` table inside the caller's transaction, so the index is exactly the registered runs
+ SQLite's `event_uuids`; a run of a rolled-back transaction is just an unregistered file.
Merges (at most MERGE_FANOUT runs stay below MAX_MERGE_KEYS) register the merged run and
unregister their inputs in the same transaction. New runs never reuse a file name;
`remove_orphans` (after the commit) deletes files no committed registration names. Callers hold
the writer lock.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np

RUN_MIN_KEYS = 50_000  # batches at least this large go to runs (module-level: tests lower it)
MERGE_FANOUT = 8  # merge the smallest runs when more than this many are below MAX_MERGE_KEYS
MAX_MERGE_KEYS = 16_000_000  # bounds a merge's memory (~16 B per key + sort index)

# Process-wide cache of mapped runs: (path, inode, mtime) -> (hi, lo). Registered runs are
# immutable; the stat part keeps a re-used sequence number (after a rollback) from aliasing.
_CACHE: dict[tuple[str, int, int], tuple[np.ndarray, np.ndarray]] = {}


def runs_dir(conn: sqlite3.Connection) -> Path:
    """`uuid-runs/` next to the state db file of `conn`."""
    for _, name, file in conn.execute("PRAGMA database_list").fetchall():
        if name == "main" and file:
            return Path(file).parent / "uuid-runs"
    raise RuntimeError("uuid runs need a file-backed state db")


def sort_by_hi(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(hi, kind="stable")
    return hi[order], lo[order]


class UuidRuns:
    """The registered runs of one state db, used inside the caller's transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._dir = runs_dir(conn)
        self._runs = [
            (int(s), int(r))
            for s, r in conn.execute("SELECT seq, rows FROM uuid_runs ORDER BY seq").fetchall()
        ]

    def __len__(self) -> int:
        return len(self._runs)

    def _path(self, seq: int) -> Path:
        return self._dir / f"run-{seq:012d}.npy"

    def _load(self, seq: int) -> tuple[np.ndarray, np.ndarray]:
        path = self._path(seq)
        st = path.stat()
        key = (str(path), st.st_ino, st.st_mtime_ns)
        run = _CACHE.get(key)
        if run is None:
            data = np.load(path, mmap_mode="r")
            run = _CACHE[key] = (data[0], data[1])
        return run

    def contains(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Mask: which (hi[i], lo[i]) keys are in some run. Faster when `hi` is sorted."""
        found = np.zeros(len(hi), dtype=bool)
        for seq, _ in self._runs:
            run_hi, run_lo = self._load(seq)
            left = np.searchsorted(run_hi, hi, side="left")
            right = np.searchsorted(run_hi, hi, side="right")
            span = right - left
            one = np.flatnonzero(span == 1)
            found[one] |= run_lo[left[one]] == lo[one]
            for i in np.flatnonzero(span > 1).tolist():  # shared high half: rare
                found[i] |= bool((run_lo[left[i] : right[i]] == lo[i]).any())
        return found

    def _write(self, hi: np.ndarray, lo: np.ndarray) -> int:
        # Above every registered run AND every file present: a run unregistered by this
        # (maybe rolled back) transaction keeps its file, which must never be overwritten.
        self._dir.mkdir(parents=True, exist_ok=True)
        on_disk = [int(p.stem[4:]) for p in self._dir.glob("run-*.npy") if p.stem[4:].isdigit()]
        seq = max([s for s, _ in self._runs] + on_disk, default=0) + 1
        path = self._path(seq)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            np.save(f, np.stack([hi, lo]))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self._conn.execute("INSERT INTO uuid_runs(seq, rows) VALUES (?, ?)", (seq, len(hi)))
        self._runs.append((seq, len(hi)))
        return seq

    def add(self, hi: np.ndarray, lo: np.ndarray) -> None:
        """Register new keys (none already present; `hi` sorted ascending) as one run, then
        merge the smallest runs while more than MERGE_FANOUT are mergeable."""
        self._write(hi, lo)
        small = sorted((r, s) for s, r in self._runs if r < MAX_MERGE_KEYS)
        if len(small) <= MERGE_FANOUT:
            return
        picked: list[int] = []
        total = 0
        for rows, seq in small:
            if len(picked) >= 2 and total + rows > MAX_MERGE_KEYS:
                break
            picked.append(seq)
            total += rows
        parts = [self._load(s) for s in picked]
        merged_hi, merged_lo = sort_by_hi(
            np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        )
        self._conn.executemany("DELETE FROM uuid_runs WHERE seq = ?", [(s,) for s in picked])
        self._runs = [(s, r) for s, r in self._runs if s not in picked]
        self._write(merged_hi, merged_lo)


def remove_orphans(conn: sqlite3.Connection) -> int:
    """Delete run files no committed registration names (runs of rolled-back transactions,
    inputs of committed merges); returns how many. Call OUTSIDE a transaction, under the writer
    lock: inside one, a run this transaction unregistered would look like an orphan."""
    if conn.in_transaction:
        raise RuntimeError("remove_orphans must run outside a transaction")
    directory = runs_dir(conn)
    if not directory.is_dir():
        return 0
    live = {f"run-{int(s):012d}.npy" for (s,) in conn.execute("SELECT seq FROM uuid_runs")}
    removed = 0
    for p in directory.iterdir():
        if p.name not in live:
            p.unlink(missing_ok=True)
            removed += 1
    return removed

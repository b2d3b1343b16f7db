"""Following commits off the request path: after an ingest commit, the resident buckets of
recently queried projects are extended with the new files by a background thread, so the next
query (a dashboard refresh) finds them ready instead of extending them itself.

Measured (ADR 0008): extending 16 buckets with one small file each was ~80% of the first query
after a commit (one DuckDB read per new file), several times a warm query's whole cost.

The follower looks at each followed project's latest version every `interval` seconds (a Delta
log poll through storage/tables.py) and warms the new snapshot (`resident_cache.warm`: extends
what it can, builds the rest; property columns already decoded are extended with the bucket).
A project is followed for `keep_s` after its last query. Failures are logged and skipped: the
next query then does the work itself, as without the follower.
"""

from __future__ import annotations

import threading
import time

from eventlens.config import Settings
from eventlens.observability.logging import get_logger
from eventlens.query.parallel import delta, planner, resident_cache
from eventlens.storage import tables
from eventlens.storage.event_table import Snapshot

log = get_logger(__name__)


class CommitFollower:
    """Thread-safe. `touch(project_id)` on every query; `close()` stops and joins the thread
    (a daemon thread inside native code at interpreter exit can crash the process)."""

    def __init__(self, settings: Settings, interval: float = 0.2, keep_s: float = 600.0) -> None:
        self.settings = settings
        self.interval = interval
        self.keep_s = keep_s
        self._followed: dict[int, float] = {}  # project id -> last query (monotonic)
        self._versions: dict[int, int] = {}  # project id -> last version warmed
        # project id -> the latest snapshot seen (the object queries pinned: its plans are
        # what the next version's are planned after)
        self._seen: dict[int, Snapshot] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.warmed = 0  # snapshots warmed (tests read it)

    def touch(self, project_id: int, version: int) -> None:
        """A query on `project_id` read `version` (already resident: it just ran)."""
        with self._lock:
            self._followed[project_id] = time.monotonic()
            self._versions[project_id] = max(version, self._versions.get(project_id, -1))
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="eventlens-commit-follower", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            now = time.monotonic()
            with self._lock:
                for pid, seen in list(self._followed.items()):
                    if now - seen > self.keep_s:
                        del self._followed[pid]
                        self._seen.pop(pid, None)
                projects = list(self._followed)
            for pid in projects:
                if self._stop.is_set():
                    return
                self._follow(pid)

    def _follow(self, project_id: int) -> None:
        try:
            snapshot = tables.snapshot(self.settings, project_id)
            with self._lock:
                previous = self._seen.get(project_id)
                self._seen[project_id] = snapshot
                if snapshot.version <= self._versions.get(project_id, -1):
                    return
            resident_cache.warm(snapshot)
            # Plans too: pruning the new file list per read range, the earliest event, the
            # files' row counts a per-person delta reads (the first query after a commit
            # otherwise pays for them: ADR 0008).
            planner.warm(snapshot, previous if previous is not snapshot else None)
            delta.file_rows(snapshot)
            with self._lock:
                self._versions[project_id] = snapshot.version
                self.warmed += 1
        except Exception as exc:  # the next query does the work itself
            log.warning("query.follow_failed", project_id=project_id, error=repr(exc))

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(30)

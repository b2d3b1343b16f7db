"""The resident bucket cache: a byte-bounded LRU of ResidentBuckets keyed by their files.

A lookup for a file set not in memory extends the bucket of an earlier file set of the same
bucket when the new set only adds files (resident_extend.py), and builds it otherwise.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from eventlens.observability import metrics
from eventlens.query import deadline
from eventlens.query.parallel.frame import PropKey
from eventlens.query.parallel.resident import BASE_ROW_BYTES, ResidentBucket, build_bucket
from eventlens.query.parallel.resident_extend import extend_bucket
from eventlens.storage.event_table import Snapshot

DEFAULT_MAX_BYTES = 4 << 30


class Demand:
    """Queries running now (any thread): the background warm-up waits for none to be running
    before each step, so a query after a start reads what it needs ahead of the warm-up
    instead of queueing behind it (at most the one bucket being built when it arrived)."""

    def __init__(self) -> None:
        self._running = 0
        self._idle = threading.Condition()

    @contextmanager
    def query(self) -> Iterator[None]:
        """Mark a query running for the duration of the block."""
        with self._idle:
            self._running += 1
        try:
            yield
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    @property
    def running(self) -> int:
        with self._idle:
            return self._running

    def wait_idle(self, stop: threading.Event | None = None, poll_s: float = 0.1) -> bool:
        """Block while queries run; False if `stop` was set meanwhile (the caller stops)."""
        with self._idle:
            while self._running and not (stop is not None and stop.is_set()):
                self._idle.wait(poll_s)
        return not (stop is not None and stop.is_set())


DEMAND = Demand()


class ResidentCache:
    """Byte-bounded LRU of ResidentBuckets keyed by their file paths. Thread-safe; a bucket
    being built by one thread is waited for, not built twice."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._buckets: OrderedDict[tuple[str, ...], ResidentBucket] = OrderedDict()
        self._building: dict[tuple[str, ...], threading.Lock] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0  # built or extended
        self.extended = 0

    def fits(self, rows: int) -> bool:
        """Can buckets totalling `rows` rows be resident together (with room for property
        columns)? A query whose buckets do not fit reads Parquet instead: thrashing the cache
        would be slower than not using it."""
        return self.max_bytes > 0 and rows * BASE_ROW_BYTES * 3 // 2 <= self.max_bytes

    def bucket(self, paths: Sequence[str]) -> ResidentBucket:
        """The resident bucket of `paths` (sorted, the bucket's complete file list)."""
        key = tuple(paths)
        with self._lock:
            found = self._hit(key)
            if found is not None:
                return found
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                found = self._hit(key)
                if found is not None:
                    return found
                base = self._superseded(key)
            deadline.check()
            bucket = None
            if base is not None:
                bucket = extend_bucket(base, key)
            outcome = "extended" if bucket is not None else "miss"
            if bucket is None:
                bucket = build_bucket(key)
            metrics.resident_lookups.labels(outcome=outcome).inc()
            metrics.resident_build_seconds.observe(bucket.build_s)
            with self._lock:
                self.misses += 1
                if outcome == "extended":
                    self.extended += 1
                if base is not None:
                    self._buckets.pop(base.paths, None)  # superseded by the newer file set
                self._buckets[key] = bucket
                self._building.pop(key, None)
                self._evict()
            return bucket

    def _superseded(self, key: tuple[str, ...]) -> ResidentBucket | None:
        """The largest cached bucket whose files are all in `key` (the same bucket at an
        earlier version, before some appends), if any."""
        wanted = set(key)
        best: ResidentBucket | None = None
        for paths, bucket in self._buckets.items():
            bigger = best is None or bucket.rows > best.rows
            if len(paths) < len(key) and wanted.issuperset(paths) and bigger:
                best = bucket
        return best

    def _hit(self, key: tuple[str, ...]) -> ResidentBucket | None:
        found = self._buckets.get(key)
        if found is not None:
            self._buckets.move_to_end(key)
            self.hits += 1
            metrics.resident_lookups.labels(outcome="hit").inc()
        return found

    def _evict(self) -> None:
        total = sum(b.nbytes for b in self._buckets.values())
        while total > self.max_bytes and self._buckets:
            _, old = self._buckets.popitem(last=False)
            total -= old.nbytes
        metrics.resident_bytes.set(total)

    def resize(self, max_bytes: int) -> None:
        """A new byte budget; buckets beyond it are dropped (least recently used first)."""
        with self._lock:
            self.max_bytes = max_bytes
            self._evict()

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(b.nbytes for b in self._buckets.values())

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()
            metrics.resident_bytes.set(0)


CACHE = ResidentCache()


def configure(max_bytes: int) -> None:
    """Set the resident cache's byte budget (0 disables it: every sub-task scans Parquet)."""
    CACHE.resize(max_bytes)


def bucket_keys(snapshot: Snapshot) -> list[tuple[str, ...]]:
    """The resident keys of a snapshot's person buckets: each bucket's files, sorted (the key
    the planner gives its sub-tasks)."""
    by_bucket: dict[int, list[str]] = {}
    for f in snapshot.files:
        by_bucket.setdefault(f.bucket, []).append(f.path)
    return [tuple(sorted(paths)) for paths in by_bucket.values()]


def warm(
    snapshot: Snapshot,
    props: Sequence[PropKey] = (),
    before_step: Callable[[], bool] | None = None,
) -> int:
    """Make every person bucket of `snapshot` (an eventlens Snapshot) resident with the
    property columns `props` decoded, if the buckets fit the budget together: the rows made
    resident (0 if they do not fit). `before_step` runs before each bucket and each property
    column (the warm-up yields to queries there); when it returns False, warming stops."""
    rows = sum(f.rows for f in snapshot.files)
    keys = bucket_keys(snapshot)
    if not keys or not CACHE.fits(rows):
        return 0
    for key in keys:
        if before_step is not None and not before_step():
            return 0
        bucket = CACHE.bucket(key)
        for prop in props:
            if before_step is not None and not before_step():
                return 0
            bucket.prop(prop)
    return int(rows)

"""Where answers, query statuses and single-flight leases live: the `Backend` seam, and the
in-process backend (the embedded default, an LRU bounded by bytes).

A backend stores opaque bytes. `put_answer` keeps the newer data version when two writers race
(an answer never goes back in time). Leases are the cross-process half of single flight: the
holder computes, the others wait for its answer; a lease lapses after its ttl unless renewed,
so a crashed holder blocks nobody for long.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Protocol

from eventlens.observability import metrics

MAX_STATUSES = 10_000  # in-process statuses kept (oldest dropped first)


class Backend(Protocol):
    name: str

    def get_answer(self, key: str) -> bytes | None: ...

    def put_answer(self, key: str, version: int, body: bytes) -> None:
        """Store `body` unless the entry already holds a newer version."""
        ...

    def acquire(self, lease: str, owner: str, ttl_s: float) -> bool:
        """Take `lease` for `owner` if nobody holds it (True), else False."""
        ...

    def renew(self, lease: str, owner: str, ttl_s: float) -> bool: ...

    def release(self, lease: str, owner: str) -> None: ...

    def get_status(self, status_id: str) -> bytes | None: ...

    def put_status(self, status_id: str, body: bytes) -> None: ...

    def nbytes(self) -> int: ...


class MemoryBackend:
    """One process's answers: an LRU of at most `max_bytes` bytes. Thread-safe."""

    name = "memory"

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._answers: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self._bytes = 0
        self._statuses: OrderedDict[str, bytes] = OrderedDict()
        self._leases: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get_answer(self, key: str) -> bytes | None:
        with self._lock:
            found = self._answers.get(key)
            if found is None:
                return None
            self._answers.move_to_end(key)
            return found[1]

    def put_answer(self, key: str, version: int, body: bytes) -> None:
        with self._lock:
            have = self._answers.get(key)
            if have is not None:
                if have[0] > version:
                    return
                self._bytes -= len(have[1])
            if len(body) > self.max_bytes:
                self._answers.pop(key, None)
            else:
                self._answers[key] = (version, body)
                self._answers.move_to_end(key)
                self._bytes += len(body)
            while self._bytes > self.max_bytes and self._answers:
                _, (_, old) = self._answers.popitem(last=False)
                self._bytes -= len(old)
            metrics.query_cache_bytes.labels(store="answers").set(self._bytes)

    def acquire(self, lease: str, owner: str, ttl_s: float) -> bool:
        now = time.monotonic()
        with self._lock:
            held = self._leases.get(lease)
            if held is not None and held[1] > now and held[0] != owner:
                return False
            self._leases[lease] = (owner, now + ttl_s)
            return True

    def renew(self, lease: str, owner: str, ttl_s: float) -> bool:
        with self._lock:
            held = self._leases.get(lease)
            if held is None or held[0] != owner:
                return False
            self._leases[lease] = (owner, time.monotonic() + ttl_s)
            return True

    def release(self, lease: str, owner: str) -> None:
        with self._lock:
            held = self._leases.get(lease)
            if held is not None and held[0] == owner:
                del self._leases[lease]

    def get_status(self, status_id: str) -> bytes | None:
        with self._lock:
            return self._statuses.get(status_id)

    def put_status(self, status_id: str, body: bytes) -> None:
        with self._lock:
            self._statuses[status_id] = body
            self._statuses.move_to_end(status_id)
            while len(self._statuses) > MAX_STATUSES:
                self._statuses.popitem(last=False)

    def nbytes(self) -> int:
        with self._lock:
            return self._bytes

"""The in-process partial store: per-sub-task partials (eventlens.query.parallel.partials) in
an LRU bounded by bytes.

Partials are kept pickled: the size is exact, and every `get` hands out a fresh copy, so no
later merge or finish step can change what the next query reuses.
"""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from typing import Any

from eventlens.observability import metrics
from eventlens.query.parallel.partials import BASE_PREFIX


class MemoryPartials:
    """Partials by key, at most `max_bytes` of pickles. Thread-safe. Counts its hits and
    misses (`stats`), which the cache reads per computation through `Counting`."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            body = self._items.get(key)
            if body is None:
                return None
            self._items.move_to_end(key)
        return pickle.loads(body)

    def put(self, key: str, partial: Any) -> None:
        body = pickle.dumps(partial, protocol=pickle.HIGHEST_PROTOCOL)
        if len(body) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._items[key] = body
            self._bytes += len(body)
            while self._bytes > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)
            metrics.query_cache_bytes.labels(store="partials").set(self._bytes)

    def nbytes(self) -> int:
        with self._lock:
            return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


class Counting:
    """A store as one computation sees it: forwards to `store` (None: nothing reused, but
    partials are still written for the next run) and counts reused and computed sub-tasks."""

    def __init__(self, store: MemoryPartials, *, reuse: bool = True) -> None:
        self.store = store
        self.reuse = reuse
        self.reused = 0
        self.computed = 0
        self.delta = 0  # of `computed`: brought forward by a per-person delta
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        found = self.store.get(key) if self.reuse else None
        if key.startswith(BASE_PREFIX):
            return found
        with self._lock:
            if found is None:
                self.computed += 1
            else:
                self.reused += 1
        return found

    def peek(self, key: str) -> Any | None:
        """`get` without counting (the engine reading a delta's starting partial)."""
        return self.store.get(key) if self.reuse else None

    def put(self, key: str, partial: Any) -> None:
        if key.startswith(BASE_PREFIX) and getattr(partial, "chain", 0) > 0:
            with self._lock:
                self.delta += 1
        self.store.put(key, partial)

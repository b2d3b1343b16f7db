"""A ResultCache driven the way the query service drives it, over a real event table: the
parallel engine run with the cache's partial store current."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from eventlens.cache import (
    CachedAnswer,
    Counting,
    MemoryBackend,
    MemoryPartials,
    Mode,
    Request,
    ResultCache,
    Served,
)
from eventlens.query.deadline import Deadline
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.parallel import ParallelEngine, partials
from eventlens.storage.event_table import Snapshot


def jsonable(value: Any) -> Any:
    """As the API serves it (numpy scalars become numbers)."""
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY))


@dataclass
class Harness:
    """One cache plus a count of engine runs (what 'computed once' is measured by)."""

    cache: ResultCache = field(
        default_factory=lambda: ResultCache(MemoryBackend(64 << 20), MemoryPartials(64 << 20))
    )
    engine: ParallelEngine = field(default_factory=lambda: ParallelEngine("local", min_task_rows=0))
    computations: int = 0
    delay_s: float = 0.0
    fail: BaseException | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def request(
        self,
        key: str,
        nq: NormalisedQuery,
        snapshot: Snapshot,
        mode: Mode = Mode.BLOCKING,
        *,
        explain: bool = False,
        timeout: float = 60.0,
    ) -> Request:
        def compute(store: Counting) -> tuple[CachedAnswer, dict[str, Any] | None]:
            with self._lock:
                self.computations += 1
            if self.delay_s:
                time.sleep(self.delay_s)  # a slow engine, so concurrent requests overlap
            if self.fail is not None:
                raise self.fail
            with partials.using(store):
                result, report = self.engine.explain(nq, snapshot)
            answer = CachedAnswer(
                results=jsonable(result),
                data_version=snapshot.version,
                engine="parallel",
                kind=nq.kind,
                fingerprint=nq.fingerprint,
                computed_at=time.time(),
                compute_s=0.0,
            )
            return answer, report.to_dict() if explain else None

        return Request(
            key=key,
            project_id=1,
            version=snapshot.version,
            mode=mode,
            compute=compute,
            deadline=Deadline(timeout),
            explain=explain,
        )

    def serve(
        self, key: str, nq: NormalisedQuery, snapshot: Snapshot, mode: Mode = Mode.BLOCKING
    ) -> Served:
        return self.cache.serve(self.request(key, nq, snapshot, mode))

"""The result cache: refresh modes, single flight, background refreshes, partial reuse.

    serve(request) -> Served
        lookup the answer key in the backend
        fresh (computed at >= the pinned data version)  -> hit
        else, by mode (modes.py): compute now, serve the last answer and refresh in the
        background, or never compute

Computing goes through `_compute_shared`, the single flight: one computation per (answer key,
data version) in this process (other requests wait for it: "coalesced"), and one across
processes through a backend lease (the others poll the backend for the holder's answer; a
lapsed lease, i.e. a crashed holder, lets the next one compute). A computation reuses the
per-sub-task partials of earlier ones (eventlens.query.parallel.partials): after a commit only
the sub-tasks whose files changed are recomputed ("incremental").

A failed refresh keeps the last good answer: blocking modes serve it marked stale with the error
in `query_status`, background refreshes record the error in their status.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from eventlens.cache.backends import Backend
from eventlens.cache.entry import CachedAnswer, QueryStatus, iso
from eventlens.cache.modes import Mode
from eventlens.cache.partials import Counting, MemoryPartials
from eventlens.errors import EventLensError, InvalidQuery, QueryTimeout
from eventlens.observability import metrics
from eventlens.observability.logging import get_logger
from eventlens.query.deadline import Deadline, timeout_error

log = get_logger(__name__)
POLL_S = 0.01  # how often a request waiting on another server's lease looks for its answer
STATUS_TTL_S = 600.0

# What a computation is given: the partial store to reuse from and write to. It returns the
# answer and the explain report (None unless asked for).
Compute = Callable[[Counting], tuple[CachedAnswer, dict[str, Any] | None]]


@dataclass
class Request:
    """One query as the cache sees it. `version`: the data version pinned for it; `compute`
    runs the engine (in the query pool) at that version; `deadline`: the request's."""

    key: str
    project_id: int
    version: int
    mode: Mode
    compute: Compute
    deadline: Deadline
    explain: bool = False


@dataclass
class Served:
    """The cache's answer to one request. `answer` None: nothing to serve (force_cache miss, or
    an async mode's first request, whose `status` says where to poll). `result` is the metric
    label (hit, miss, incremental, coalesced, stale)."""

    answer: CachedAnswer | None
    result: str
    is_cached: bool
    current_version: int
    key: str
    status: QueryStatus | None = None
    explain: dict[str, Any] | None = None
    reused: int = 0
    computed: int = 0
    delta: int = 0  # sub-tasks brought forward by a per-person delta

    @property
    def stale(self) -> bool:
        return self.answer is not None and self.answer.data_version < self.current_version

    def envelope(self) -> dict[str, Any]:
        """PostHog's cached-response fields plus the data versions."""
        a = self.answer
        return {
            "is_cached": self.is_cached,
            "last_refresh": None if a is None else iso(a.computed_at),
            # Freshness is by data version: any new commit makes a refresh worthwhile at once.
            "next_allowed_client_refresh": None if a is None else iso(a.computed_at),
            "cache_key": self.key,
            "query_status": None if self.status is None else self.status.to_json(),
            "data_version": None if a is None else a.data_version,
            "current_data_version": self.current_version,
            "versions_behind": None if a is None else max(0, self.current_version - a.data_version),
            "cache": {
                "result": self.result,
                "subtasks_reused": self.reused,
                "subtasks_computed": self.computed,
                "subtasks_delta": self.delta,
            },
        }


class ResultCache:
    """Thread-safe; one per process (`backend` may be shared by several: Redis)."""

    def __init__(
        self,
        backend: Backend,
        partials: MemoryPartials,
        *,
        refresh_workers: int = 1,
        refresh_queue: int = 32,
        lease_seconds: float = 5.0,
        lazy_seconds: float = 900.0,
        refresh_timeout: float = 30.0,
    ) -> None:
        self.backend = backend
        self.partials = partials
        self.lease_seconds = lease_seconds
        self.lazy_seconds = lazy_seconds
        self.refresh_timeout = refresh_timeout
        self.refresh_queue = refresh_queue
        self.owner = uuid.uuid4().hex  # this process, as a lease holder
        self._flights: dict[str, Future[Served]] = {}
        self._refreshing: dict[str, QueryStatus] = {}  # flight key -> its background status
        self._lock = threading.Lock()
        self._refresh_pool = ThreadPoolExecutor(
            max(1, refresh_workers), thread_name_prefix="eventlens-cache-refresh"
        )
        # Threads that serve requests (lookups, waits): they only wait, the query pool computes.
        self.request_pool = ThreadPoolExecutor(64, thread_name_prefix="eventlens-cache")

    # -- lookups ---------------------------------------------------------------------------

    def lookup(self, key: str) -> CachedAnswer | None:
        body = self.backend.get_answer(key)
        if body is None:
            return None
        try:
            return CachedAnswer.from_bytes(body)
        except (ValueError, TypeError):
            log.warning("cache.undecodable_entry", key=key)
            return None

    def status(self, status_id: str) -> QueryStatus | None:
        """A background refresh's status (None: unknown or expired)."""
        body = self.backend.get_status(status_id)
        return None if body is None else QueryStatus.from_bytes(body)

    # -- the entry point -------------------------------------------------------------------

    def serve(self, req: Request) -> Served:
        """Answer `req` as its mode says (module docstring). Raises what the engine raises
        when there is no earlier answer to fall back on; QueryTimeout at the deadline."""
        served = self._serve(req)
        metrics.query_cache_requests.labels(result=served.result).inc()
        return served

    def _serve(self, req: Request) -> Served:
        # The deadline holds for cached answers too: a request past it is a 504 either way.
        req.deadline.check()
        mode = req.mode
        if req.explain:
            # EXPLAIN shows what a refresh recomputes: compute now, reusing partials unless
            # asked to compute from scratch.
            return self._blocking(req, None, reuse=mode is not Mode.FORCE_BLOCKING)
        if mode is Mode.FORCE_BLOCKING:
            return self._blocking(req, self.lookup(req.key), reuse=False)
        have = self.lookup(req.key)
        if have is not None and have.data_version >= req.version and mode is not Mode.FORCE_ASYNC:
            return Served(have, "hit", True, req.version, req.key)
        if mode is Mode.BLOCKING or (mode is Mode.ASYNC_EXCEPT_ON_MISS and have is None):
            return self._blocking(req, have, reuse=True)
        if mode is Mode.FORCE_CACHE:
            return self._old(req, have, None)
        young = have is not None and time.time() - have.computed_at < self.lazy_seconds
        if mode is Mode.LAZY_ASYNC and young:
            return self._old(req, have, None)
        return self._old(req, have, self._refresh_in_background(req))

    def _old(self, req: Request, have: CachedAnswer | None, status: QueryStatus | None) -> Served:
        """The last answer (maybe of an older version), or nothing, without computing."""
        if have is None:
            return Served(None, "miss", False, req.version, req.key, status=status)
        result = "stale" if have.data_version < req.version else "hit"
        return Served(have, result, True, req.version, req.key, status=status)

    def _blocking(self, req: Request, have: CachedAnswer | None, *, reuse: bool) -> Served:
        try:
            return self._compute_shared(req, reuse=reuse)
        except (InvalidQuery, QueryTimeout):
            raise
        except EventLensError as exc:
            if have is None:
                raise
            # The refresh failed: keep serving the last good answer, and say so.
            log.warning("cache.refresh_failed_served_stale", key=req.key, error=str(exc))
            status = QueryStatus(
                id=uuid.uuid4().hex,
                team_id=req.project_id,
                cache_key=req.key,
                query_async=False,
                complete=True,
                error=True,
                error_message=f"refresh failed, last good answer served: {exc}",
                start_time=time.time(),
                end_time=time.time(),
            )
            return Served(have, "stale", True, req.version, req.key, status=status)

    # -- single flight -----------------------------------------------------------------------

    def _compute_shared(self, req: Request, *, reuse: bool) -> Served:
        """Compute `req` once however many ask at once (module docstring)."""
        flight = f"{req.key}@{req.version}/{'reuse' if reuse else 'scratch'}"
        if req.explain:
            flight += f"/explain/{uuid.uuid4().hex}"  # the report is per request
        with self._lock:
            running = self._flights.get(flight)
            if running is None:
                mine: Future[Served] = Future()
                self._flights[flight] = mine
        if running is not None:
            try:
                shared = running.result(timeout=req.deadline.remaining())
            except FutureTimeout:
                raise timeout_error(req.deadline.timeout) from None
            return Served(
                shared.answer, "coalesced", True, req.version, req.key, status=shared.status
            )
        try:
            served = self._compute_once(req, reuse=reuse)
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        else:
            mine.set_result(served)
            return served
        finally:
            with self._lock:
                self._flights.pop(flight, None)

    def _compute_once(self, req: Request, *, reuse: bool) -> Served:
        """Take the cross-process lease (or wait for its holder's answer), then compute."""
        lease = f"{req.key}@{req.version}"
        while not self.backend.acquire(lease, self.owner, self.lease_seconds):
            if reuse and not req.explain:
                theirs = self.lookup(req.key)
                if theirs is not None and theirs.data_version >= req.version:
                    return Served(theirs, "coalesced", True, req.version, req.key)
            req.deadline.check()
            time.sleep(POLL_S)
        if reuse and not req.explain:
            # Double-checked: the previous holder may have finished between our lookup and
            # our acquire; its answer is the one to serve.
            theirs = self.lookup(req.key)
            if theirs is not None and theirs.data_version >= req.version:
                self.backend.release(lease, self.owner)
                return Served(theirs, "coalesced", True, req.version, req.key)
        stop = threading.Event()
        renewer = threading.Thread(
            target=self._renew, args=(lease, stop), name="eventlens-cache-lease", daemon=True
        )
        renewer.start()
        try:
            counting = Counting(self.partials, reuse=reuse)
            answer, report = req.compute(counting)
            self.backend.put_answer(req.key, answer.data_version, answer.to_bytes())
        finally:
            stop.set()
            self.backend.release(lease, self.owner)
        metrics.query_cache_subtasks.labels(outcome="reused").inc(counting.reused)
        metrics.query_cache_subtasks.labels(outcome="computed").inc(
            counting.computed - counting.delta
        )
        metrics.query_cache_subtasks.labels(outcome="delta").inc(counting.delta)
        result = "incremental" if counting.reused or counting.delta else "miss"
        return Served(
            answer,
            result,
            False,
            req.version,
            req.key,
            explain=report,
            reused=counting.reused,
            computed=counting.computed - counting.delta,
            delta=counting.delta,
        )

    def _renew(self, lease: str, stop: threading.Event) -> None:
        while not stop.wait(self.lease_seconds / 3):
            if not self.backend.renew(lease, self.owner, self.lease_seconds):
                return

    # -- background refreshes ------------------------------------------------------------------

    def _refresh_in_background(self, req: Request) -> QueryStatus | None:
        """Start (or join) the background refresh of `req` at its version: its status, or None
        when too many refreshes are waiting (shed: the next request tries again)."""
        flight = f"{req.key}@{req.version}"
        with self._lock:
            running = self._refreshing.get(flight)
            if running is not None:
                metrics.query_cache_refreshes.labels(outcome="deduplicated").inc()
                return running
            if len(self._refreshing) >= self.refresh_queue:
                metrics.query_cache_refreshes.labels(outcome="shed").inc()
                return None
            status = QueryStatus(
                id=uuid.uuid4().hex,
                team_id=req.project_id,
                cache_key=req.key,
                start_time=time.time(),
                expiration_time=time.time() + STATUS_TTL_S,
            )
            self._refreshing[flight] = status
        self.backend.put_status(status.id, status.to_bytes())
        metrics.query_cache_refreshes.labels(outcome="started").inc()
        background = Request(
            key=req.key,
            project_id=req.project_id,
            version=req.version,
            mode=Mode.BLOCKING,
            compute=req.compute,
            deadline=Deadline(self.refresh_timeout),
        )
        self._refresh_pool.submit(self._run_refresh, flight, background, status)
        return status

    def _run_refresh(self, flight: str, req: Request, status: QueryStatus) -> None:
        status.pickup_time = time.time()
        try:
            served = self._compute_shared(req, reuse=True)
        except BaseException as exc:  # recorded in the status; the last good answer stays
            metrics.query_cache_refreshes.labels(outcome="failed").inc()
            log.warning("cache.background_refresh_failed", key=req.key, error=str(exc))
            status.error = True
            status.error_message = f"{type(exc).__name__}: {exc}"
        else:
            assert served.answer is not None
            status.results = served.answer.results
            status.data_version = served.answer.data_version
        status.complete = True
        status.end_time = time.time()
        try:
            self.backend.put_status(status.id, status.to_bytes())
        finally:
            with self._lock:
                self._refreshing.pop(flight, None)

    def close(self) -> None:
        self._refresh_pool.shutdown(wait=False, cancel_futures=True)
        self.request_pool.shutdown(wait=False, cancel_futures=True)

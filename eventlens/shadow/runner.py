"""The live dual-run: after the primary has answered, run the candidate on the same pinned snapshot
in a bounded pool of its own, compare, record.

What keeps the primary safe (docs/adr/0005-shadow-mode.md):
- `offer()` is all the primary's thread does: a sampling draw and a non-blocking `put_nowait` into
  a queue of at most `shadow_queue` tasks. A full queue sheds the task (counted in memory, written
  by the shadow threads), so a slow candidate costs shed comparisons, never primary latency or
  unbounded memory.
- The candidate runs under its own `Deadline(shadow_timeout)` (started when it starts). A
  cooperative engine stops at its next check; one that ignores the deadline is recorded as
  `candidate_timeout` by the watchdog at the deadline and keeps its worker until it returns, so
  the pool stays bounded and new tasks are shed meanwhile.
- Both engines read the same `Snapshot` object: the same data version, whatever ingestion commits
  in between.
"""

from __future__ import annotations

import queue
import random
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opentelemetry.trace import Link

from eventlens import __version__
from eventlens.config import Settings, parse_project_rates
from eventlens.errors import InvalidQuery, QueryTimeout
from eventlens.observability import metrics, tracing
from eventlens.observability.logging import get_logger
from eventlens.query.deadline import Deadline
from eventlens.query.engines import Engine, InsightResult, run_engine
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.observers import QueryAnswered, QueryStarted
from eventlens.query.registry import get_engine
from eventlens.shadow.compare import compare
from eventlens.shadow.store import Discrepancy, ShadowStore
from eventlens.storage.event_table import Snapshot

log = get_logger(__name__)
_WATCH_INTERVAL = 0.1  # seconds between watchdog passes
_FLUSH_INTERVAL = 1.0  # seconds between writes of the in-memory shed / primary-error counts
QUIET_S = 0.02  # a candidate runs only after no primary has run for this long


def call_engine(
    engine: Engine, query: NormalisedQuery, snapshot: Snapshot, deadline: Deadline
) -> InsightResult:
    """Run `engine` with `deadline` current (eventlens.query.engines.run_engine)."""
    return run_engine(engine, query, snapshot, deadline)[0]


def engine_version(engine: Engine) -> str:
    """`engine.version` if it has one, else the EventLens version (engines ship with it)."""
    return str(getattr(engine, "version", __version__))


class PrimaryGate:
    """Counts primary queries in flight, so shadow work can step aside while any runs.

    Python threads share one interpreter lock: a CPU-bound candidate running beside a primary
    takes about half its CPU. So a candidate starts only when no primary is running, and pauses
    at each of its deadline checkpoints while one is (`YieldingDeadline`)."""

    def __init__(self, quiet: float = QUIET_S) -> None:
        self.quiet = quiet
        self._n = 0
        self._last_leave = 0.0
        self._cond = threading.Condition()

    def enter(self) -> None:
        with self._cond:
            self._n += 1

    def leave(self) -> None:
        with self._cond:
            self._n -= 1
            self._last_leave = time.monotonic()
            if self._n <= 0:
                self._cond.notify_all()

    @property
    def busy(self) -> bool:
        """A primary is running, or one finished less than `quiet` seconds ago (back-to-back
        queries leave gaps of microseconds: too short to be worth a candidate's slice)."""
        return self._n > 0 or time.monotonic() - self._last_leave < self.quiet

    def wait_idle(self, deadline: Deadline) -> None:
        """Block while `busy`, at most until `deadline` passes. Sleeps on a condition (woken by
        the last primary's `leave`), not by polling: a polling thread would take the interpreter
        lock from the primary every few milliseconds."""
        if not self.busy:
            return
        with self._cond:
            while not deadline.expired:
                if self._n > 0:
                    wait = 1.0
                else:
                    wait = self._last_leave + self.quiet - time.monotonic()
                    if wait <= 0:
                        return
                self._cond.wait(min(wait, max(deadline.remaining(), 0.001)))


class _Yield:
    """A profile hook (`sys.setprofile`, this thread only) that pauses the candidate's thread
    while a primary runs: every 64th Python or C call it looks at the gate. Deadline checkpoints
    alone are too coarse (the reference engine checks once per 50,000 rows). `paused` sums the
    seconds spent waiting, so the candidate's recorded time can leave them out."""

    def __init__(self, gate: PrimaryGate, deadline: Deadline) -> None:
        self.gate, self.deadline = gate, deadline
        self.calls = 0
        self.paused = 0.0

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        self.calls += 1
        if self.calls & 63 or not self.gate.busy:
            return
        started = time.perf_counter()
        self.gate.wait_idle(self.deadline)
        self.paused += time.perf_counter() - started

    def __enter__(self) -> _Yield:
        sys.setprofile(self)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(None)


class YieldingDeadline(Deadline):
    """A candidate's deadline whose `check()` also waits while a primary query runs (the clock
    keeps running: a candidate starved past its deadline is a `candidate_timeout`)."""

    def __init__(self, timeout: float, gate: PrimaryGate) -> None:
        super().__init__(timeout)
        self._gate = gate

    def check(self) -> None:
        super().check()
        self._gate.wait_idle(self)
        super().check()


@dataclass
class ShadowRequest:
    """What the query service hands over once the primary has answered. `now` is the instant the
    query was normalised against; `primary_s` the primary's execution time in seconds."""

    project: int
    kind: str
    query: dict[str, Any]
    normalised: NormalisedQuery
    now: datetime
    timezone: str
    week_start: int
    snapshot: Snapshot
    primary_name: str
    primary: Engine
    primary_result: InsightResult
    primary_s: float


@dataclass(eq=False)
class _Task:
    request: ShadowRequest
    link: Link | None = None  # to the primary query's span (tracing on)
    deadline: Deadline | None = None
    started: float = 0.0
    _done: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def claim(self) -> bool:
        """True for the first caller only: the worker and the watchdog race to record it."""
        with self._lock:
            if self._done:
                return False
            self._done = True
            return True


class ShadowRunner:
    """One per process, an observer of the QueryService (eventlens.query.observers): it hands
    each sampled answered query to the candidate, and steps aside while primaries run.
    Thread-safe.

    `candidate` / `primary_name` default to the settings; `candidate_engine` lets a caller (tests,
    replay) pass an engine object that is not in the registry.
    """

    def __init__(
        self,
        settings: Settings,
        store: ShadowStore | None = None,
        *,
        candidate_engine: Engine | None = None,
        default_primary: str = "reference",
    ) -> None:
        self.settings = settings
        self.primary_name = settings.shadow_primary or default_primary
        self.candidate_name = settings.shadow_candidate
        self.rate = settings.shadow_sample
        self.project_rates = parse_project_rates(settings.shadow_sample_projects)
        self.tolerance = settings.shadow_tolerance
        self.timeout = settings.shadow_timeout
        self._candidate = candidate_engine
        if candidate_engine is not None:
            self.candidate_name = candidate_engine.name
        self.store = store or ShadowStore(
            settings.data_dir / "shadow.db", max_result_bytes=settings.shadow_max_result_bytes
        )
        self._queue: queue.Queue[_Task] = queue.Queue(maxsize=max(1, settings.shadow_queue))
        self._running: set[_Task] = set()
        self._lock = threading.Lock()
        self._pending = 0
        self._uncounted: dict[tuple[int, str, str], int] = {}  # (project, kind, outcome) -> n
        self._idle = threading.Condition(self._lock)
        self._closed = threading.Event()
        self.gate = PrimaryGate()
        for i in range(max(1, settings.shadow_workers)):
            threading.Thread(target=self._work, name=f"shadow-{i}", daemon=True).start()
        threading.Thread(target=self._watch, name="shadow-watchdog", daemon=True).start()

    @classmethod
    def from_settings(
        cls, settings: Settings, default_primary: str = "reference"
    ) -> ShadowRunner | None:
        """A runner if shadow mode is configured (`shadow_candidate` set), else None.
        `default_primary` is the engine queries get when they name none (the primary when
        `shadow_primary` is empty). InvalidQuery for an unknown engine name."""
        if not settings.shadow_candidate:
            return None
        get_engine(settings.shadow_candidate)  # fail at startup on a bad name
        get_engine(settings.shadow_primary or default_primary)
        return cls(settings, default_primary=default_primary)

    @property
    def candidate(self) -> Engine:
        if self._candidate is None:
            self._candidate = get_engine(self.candidate_name)
        return self._candidate

    # -- the primary's side (must stay cheap) ------------------------------------------------

    def query_started(self, query: QueryStarted) -> None:
        """Shadow work steps aside while a primary runs (PrimaryGate)."""
        self.gate.enter()

    def query_finished(
        self, query: QueryStarted, answer: QueryAnswered | None, error: BaseException | None
    ) -> None:
        """Hand a sampled answer to the candidate; count a sampled primary failure (a query
        rejected as invalid is neither)."""
        self.gate.leave()
        if isinstance(error, InvalidQuery) or not self.wants(query.project.id, query.engine_name):
            return
        if answer is None:
            self.primary_failed(query.project.id, query.kind)
            return
        project = query.project
        self.offer(
            ShadowRequest(
                project=project.id,
                kind=query.kind,
                query=query.query,
                normalised=query.normalised,
                now=query.now,
                timezone=project.timezone,
                week_start=project.week_start,
                snapshot=answer.snapshot,
                primary_name=query.engine_name,
                primary=query.engine,
                primary_result=answer.result,
                primary_s=answer.execute_s,
            )
        )

    def wants(self, project: int, engine_name: str) -> bool:
        """Sampling: shadow this query of `project` answered by `engine_name`?"""
        if engine_name != self.primary_name or self._closed.is_set():
            return False
        rate = self.project_rates.get(project, self.rate)
        return rate > 0.0 and (rate >= 1.0 or random.random() < rate)

    def offer(self, request: ShadowRequest) -> bool:
        """Queue a candidate run for `request` without blocking; False if it was shed."""
        task = _Task(request, tracing.link_to_current())
        with self._lock:
            try:
                self._queue.put_nowait(task)
            except queue.Full:
                self._count_later(request.project, request.kind, "shed")
                return False
            self._pending += 1
        metrics.shadow_pending.inc()
        return True

    def primary_failed(self, project: int, kind: str) -> None:
        """Count a sampled query whose primary failed (nothing to compare)."""
        with self._lock:
            self._count_later(project, kind, "primary_error")

    def _count_later(self, project: int, kind: str, outcome: str) -> None:
        # Called under self._lock; written to the store by the watchdog, off the primary's path.
        key = (project, kind, outcome)
        self._uncounted[key] = self._uncounted.get(key, 0) + 1
        metrics.shadow_queries.labels(outcome).inc()

    # -- lifecycle -------------------------------------------------------------------------------

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until no candidate run is queued or running (runaways excepted: they are already
        recorded), then write pending counts. True if drained within `timeout` seconds."""
        end = time.monotonic() + timeout
        with self._idle:
            while self._pending > 0:
                left = end - time.monotonic()
                if left <= 0:
                    break
                self._idle.wait(left)
            drained = self._pending == 0
        self.flush()
        return drained

    def flush(self) -> None:
        """Write the in-memory shed / primary-error counts to the store."""
        with self._lock:
            counts, self._uncounted = self._uncounted, {}
        for (project, kind, outcome), n in counts.items():
            self.store.add_comparison(
                project=project,
                kind=kind,
                outcome=outcome,
                n=n,
                primary_engine=self.primary_name,
                candidate_engine=self.candidate_name,
            )

    def close(self) -> None:
        """Stop accepting work and write pending counts; running candidates are abandoned."""
        self._closed.set()
        self.flush()

    # -- the shadow threads ----------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            task = self._queue.get()
            req = task.request
            attributes: tracing.Attributes = {
                "eventlens.project_id": req.project,
                "eventlens.query.kind": req.kind,
                "eventlens.shadow.primary": req.primary_name,
                "eventlens.shadow.candidate": self.candidate_name,
            }
            try:
                # Its own trace (it runs after the primary answered), linked to the primary's.
                links = () if task.link is None else (task.link,)
                with tracing.span("shadow.run", attributes, links=links):
                    self._run(task)
            except Exception:  # a bug here must never kill the worker
                log.exception("shadow.worker_failed")
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()
                metrics.shadow_pending.dec()

    def _run(self, task: _Task) -> None:
        req = task.request
        task.deadline = YieldingDeadline(self.timeout, self.gate)
        task.started = time.perf_counter()
        self.gate.wait_idle(task.deadline)  # start after the primaries in flight
        waited = time.perf_counter() - task.started
        pauses = _Yield(self.gate, task.deadline)
        with self._lock:
            self._running.add(task)
        try:
            with pauses:
                result = call_engine(self.candidate, req.normalised, req.snapshot, task.deadline)
            error: str | None = None
            outcome = "match"
        except QueryTimeout:
            result, error, outcome = None, "candidate passed its deadline", "candidate_timeout"
        except Exception as exc:
            result, outcome = None, "candidate_error"
            error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        finally:
            with self._lock:
                self._running.discard(task)
        # Engine time: without the time spent stepping aside for primaries.
        candidate_s = time.perf_counter() - task.started - waited - pauses.paused
        if not task.claim():
            return  # the watchdog already recorded it as a timeout
        metrics.shadow_engine_seconds.labels("candidate", self.candidate_name).observe(candidate_s)
        diffs: list[dict[str, Any]] = []
        if outcome == "match":
            found = compare(req.kind, req.primary_result, result, tolerance=self.tolerance)
            if found:
                outcome = "mismatch"
                diffs = [d.to_dict() for d in found]
                if self._primary_disagrees_with_itself(req):
                    outcome = "nondeterministic"
        self._record(req, outcome, candidate_s, result, diffs, error)

    def _primary_disagrees_with_itself(self, req: ShadowRequest) -> bool:
        """Re-run the primary on the same snapshot: does it give a different answer?"""
        deadline = YieldingDeadline(self.timeout, self.gate)
        try:
            with _Yield(self.gate, deadline):
                again = call_engine(req.primary, req.normalised, req.snapshot, deadline)
        except Exception:
            log.warning("shadow.primary_rerun_failed", kind=req.kind, project=req.project)
            return False
        return bool(compare(req.kind, req.primary_result, again, tolerance=self.tolerance))

    def _record(
        self,
        req: ShadowRequest,
        outcome: str,
        candidate_s: float | None,
        result: Any,
        diffs: list[dict[str, Any]],
        error: str | None,
    ) -> None:
        metrics.shadow_queries.labels(outcome).inc()
        tracing.set_attributes({"eventlens.shadow.outcome": outcome})
        metrics.shadow_engine_seconds.labels("primary", req.primary_name).observe(req.primary_s)
        primary_ms = round(req.primary_s * 1000.0, 3)
        candidate_ms = None if candidate_s is None else round(candidate_s * 1000.0, 3)
        if outcome == "match":
            self.store.add_comparison(
                project=req.project,
                kind=req.kind,
                outcome=outcome,
                primary_engine=req.primary_name,
                candidate_engine=self.candidate_name,
                primary_ms=primary_ms,
                candidate_ms=candidate_ms,
            )
            return
        record_id = self.store.add_discrepancy(
            Discrepancy(
                project=req.project,
                kind=req.kind,
                outcome=outcome,
                fingerprint=req.normalised.fingerprint,
                query=req.query,
                now=req.now.isoformat(),
                timezone=req.timezone,
                week_start=req.week_start,
                data_version=req.snapshot.version,
                primary_engine=req.primary_name,
                primary_engine_version=engine_version(req.primary),
                candidate_engine=self.candidate_name,
                candidate_engine_version=engine_version(self.candidate),
                primary_ms=primary_ms,
                candidate_ms=candidate_ms,
                primary_result=req.primary_result,
                candidate_result=result,
                diff=diffs,
                diff_count=len(diffs),
                error=error,
            )
        )
        log.warning(
            "shadow.discrepancy",
            id=record_id,
            outcome=outcome,
            project=req.project,
            kind=req.kind,
            first_diff=diffs[0]["path"] if diffs else None,
        )

    def _watch(self) -> None:
        last_flush = time.monotonic()
        while True:
            time.sleep(_WATCH_INTERVAL)
            with self._lock:
                expired = [
                    t for t in self._running if t.deadline is not None and t.deadline.expired
                ]
            for task in expired:
                if task.claim():
                    assert task.deadline is not None
                    task.deadline.cancel()
                    elapsed = time.perf_counter() - task.started
                    try:
                        self._record(
                            task.request,
                            "candidate_timeout",
                            elapsed,
                            None,
                            [],
                            f"candidate passed its deadline of {self.timeout:g} s"
                            " (still running: it keeps its worker until it returns)",
                        )
                    except Exception:
                        log.exception("shadow.record_failed")
            if time.monotonic() - last_flush >= _FLUSH_INTERVAL:
                last_flush = time.monotonic()
                try:
                    self.flush()
                except Exception:
                    log.exception("shadow.flush_failed")

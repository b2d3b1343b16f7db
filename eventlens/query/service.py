"""The query service: the one path from a query JSON to results, shared by the API and the CLI.

    request -> parse + normalise (project timezone, now = request time)
            -> pin the latest snapshot of the project's event table (the data version)
            -> run the engine in the bounded query pool under a deadline
            -> results + data_version + engine + timings
            -> the observers (eventlens.query.observers): the query log line, and whatever the
               composition root attached (shadow mode's non-blocking hand-over to the candidate
               engine, docs/shadow-mode.md)

Deadline (default `Settings.query_timeout`, per request up to `Settings.query_max_timeout`):
the engine runs in `QueryPool` with the deadline as the current `eventlens.query.deadline`; the
caller gets `QueryTimeout` (504) at the deadline whether or not the engine cooperates. See
`eventlens.query.pool` for what happens to an engine that does not stop.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eventlens.config import Settings
from eventlens.errors import EventLensError, ExecutionError, InvalidQuery, QueryTimeout
from eventlens.observability import metrics
from eventlens.observability.logging import get_logger
from eventlens.projects.store import MetadataStore, Project
from eventlens.query.deadline import Deadline
from eventlens.query.engines import Engine, InsightResult, check_can_explain, run_engine
from eventlens.query.model import parse_query
from eventlens.query.normalise import NormalisedQuery, normalise
from eventlens.query.observers import QueryAnswered, QueryObserver, QueryStarted
from eventlens.query.parallel import resident_cache, use_executor
from eventlens.query.pool import QueryPool
from eventlens.query.querylog import FILE_NAME as QUERY_LOG_FILE
from eventlens.query.querylog import QueryLog
from eventlens.query.registry import get_engine
from eventlens.storage import tables
from eventlens.storage.event_table import Snapshot

log = get_logger(__name__)
DEFAULT_ENGINE = "parallel"  # the production engine; "reference" is the oracle


@dataclass(frozen=True)
class QueryOutcome:
    """What a query returns. `timings` are milliseconds: parse, plan (normalise, pick the engine,
    pin the snapshot), queue (waiting for a pool slot), execute (engine), total."""

    results: InsightResult
    data_version: int
    engine: str
    kind: str
    fingerprint: str
    timings: dict[str, float] = field(default_factory=dict)
    # EXPLAIN ANALYZE of this run (files pruned/kept, sub-tasks, rows, per-task times), when
    # asked for with explain=True.
    explain: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "results": self.results,
            "data_version": self.data_version,
            "engine": self.engine,
            "kind": self.kind,
            "fingerprint": self.fingerprint,
            "timings": self.timings,
        }
        if self.explain is not None:
            out["explain"] = self.explain
        return out


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


class QueryService:
    """Thread-safe; one per process. `metadata` resolves projects (timezone, week_start).
    `observers` are called around each query (eventlens.query.observers), after the query log
    that `settings.query_log` asks for."""

    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        observers: Sequence[QueryObserver] = (),
    ) -> None:
        self.settings = settings
        self.metadata = metadata
        self.pool = QueryPool(workers=max(1, settings.query_workers))
        resident_cache.configure(settings.query_resident_mb * 2**20)
        use_executor(
            settings.query_executor,
            address=settings.ray_address,
            workers=settings.ray_workers,
            resident_bytes=settings.ray_worker_resident_mb * 2**20,
        )
        self.query_log: QueryLog | None = (
            QueryLog(settings.data_dir / QUERY_LOG_FILE, settings.query_log_max_bytes)
            if settings.query_log
            else None
        )
        logged: tuple[QueryObserver, ...] = () if self.query_log is None else (self.query_log,)
        self.observers: tuple[QueryObserver, ...] = (*logged, *observers)

    # -- the two entry points ---------------------------------------------------------------

    async def run(
        self,
        project_id: int,
        query: object,
        *,
        engine: str = DEFAULT_ENGINE,
        timeout: float | None = None,
        refresh: bool = False,
        explain: bool = False,
    ) -> QueryOutcome:
        """Run `query` (the query JSON object) on project `project_id`'s latest data.

        Raises InvalidQuery (400, with `field`) for a bad query, engine or timeout, or for
        `explain` with an engine that cannot explain; NotFound for an unknown project,
        QueryTimeout (504) at the deadline. `refresh` is accepted for the cache that comes
        later; today every query is computed.
        """
        job = self._prepare(project_id, query, engine, timeout, explain)
        return await self.pool.run_async(job.execute, job.deadline)

    def run_sync(
        self,
        project_id: int,
        query: object,
        *,
        engine: str = DEFAULT_ENGINE,
        timeout: float | None = None,
        refresh: bool = False,
        explain: bool = False,
    ) -> QueryOutcome:
        """Blocking twin of `run` (for the CLI and tests)."""
        job = self._prepare(project_id, query, engine, timeout, explain)
        return self.pool.run(job.execute, job.deadline)

    # -- steps ----------------------------------------------------------------------------------

    def deadline_for(self, timeout: float | None) -> Deadline:
        """Deadline of `timeout` seconds (None = the default). Raises InvalidQuery(field=timeout)
        outside (0, query_max_timeout]."""
        if timeout is None:
            return Deadline(self.settings.query_timeout)
        limit = self.settings.query_max_timeout
        if not (0 < timeout <= limit):
            raise InvalidQuery(
                f"timeout must be > 0 and <= {limit:g} seconds, not {timeout:g}", field="timeout"
            )
        return Deadline(float(timeout))

    def _prepare(
        self, project_id: int, query: object, engine: str, timeout: float | None, explain: bool
    ) -> _Job:
        """Everything cheap and fallible before a pool slot is taken: deadline, project, parse,
        engine, normalise. Errors here are 400/404 without queueing."""
        started = time.perf_counter()
        deadline = self.deadline_for(timeout)
        project = self.metadata.get_project(project_id)
        if not isinstance(query, dict):
            raise InvalidQuery("query must be a JSON object", field="query")
        parsed = parse_query(query)
        parsed_at = time.perf_counter()
        resolved = get_engine(engine)  # InvalidQuery(field=engine) naming the known ones
        if explain:
            check_can_explain(resolved, engine)
        now = datetime.now(UTC)
        normalised = normalise(
            parsed,
            timezone=project.timezone,
            week_start=project.week_start,
            now=now,
        )
        return _Job(
            service=self,
            project=project,
            kind=parsed.kind,
            engine=resolved,
            engine_name=engine,
            normalised=normalised,
            deadline=deadline,
            started=started,
            parse_s=parsed_at - started,
            plan_s=time.perf_counter() - parsed_at,
            query=query,
            now=now,
            explain=explain,
        )

    def pin(self, project_id: int) -> Snapshot:
        """The latest committed snapshot of the project's event table. A project that has no
        table yet reads as an empty version 0 (what creating it would give), without creating
        anything: queries never write."""
        return tables.snapshot(self.settings, project_id)

    def notify_started(self, query: QueryStarted) -> None:
        """Tell every observer a query starts (an observer that raises is logged, skipped)."""
        for observer in self.observers:
            try:
                observer.query_started(query)
            except Exception:
                log.exception("query.observer_failed", observer=type(observer).__name__)

    def notify_finished(
        self, query: QueryStarted, answer: QueryAnswered | None, error: BaseException | None
    ) -> None:
        """Tell every observer how a query ended (an observer that raises is logged, skipped)."""
        for observer in self.observers:
            try:
                observer.query_finished(query, answer, error)
            except Exception:
                log.exception("query.observer_failed", observer=type(observer).__name__)


@dataclass
class _Job:
    service: QueryService
    project: Project
    kind: str
    engine: Engine
    engine_name: str
    normalised: NormalisedQuery
    deadline: Deadline
    started: float
    parse_s: float
    plan_s: float
    query: dict[str, Any] = field(default_factory=dict)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    explain: bool = False

    def execute(self) -> QueryOutcome:
        """Runs in a pool thread: pin the snapshot, run the engine, tell the observers."""
        t0 = time.perf_counter()
        outcome = "error"
        service = self.service
        started = QueryStarted(
            project=self.project,
            query=self.query,
            normalised=self.normalised,
            now=self.now,
            engine_name=self.engine_name,
            engine=self.engine,
        )
        service.notify_started(started)
        error: BaseException | None = None
        try:
            snapshot = service.pin(self.project.id)
            self.deadline.check()
            t1 = time.perf_counter()
            results, report = run_engine(
                self.engine, self.normalised, snapshot, self.deadline, explain=self.explain
            )
            t2 = time.perf_counter()
            outcome = "ok"
        except QueryTimeout as exc:
            outcome, error = "timeout", exc
            raise
        except InvalidQuery as exc:
            outcome, error = "invalid", exc
            raise
        except EventLensError as exc:
            error = exc
            raise
        except Exception as exc:
            # An engine bug: a JSON 500 naming the engine, with the traceback in the log.
            log.exception("query.engine_failed", engine=self.engine_name, kind=self.kind)
            error = ExecutionError(
                f"engine {self.engine_name!r} failed on this {self.kind}: "
                f"{type(exc).__name__}: {exc}",
                engine=self.engine_name,
            )
            raise error from exc
        except BaseException as exc:
            error = exc
            raise
        finally:
            if error is not None:
                service.notify_finished(started, None, error)
            metrics.query_seconds.labels(self.engine_name, self.kind, outcome).observe(
                time.perf_counter() - self.started
            )
        timings = {
            "parse_ms": _ms(self.parse_s),
            "plan_ms": _ms(self.plan_s + (t1 - t0)),
            "queue_ms": _ms(t0 - self.started - self.parse_s - self.plan_s),
            "execute_ms": _ms(t2 - t1),
            "total_ms": _ms(t2 - self.started),
        }
        log.info(
            "query.done",
            project_id=self.project.id,
            engine=self.engine_name,
            kind=self.kind,
            data_version=snapshot.version,
            total_ms=timings["total_ms"],
        )
        service.notify_finished(started, QueryAnswered(snapshot, results, t2 - t1, timings), None)
        return QueryOutcome(
            results=results,
            data_version=snapshot.version,
            engine=self.engine.name,
            kind=self.kind,
            fingerprint=self.normalised.fingerprint,
            timings=timings,
            explain=report,
        )

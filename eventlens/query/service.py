"""The query service: the one path from a query JSON to results, shared by the API and the CLI.

    request -> parse + normalise (project timezone, now = request time)
            -> pin the latest snapshot of the project's event table (the data version)
            -> run the engine in the bounded query pool under a deadline
            -> results + data_version + engine + timings
            -> the observers (eventlens.query.observers): the query log line, and whatever the
               composition root attached (shadow mode's non-blocking hand-over to the candidate
               engine, docs/shadow-mode.md)

Result cache (eventlens.cache, docs/adr/0008-result-cache.md): unless `cache_backend` is "off",
each query is served through the cache: an answer computed at the pinned data version is served
without computing; otherwise the refresh mode (`refresh`, PostHog's names) decides between
computing now (reusing the per-sub-task partials of earlier runs), serving the last answer and
refreshing in the background, or never computing.

Deadline (default `Settings.query_timeout`, per request up to `Settings.query_max_timeout`):
the engine runs in `QueryPool` with the deadline as the current `eventlens.query.deadline`; the
caller gets `QueryTimeout` (504) at the deadline whether or not the engine cooperates. See
`eventlens.query.pool` for what happens to an engine that does not stop.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from eventlens.cache import (
    CachedAnswer,
    Counting,
    ProjectSettings,
    Request,
    ResultCache,
    Served,
    answer_key,
    build_cache,
    mode_of,
)
from eventlens.config import Settings
from eventlens.errors import EventLensError, ExecutionError, InvalidQuery, QueryTimeout
from eventlens.observability import metrics, tracing
from eventlens.observability.logging import get_logger
from eventlens.projects.cohorts import CohortStore
from eventlens.projects.store import MetadataStore, Project
from eventlens.query.cohort_service import CohortService
from eventlens.query.deadline import Deadline
from eventlens.query.engines import Engine, InsightResult, check_can_explain, run_engine
from eventlens.query.follow import CommitFollower
from eventlens.query.in_project import normalise_in_project
from eventlens.query.model import parse_query
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.observers import QueryAnswered, QueryObserver, QueryStarted
from eventlens.query.parallel import partials, resident_cache, use_executor
from eventlens.query.pool import QueryPool
from eventlens.query.querylog import FILE_NAME as QUERY_LOG_FILE
from eventlens.query.querylog import QueryLog, log_entry
from eventlens.query.registry import get_engine
from eventlens.storage import tables
from eventlens.storage.event_table import Snapshot

log = get_logger(__name__)
DEFAULT_ENGINE = "parallel"  # the production engine; "reference" is the oracle


@dataclass(frozen=True)
class QueryOutcome:
    """What a query returns. `timings` are milliseconds: parse, plan (normalise, pick the engine,
    pin the snapshot), queue (waiting for a pool slot), execute (engine), total."""

    results: InsightResult | None  # None: a force_cache miss, or an async mode's first request
    data_version: int | None
    engine: str
    kind: str
    fingerprint: str
    timings: dict[str, float] = field(default_factory=dict)
    # EXPLAIN ANALYZE of this run (files pruned/kept, sub-tasks, rows, per-task times), when
    # asked for with explain=True.
    explain: dict[str, Any] | None = None
    # The result cache's fields (Served.envelope: is_cached, last_refresh, cache_key,
    # query_status, current_data_version ...); None when the cache is off.
    cache: dict[str, Any] | None = None
    computed_at: float = field(default_factory=time.time)

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
        if self.cache is not None:
            out.update(self.cache)
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
        cache: ResultCache | bool | None = True,
    ) -> None:
        """`cache`: True = the one `settings.cache_backend` asks for, False = none, or a
        ResultCache (tests, several services sharing one)."""
        self.settings = settings
        self.metadata = metadata
        self.cache: ResultCache | None = build_cache(settings) if cache is True else (cache or None)
        self.pool = QueryPool(workers=max(1, settings.query_workers))
        resident_cache.configure(settings.query_resident_mb * 2**20)
        use_executor(
            settings.query_executor,
            address=settings.ray_address,
            workers=settings.ray_workers,
            resident_bytes=settings.ray_worker_resident_mb * 2**20,
        )
        self.follower: CommitFollower | None = (
            # Local resident buckets only: with Ray the owners keep their own.
            CommitFollower(settings)
            if settings.query_follow_commits
            and settings.query_resident_mb > 0
            and settings.query_executor != "ray"
            else None
        )
        self.query_log: QueryLog | None = (
            QueryLog(settings.data_dir / QUERY_LOG_FILE, settings.query_log_max_bytes)
            if settings.query_log
            else None
        )
        logged: tuple[QueryObserver, ...] = () if self.query_log is None else (self.query_log,)
        self.observers: tuple[QueryObserver, ...] = (*logged, *observers)
        # Cohorts a query may name (resolved into the normalised query, ADR 0017).
        self.cohorts = CohortService(CohortStore(settings.meta_db), settings.state_db, self.pin)

    # -- the two entry points ---------------------------------------------------------------

    async def run(
        self,
        project_id: int,
        query: object,
        *,
        engine: str = DEFAULT_ENGINE,
        timeout: float | None = None,
        refresh: str | bool | None = None,
        explain: bool = False,
    ) -> QueryOutcome:
        """Run `query` (the query JSON object) on project `project_id`'s latest data.

        `refresh`: PostHog's refresh mode (eventlens.cache.modes; None = blocking). Raises
        InvalidQuery (400, with `field`) for a bad query, engine, timeout or refresh, or for
        `explain` with an engine that cannot explain; NotFound for an unknown project,
        QueryTimeout (504) at the deadline.
        """
        with tracing.span("query", {"eventlens.project_id": project_id}):
            job = self._prepare(project_id, query, engine, timeout, explain)
            # The pool runs the job in a copy of this context: its spans are children of "query".
            if self.cache is None:
                return await self.pool.run_async(job.execute, job.deadline)
            loop = asyncio.get_running_loop()
            ctx = contextvars.copy_context()  # run_in_executor does not carry the span
            return await loop.run_in_executor(
                self.cache.request_pool, ctx.run, self._serve_cached, self.cache, job, refresh
            )

    def run_sync(
        self,
        project_id: int,
        query: object,
        *,
        engine: str = DEFAULT_ENGINE,
        timeout: float | None = None,
        refresh: str | bool | None = None,
        explain: bool = False,
    ) -> QueryOutcome:
        """Blocking twin of `run` (for the CLI and tests)."""
        with tracing.span("query", {"eventlens.project_id": project_id}):
            job = self._prepare(project_id, query, engine, timeout, explain)
            if self.cache is None:
                return self.pool.run(job.execute, job.deadline)
            return self._serve_cached(self.cache, job, refresh)

    def _serve_cached(
        self, cache: ResultCache, job: _Job, refresh: str | bool | None
    ) -> QueryOutcome:
        """Serve `job` through the result cache (runs in a cache request thread), observed once
        in the query SLI with how the cache served it (hit, miss, incremental, coalesced,
        stale; a failed request is a miss: nothing cached was served)."""
        how: dict[str, str] = {"result": "miss"}
        outcome = "error"
        try:
            served = self._serve_cached_once(cache, job, refresh, how)
            outcome = "ok"
            return served
        except QueryTimeout:
            outcome = "timeout"
            raise
        except InvalidQuery:
            outcome = "invalid"
            raise
        finally:
            metrics.query_seconds.labels(job.engine_name, job.kind, outcome, how["result"]).observe(
                time.perf_counter() - job.started
            )

    def _serve_cached_once(
        self, cache: ResultCache, job: _Job, refresh: str | bool | None, how: dict[str, str]
    ) -> QueryOutcome:
        try:
            mode = mode_of(refresh)
        except ValueError as exc:
            raise InvalidQuery(str(exc), field="refresh") from None
        snapshot = self.pin_traced(job.project.id)
        if self.settings.fault_query_delay:  # test-only fault injection (config.py)
            time.sleep(self.settings.fault_query_delay)
        pinned = time.perf_counter()
        filters = (
            job.project.test_account_filters if job.normalised.query.filterTestAccounts else []
        )
        project = ProjectSettings(
            job.project.id,
            job.project.timezone,
            job.project.week_start,
            tuple(orjson.dumps(f, option=orjson.OPT_SORT_KEYS).decode() for f in filters),
        )
        key = answer_key(project, job.engine_name, job.normalised)

        inner: dict[str, float] = {}

        def compute(store: Counting) -> tuple[CachedAnswer, dict[str, Any] | None]:
            outcome = self.pool.run(
                lambda: job.execute(snapshot, store, observe=False), job.deadline
            )
            inner.update(outcome.timings)
            assert outcome.data_version is not None and outcome.results is not None
            answer = CachedAnswer(
                results=outcome.results,
                data_version=outcome.data_version,
                engine=outcome.engine,
                kind=outcome.kind,
                fingerprint=outcome.fingerprint,
                computed_at=outcome.computed_at,
                compute_s=outcome.timings.get("execute_ms", 0.0) / 1000.0,
            )
            return answer, outcome.explain

        # A computation this request makes is a child of this span (pool threads copy it).
        with tracing.span("query.cache_lookup", {"eventlens.cache.enabled": True}):
            served: Served = cache.serve(
                Request(
                    key=key,
                    project_id=job.project.id,
                    version=snapshot.version,
                    mode=mode,
                    compute=compute,
                    deadline=job.deadline,
                    explain=job.explain,
                )
            )
            tracing.set_attributes({"eventlens.cache.result": served.result})
        tracing.set_attributes({"eventlens.query.outcome": "ok"})
        how["result"] = served.result
        done = time.perf_counter()
        answer = served.answer
        if self.query_log is not None and answer is not None and served.is_cached:
            # A computation was logged by the observers when it ran; this request was served an
            # answer computed before (hit, stale) or by another request (coalesced).
            self.query_log.append(
                log_entry(
                    job.now,
                    job.project,
                    job.query,
                    job.normalised,
                    job.engine_name,
                    job.kind,
                    answer.data_version,
                    cached=served.result,
                )
            )
        return QueryOutcome(
            results=None if answer is None else answer.results,
            data_version=None if answer is None else answer.data_version,
            engine=job.engine.name if answer is None else answer.engine,
            kind=job.kind,
            fingerprint=job.normalised.fingerprint,
            timings={
                "parse_ms": _ms(job.parse_s),
                "plan_ms": _ms(job.plan_s + (pinned - job.started - job.parse_s - job.plan_s)),
                # Waiting for a worker and the engine, when this request computed (else 0).
                "queue_ms": inner.get("queue_ms", 0.0),
                "execute_ms": inner.get("execute_ms", 0.0),
                "cache_ms": _ms(done - pinned),
                "total_ms": _ms(done - job.started),
            },
            explain=served.explain,
            cache=served.envelope(),
            computed_at=time.time() if answer is None else answer.computed_at,
        )

    def close(self) -> None:
        """Stop the background threads (the commit follower, the cache's refreshes)."""
        if self.follower is not None:
            self.follower.close()
        if self.cache is not None:
            self.cache.close()
        self.cohorts.store.close()

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
        tracing.set_attributes({"eventlens.query.kind": parsed.kind, "eventlens.engine": engine})
        now = datetime.now(UTC)
        normalised = normalise_in_project(parsed, project, self.cohorts.store, now)
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

    def pin_traced(self, project_id: int) -> Snapshot:
        """`pin` under a "query.snapshot" span that names the data version."""
        with tracing.span("query.snapshot", {"eventlens.project_id": project_id}):
            snapshot = self.pin(project_id)
            tracing.set_attributes({"eventlens.data_version": snapshot.version})
        return snapshot

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

    def execute(
        self,
        pinned: Snapshot | None = None,
        store: partials.PartialStore | None = None,
        *,
        observe: bool = True,
    ) -> QueryOutcome:
        """Runs in a pool thread: pin the snapshot (unless given), run the engine (reusing
        sub-task partials from `store`, if any), tell the observers. `observe`: record the
        SLI observation (cache="off"); False when the result cache serves the request, which
        observes it once itself (a background refresh serves no request at all)."""
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
            snapshot = service.pin_traced(self.project.id) if pinned is None else pinned
            # Test-only fault injection (config.py): once per served request, so with the
            # result cache the request sleeps instead (below, _serve_cached_once).
            if observe and service.settings.fault_query_delay:
                time.sleep(service.settings.fault_query_delay)
            self.deadline.check()
            t1 = time.perf_counter()
            cpu = time.process_time()
            with (
                tracing.span("query.execute", {"eventlens.engine": self.engine_name}),
                partials.using(store),
            ):
                results, report = run_engine(
                    self.engine, self.normalised, snapshot, self.deadline, explain=self.explain
                )
            # Process-wide CPU: the engine's sub-task threads count, and so does whatever else
            # ran meanwhile (an approximation under concurrent load).
            metrics.query_engine_cpu_seconds.labels(self.kind).inc(time.process_time() - cpu)
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
            tracing.set_attributes({"eventlens.query.outcome": outcome})
            if error is not None:
                service.notify_finished(started, None, error)
            if observe:
                metrics.query_seconds.labels(self.engine_name, self.kind, outcome, "off").observe(
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
        if service.follower is not None and self.engine_name == DEFAULT_ENGINE:
            service.follower.touch(self.project.id, snapshot.version)
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

"""Executor "ray": a plan's sub-tasks on long-lived bucket-owner actors of a Ray cluster.

    RayExecutor(address=None, workers=2).map(fn, tasks, deadline) -> [fn(task) ...]

Each actor (`BucketOwner`) is a process with its own resident bucket cache, bounded by
`resident_bytes`; the engine plans one sub-task per person bucket (`owns_buckets`) and each
goes to its bucket's owner by rendezvous hashing (owners.py), so the cluster holds each bucket
once and a query's buckets are read where they are already decoded. The sub-task itself is the
engine's `run_subtask`, shipped as a partial: the same pure function, the same partials, the
merge unchanged, so answers are identical to the local executor's.

Failure (docs/adr/0009-ray-and-object-storage.md): an actor whose process or node dies is
dropped from the owner list; its sub-tasks go to their next owners (the second choice of the
same ranking, so no other bucket moves), which read the buckets from storage. A sub-task that
raises is retried once, like every executor; a straggler (far slower than its finished peers)
is re-issued to its next owner and the first answer wins. With no worker left, or a sub-task
lost more often than there are workers, the query fails with an ExecutionError naming the
lost workers and nodes. Lost actors are replaced at the next query.

Ray is imported only here, when this executor is built: `pip install eventlens` works without
it (the `cluster` extra installs it).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from eventlens.errors import ExecutionError, InvalidInput, QueryTimeout, Unavailable
from eventlens.observability import metrics
from eventlens.observability.logging import get_logger
from eventlens.query import deadline as deadlines
from eventlens.query.deadline import Deadline, timeout_error, using
from eventlens.query.parallel import owners, resident_cache
from eventlens.query.parallel.executors import describe, set_worker
from eventlens.query.parallel.resident import BASE_ROW_BYTES

T = TypeVar("T")
R = TypeVar("R")
log = get_logger(__name__)

# Variables the workers need to read the tables and import the engine (facts.md: workers need
# absolute paths or URIs, and must import eventlens).
FORWARDED_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "PYTHONPATH",
)
# A straggler: running this many times the median of the finished peers, and at least
# STRAGGLER_MIN_S, once half of the first-round batches (one per owner) are answered.
STRAGGLER_FACTOR = 4.0
STRAGGLER_MIN_S = 1.0


class BucketOwner:
    """The actor: runs sub-tasks with this process's resident cache (its share of the buckets).
    Decorated with ray.remote when the executor starts."""

    def __init__(self, name: str, resident_bytes: int) -> None:
        self.name = name
        self.subtasks = 0
        set_worker(name)
        resident_cache.configure(resident_bytes)

    def run(
        self, fn: Callable[[Any], Any], tasks: Sequence[Any], timeout: float | None
    ) -> tuple[list[tuple[bool, Any]], dict[str, Any]]:
        """([(True, fn(task)) or (False, the exception) per task], status), under a deadline
        of `timeout` seconds (None: none). One call per owner and query: Ray's dispatch is
        paid once, not per sub-task. A QueryTimeout stops the batch."""
        out: list[tuple[bool, Any]] = []
        with using(Deadline(timeout)) if timeout is not None else contextlib.nullcontext():
            for task in tasks:
                try:
                    out.append((True, fn(task)))
                except QueryTimeout:
                    raise
                except Exception as exc:
                    out.append((False, exc))
                self.subtasks += 1
        return out, self.status()

    def status(self) -> dict[str, Any]:
        import ray

        return {
            "worker": self.name,
            "node": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(),
            "resident_bytes": resident_cache.CACHE.nbytes,
            "subtasks": self.subtasks,
            "rss_bytes": _rss_bytes(),
        }


def _rss_bytes() -> int:
    """This process's resident set size (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


@dataclass
class _Worker:
    name: str
    handle: Any  # ray.actor.ActorHandle
    node: str = ""


@dataclass
class _Run:
    """One submitted batch: sub-tasks `indices` on `worker`."""

    indices: list[int]
    worker: str
    started: float


@dataclass
class WorkerStatus:
    """What explain and the tests see of a bucket owner."""

    name: str
    node: str
    pid: int
    resident_bytes: int
    subtasks: int
    rss_bytes: int = 0


@dataclass
class _Query:
    tasks: Sequence[Any]
    results: dict[int, Any] = field(default_factory=dict)
    failures: dict[int, int] = field(default_factory=dict)
    losses: dict[int, int] = field(default_factory=dict)
    durations: list[float] = field(default_factory=list)
    duplicated: set[int] = field(default_factory=set)
    batches: int = 0  # first-round batches (one per owner)


def task_key(task: Any) -> str:
    """The ownership key of a sub-task: its (first) person bucket in its table."""
    source = getattr(task, "source", None)
    buckets = getattr(task, "buckets", ()) or (0,)
    paths: Sequence[str] = ()
    if source is not None:
        paths = (source.buckets[0] if source.buckets else ()) or source.paths
    return owners.bucket_key(paths, int(buckets[0]))


class RayExecutor:
    """Sub-tasks on `workers` bucket-owner actors. `address`: the Ray cluster to join (None or
    "": start a local Ray instance); `resident_bytes`: each owner's resident budget;
    `actor_options`: extra ray.remote options of the owners (tests pin resources)."""

    name = "ray"
    owns_buckets = True

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int = 2,
        resident_bytes: int = 1 << 30,
        actor_options: dict[str, Any] | None = None,
        init_options: dict[str, Any] | None = None,
    ) -> None:
        if workers < 1:
            raise InvalidInput(f"ray workers must be >= 1, not {workers}", field="ray_workers")
        self.address = address or None
        self.target = workers
        self.resident_bytes = resident_bytes
        self.actor_options = actor_options or {}
        self.init_options = init_options or {}
        self._workers: dict[str, _Worker] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self.lost: list[str] = []  # "worker on node" of every worker found dead

    # --- workers ------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect to (or start) Ray and create the missing bucket owners. Raises Unavailable
        when Ray is not installed or the cluster cannot be reached."""
        try:
            import ray
        except ImportError:
            raise Unavailable(
                "the ray executor needs Ray: pip install 'eventlens[cluster]'", field="executor"
            ) from None
        with self._lock:
            if not ray.is_initialized():
                env = {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)}
                try:
                    ray.init(
                        address=self.address,
                        runtime_env={"env_vars": env} if env else None,
                        log_to_driver=False,
                        **self.init_options,
                    )
                except Exception as exc:
                    raise Unavailable(
                        f"cannot connect to Ray at {self.address or '(a new local instance)'}: "
                        f"{exc}",
                        field="ray_address",
                    ) from exc
            remote = ray.remote(BucketOwner).options(
                max_concurrency=2,
                num_cpus=0,  # placement only; the OS shares the cores
                max_restarts=0,  # a lost owner is replaced under a new name (ownership moves)
                scheduling_strategy="SPREAD",
                **self.actor_options,
            )
            while len(self._workers) < self.target:
                name = f"owner-{self._generation}"
                self._generation += 1
                handle = remote.remote(name, self.resident_bytes)
                self._workers[name] = _Worker(name, handle)

    def workers(self) -> list[WorkerStatus]:
        """The live owners' status (asks each, up to 60 s; a dead one is dropped, one that
        does not answer in time is left out)."""
        import ray

        self.start()
        out = []
        for w in list(self._workers.values()):
            try:
                s = ray.get(w.handle.status.remote(), timeout=60)
            except ray.exceptions.RayActorError as exc:
                self._drop(w.name, exc)
                continue
            except ray.exceptions.GetTimeoutError:
                # Slow to start or busy (a loaded machine), not lost: left out of this list.
                log.info("query.worker_status_timeout", worker=w.name)
                continue
            w.node = s["node"]
            metrics.worker_resident_bytes.labels(worker=w.name).set(s["resident_bytes"])
            out.append(
                WorkerStatus(
                    w.name, s["node"], s["pid"], s["resident_bytes"], s["subtasks"], s["rss_bytes"]
                )
            )
        return out

    def owners_of(self, keys: Sequence[str]) -> dict[str, str]:
        """bucket key -> owner name over the live workers."""
        return owners.assign(keys, sorted(self._workers))

    def fits_resident(self, rows: int) -> bool:
        """Do a plan's buckets fit the owners' caches together (an even share each, plus half
        again for the imbalance of hashing)?"""
        n = max(1, len(self._workers) or self.target)
        return self.resident_bytes > 0 and rows * BASE_ROW_BYTES * 3 // 2 <= (
            self.resident_bytes * n * 2 // 3
        )

    def _drop(self, name: str, exc: BaseException) -> None:
        with self._lock:
            w = self._workers.pop(name, None)
        if w is None:
            return
        where = f"{name} on node {w.node or 'unknown'}"
        self.lost.append(where)
        metrics.workers_lost.inc()
        log.warning("query.worker_lost", worker=name, node=w.node, error=repr(exc)[:300])

    def shutdown(self) -> None:
        """Kill the owners (Ray itself stays up: it may be shared)."""
        import ray

        for w in list(self._workers.values()):
            try:
                ray.kill(w.handle)
            except Exception as exc:  # already dead: nothing to stop
                log.info("query.worker_kill_failed", worker=w.name, error=repr(exc)[:200])
        self._workers.clear()

    # --- map ----------------------------------------------------------------------------------

    def map(self, fn: Callable[[T], R], tasks: Sequence[T], deadline: Deadline | None) -> list[R]:
        import ray

        deadline = deadline or deadlines.current()
        if deadline is not None:
            deadline.check()
        self.start()
        if not tasks:
            return []
        fn_ref = ray.put(fn)  # shipped once per node, not once per sub-task
        query = _Query(tasks)
        pending: dict[Any, _Run] = {}
        keys = [task_key(t) for t in tasks]

        def submit(indices: Sequence[int], skip: frozenset[str] = frozenset()) -> None:
            """Send `indices` to their owners among the live workers not in `skip`, one
            batch per owner."""
            live = [w for w in self._workers if w not in skip]
            if not live:
                raise self._all_lost(tasks[indices[0]])
            groups: dict[str, list[int]] = {}
            for i in indices:
                groups.setdefault(owners.ranking(keys[i], live)[0], []).append(i)
            timeout = None if deadline is None else max(deadline.remaining(), 0.001)
            for name, group in groups.items():
                batch = [tasks[i] for i in group]
                ref = self._workers[name].handle.run.remote(fn_ref, batch, timeout)
                pending[ref] = _Run(group, name, time.monotonic())

        try:
            submit(range(len(tasks)))
            query.batches = len(pending)
            while len(query.results) < len(tasks):
                wait_s = 0.25 if deadline is None else min(0.25, deadline.remaining())
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=wait_s)
                if deadline is not None and deadline.expired and not ready:
                    raise timeout_error(deadline.timeout)
                for ref in ready:
                    self._collect(ray, ref, pending.pop(ref), query, submit)
                self._reissue_stragglers(query, pending, submit)
        except BaseException:
            for ref in pending:
                try:
                    ray.cancel(ref)
                except Exception as exc:  # cancelling is best effort
                    log.debug("query.cancel_failed", error=repr(exc)[:200])
            raise
        for ref in pending:  # the slower copies of re-issued stragglers: no longer needed
            with contextlib.suppress(Exception):
                ray.cancel(ref)
        return [query.results[i] for i in range(len(tasks))]

    def _collect(
        self, ray: Any, ref: Any, run: _Run, query: _Query, submit: Callable[..., None]
    ) -> None:
        try:
            outs, status = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc
            if isinstance(cause, QueryTimeout):
                raise cause from None
            raise ExecutionError(
                f"bucket owner {run.worker} failed: {cause}", partition=run.worker
            ) from cause
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
            self._drop(run.worker, exc)
            todo = [i for i in run.indices if i not in query.results]
            for i in todo:
                query.losses[i] = query.losses.get(i, 0) + 1
                metrics.worker_retries.labels(worker=run.worker, reason="lost").inc()
                if query.losses[i] > self.target + 1:
                    raise ExecutionError(
                        f"query sub-task on partition {describe(query.tasks[i])} was lost "
                        f"{query.losses[i]} times; lost workers: {', '.join(self.lost)}",
                        partition=describe(query.tasks[i]),
                    ) from exc
            if todo:
                # Their next owners: the same rankings without the lost worker.
                submit(todo)
            return
        w = self._workers.get(run.worker)
        if w is not None:
            w.node = status["node"]
        metrics.worker_resident_bytes.labels(worker=run.worker).set(status["resident_bytes"])
        retry = []
        for i, (ok, value) in zip(run.indices, outs, strict=True):
            if i in query.results:
                continue  # a straggler's copy answered first
            if ok:
                query.results[i] = value
                metrics.worker_subtasks.labels(worker=run.worker).inc()
                continue
            query.failures[i] = query.failures.get(i, 0) + 1
            metrics.worker_retries.labels(worker=run.worker, reason="failed").inc()
            if query.failures[i] >= 2:
                raise ExecutionError(
                    f"query sub-task failed twice on partition {describe(query.tasks[i])}: {value}",
                    partition=describe(query.tasks[i]),
                ) from value
            log.warning(
                "query.subtask_retry", partition=describe(query.tasks[i]), error=repr(value)
            )
            retry.append(i)
        query.durations.append(time.monotonic() - run.started)
        if retry:
            submit(retry)

    def _reissue_stragglers(
        self, query: _Query, pending: dict[Any, _Run], submit: Callable[..., None]
    ) -> None:
        """A batch running STRAGGLER_FACTOR x the median of the finished ones (at least
        STRAGGLER_MIN_S) once half the first-round batches are answered: its unanswered
        sub-tasks go to their next owners too; the first answer wins."""
        if not query.durations or len(query.durations) * 2 < query.batches:
            return
        limit = max(STRAGGLER_MIN_S, STRAGGLER_FACTOR * statistics.median(query.durations))
        now = time.monotonic()
        for run in list(pending.values()):
            todo = [i for i in run.indices if i not in query.results and i not in query.duplicated]
            if not todo or now - run.started < limit or len(self._workers) < 2:
                continue
            query.duplicated.update(todo)
            metrics.worker_retries.labels(worker=run.worker, reason="straggler").inc(len(todo))
            log.info("query.straggler_reissued", worker=run.worker, subtasks=len(todo))
            submit(todo, skip=frozenset({run.worker}))

    def _all_lost(self, task: Any) -> ExecutionError:
        return ExecutionError(
            f"no bucket-owner worker left to run partition {describe(task)}; lost workers: "
            f"{', '.join(self.lost) or 'none recorded'}",
            partition=describe(task),
        )

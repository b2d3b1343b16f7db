"""Executors: where a plan's sub-tasks run. One seam, one method:

    Executor.map(fn, tasks, deadline) -> [fn(task) for task in tasks]   (results in task order)

- `inline`: in the calling thread, one after the other (debugging, profiling).
- `local` (default): a thread pool sized to os.cpu_count(). DuckDB and numpy release the GIL
  for the scan and the vectorised work, so threads give real parallelism without pickling.
- `ray` (ray_executor.py, registered when chosen): bucket-owner actors on a Ray cluster; the
  same method, since sub-tasks are pure functions of (kernel, params, immutable file list), so
  shipping them and retrying them elsewhere is safe.

Every executor gives each sub-task one retry; a second failure raises ExecutionError naming the
partition. Past the deadline, sub-tasks not started are cancelled, running ones are interrupted
(Deadline.cancel -> DuckDB interrupt / cooperative checks) and QueryTimeout is raised.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol, TypeVar

from eventlens.errors import ExecutionError, InvalidInput, QueryTimeout
from eventlens.observability.logging import get_logger
from eventlens.query import deadline as deadlines
from eventlens.query.deadline import Deadline, timeout_error, using

T = TypeVar("T")
R = TypeVar("R")
log = get_logger(__name__)


_WORKER: str | None = None


def set_worker(name: str) -> None:
    """Name this process's sub-task runner (a Ray bucket owner calls it when it starts)."""
    global _WORKER
    _WORKER = name


def current_worker() -> str:
    """Who runs the calling sub-task (explain's `worker`): the process's worker name, else
    `local:<thread name>`."""
    return _WORKER or f"local:{threading.current_thread().name}"


class Executor(Protocol):
    name: str

    def map(
        self, fn: Callable[[T], R], tasks: Sequence[T], deadline: Deadline | None
    ) -> list[R]: ...


def describe(task: Any) -> str:
    """How an error names a sub-task's partition (tasks define `describe()`)."""
    fn = getattr(task, "describe", None)
    return str(fn()) if callable(fn) else repr(task)


def attempt(fn: Callable[[T], R], task: T) -> R:
    """fn(task), retried once on failure; QueryTimeout is never retried.
    Raises ExecutionError naming the partition after the second failure."""
    try:
        return fn(task)
    except QueryTimeout:
        raise
    except Exception as first:
        log.warning("query.subtask_retry", partition=describe(task), error=repr(first))
        deadlines.check()
        try:
            return fn(task)
        except QueryTimeout:
            raise
        except Exception as exc:
            raise ExecutionError(
                f"query sub-task failed twice on partition {describe(task)}: {exc}",
                partition=describe(task),
            ) from exc


class InlineExecutor:
    """Runs sub-tasks in the calling thread, in order; checks the deadline between them."""

    name = "inline"

    def map(self, fn: Callable[[T], R], tasks: Sequence[T], deadline: Deadline | None) -> list[R]:
        deadline = deadline or deadlines.current()
        out = []
        for task in tasks:
            if deadline is not None:
                deadline.check()
                with using(deadline):
                    out.append(attempt(fn, task))
            else:
                out.append(attempt(fn, task))
        return out


class LocalExecutor:
    """A thread pool of `workers` threads (default os.cpu_count()), shared by all queries."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _get_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="eventlens-part")
            return self._pool

    def map(self, fn: Callable[[T], R], tasks: Sequence[T], deadline: Deadline | None) -> list[R]:
        deadline = deadline or deadlines.current()
        if deadline is not None:
            deadline.check()
        pool = self._get_pool()

        def run(task: T) -> R:
            if deadline is None:
                return attempt(fn, task)
            deadline.check()  # queued past the deadline: never start
            with using(deadline):
                return attempt(fn, task)

        futures: list[Future[R]] = [
            pool.submit(contextvars.copy_context().run, run, task) for task in tasks
        ]
        timeout = None if deadline is None else deadline.remaining()
        done, pending = wait(futures, timeout=timeout, return_when=FIRST_EXCEPTION)
        failed = [f for f in done if f.exception() is not None]
        if pending or failed:
            for f in pending:
                f.cancel()
            if deadline is not None and (pending and not failed):
                deadline.cancel()  # interrupt running sub-tasks (DuckDB interrupt, checks)
                raise timeout_error(deadline.timeout)
            error = failed[0].exception()
            assert error is not None
            raise error
        return [f.result() for f in futures]


_EXECUTORS: dict[str, Executor] = {}
_DEFAULT = "local"
EXECUTOR_NAMES = ("inline", "local", "ray")


def default_executor() -> str:
    """The executor `ParallelEngine()` uses when given none (set by `use_executor`)."""
    return _DEFAULT


def use_executor(name: str, **ray_options: Any) -> Executor:
    """Make `name` the default executor, building the Ray one (`ray_options`: RayExecutor's
    keyword arguments) on first use and connecting it now, so a bad address fails at start-up.
    InvalidInput for an unknown name; Unavailable when Ray is missing or unreachable."""
    global _DEFAULT
    if name == "ray" and "ray" not in _EXECUTORS:
        from eventlens.query.parallel.ray_executor import RayExecutor

        executor = RayExecutor(**ray_options)
        executor.start()
        register_executor(executor)
    found = get_executor(name)
    _DEFAULT = name
    return found


def register_executor(executor: Executor) -> None:
    """Add (or replace) an executor under `executor.name` (the Ray executor plugs in here)."""
    _EXECUTORS[executor.name] = executor


def get_executor(name: str = "local") -> Executor:
    """The executor registered as `name`; InvalidInput (field "executor") if unknown."""
    if "local" not in _EXECUTORS:
        register_executor(InlineExecutor())
        register_executor(LocalExecutor())
    try:
        return _EXECUTORS[name]
    except KeyError:
        raise InvalidInput(
            f"unknown executor {name!r} (available: {', '.join(sorted(_EXECUTORS))})",
            field="executor",
        ) from None

"""A bounded pool of daemon threads that runs queries under a deadline.

Why not `concurrent.futures.ThreadPoolExecutor`: its workers are joined at interpreter exit, so one
engine that ignores its deadline would hold up server shutdown. Here the workers are daemon threads
and the waiting side never blocks past the deadline:

- a task still queued at its deadline is cancelled and never starts;
- a task already running at its deadline gets `Deadline.cancel()` (cooperative engines stop at
  their next `check()`, interruptible ones through `on_cancel`), the caller gets `QueryTimeout` at
  once, and the task is counted as a *runaway* until its thread returns (gauge
  `eventlens_query_runaway`). The thread keeps its pool slot meanwhile, so the number of threads
  stays bounded; if every slot holds a runaway, new queries wait in the queue and time out at their
  own deadline (504) rather than hang.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from eventlens.errors import QueryTimeout, Unavailable
from eventlens.observability import metrics
from eventlens.observability.logging import get_logger
from eventlens.query.deadline import Deadline, timeout_error, using

T = TypeVar("T")
log = get_logger(__name__)


@dataclass(eq=False)
class _Task(Generic[T]):
    fn: Callable[[], T]
    deadline: Deadline
    context: contextvars.Context
    future: Future[T] = field(default_factory=Future)
    runaway_since: float | None = None


class QueryPool:
    """`workers` daemon threads fed by a queue of at most `max_queue` waiting tasks."""

    def __init__(self, workers: int = 2, max_queue: int = 64, name: str = "query") -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers = workers
        self._queue: queue.Queue[_Task[Any]] = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._runaways = 0
        for i in range(workers):
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True).start()

    @property
    def runaways(self) -> int:
        """Tasks past their deadline whose thread has not returned yet."""
        with self._lock:
            return self._runaways

    def submit(self, fn: Callable[[], T], deadline: Deadline) -> _Task[T]:
        """Queue `fn` (run with `deadline` as the current deadline). Raises `Unavailable` when
        the queue is full."""
        task = _Task(fn, deadline, contextvars.copy_context())
        try:
            self._queue.put_nowait(task)
        except queue.Full:
            raise Unavailable(
                f"too many queries waiting (more than {self._queue.maxsize}); retry shortly"
            ) from None
        return task

    def run(self, fn: Callable[[], T], deadline: Deadline) -> T:
        """Run `fn` in the pool; wait at most until the deadline (then raise `QueryTimeout`)."""
        task = self.submit(fn, deadline)
        try:
            return task.future.result(timeout=deadline.remaining())
        except FutureTimeout:
            raise self._give_up(task) from None

    async def run_async(self, fn: Callable[[], T], deadline: Deadline) -> T:
        """Like `run`, without blocking the event loop."""
        task = self.submit(fn, deadline)
        wrapped = asyncio.wrap_future(task.future)
        try:
            done, _ = await asyncio.wait({wrapped}, timeout=deadline.remaining())
        except asyncio.CancelledError:
            # The request went away (client disconnect, shutdown): stop the query too.
            if not task.future.cancel():
                deadline.cancel()
            raise
        if wrapped in done:
            return wrapped.result()
        error = self._give_up(task)
        # Detach: the runaway's late result or exception must not reach a future nobody awaits.
        wrapped.cancel()
        raise error

    def _give_up(self, task: _Task[Any]) -> QueryTimeout:
        deadline = task.deadline
        if not task.future.cancel():
            deadline.cancel()
            with self._lock:
                if not task.future.done():
                    task.runaway_since = time.monotonic()
                    self._runaways += 1
                    metrics.query_runaway.inc()
        metrics.query_timeouts.inc()
        return timeout_error(deadline.timeout)

    def _work(self) -> None:
        while True:
            task = self._queue.get()
            if not task.future.set_running_or_notify_cancel():
                continue  # timed out while queued: never started
            try:
                task.deadline.check()  # waited in the queue past its deadline
            except QueryTimeout as exc:
                task.future.set_exception(exc)
                continue
            try:
                result = task.context.run(self._call, task)
            except BaseException as exc:  # handed to the waiting side, whatever it is
                task.future.set_exception(exc)
            else:
                task.future.set_result(result)
            finally:
                self._settle(task)

    @staticmethod
    def _call(task: _Task[T]) -> T:
        with using(task.deadline):
            return task.fn()

    def _settle(self, task: _Task[Any]) -> None:
        with self._lock:
            since = task.runaway_since
            if since is None:
                return
            task.runaway_since = None
            self._runaways -= 1
        metrics.query_runaway.dec()
        log.warning("query.runaway_finished", overrun_s=round(time.monotonic() - since, 3))

"""Query deadlines: one `Deadline` per query, polled cooperatively by the engine.

The service sets the current deadline (a context variable) around `Engine.run`, so an engine can
call `check()` at natural checkpoints (per bucket, per partition, per N persons) without any change
to its signature. An engine that drives an interruptible library (e.g. DuckDB's
`connection.interrupt()`) registers it with `Deadline.on_cancel` so the query stops at the deadline
instead of at its next checkpoint.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from eventlens.errors import QueryTimeout

_CURRENT: ContextVar[Deadline | None] = ContextVar("eventlens_query_deadline", default=None)


class Deadline:
    """A point in `time.monotonic()` after which the query must stop, plus a cancel flag.

    `timeout` is in seconds. `check()` raises `QueryTimeout` once the time has passed or the
    query was cancelled (the client went away, or the service gave up waiting).
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.expires_at = time.monotonic() + timeout
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.expires_at - time.monotonic())

    @property
    def expired(self) -> bool:
        return self._cancelled.is_set() or time.monotonic() >= self.expires_at

    def check(self) -> None:
        """Raise `QueryTimeout` if the query should stop; cheap enough to call per row batch."""
        if self.expired:
            raise timeout_error(self.timeout)

    def cancel(self) -> None:
        """Mark the query cancelled and run the registered interrupt callbacks (once each)."""
        with self._lock:
            self._cancelled.set()
            callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            # An interrupt hook that fails must not mask the timeout itself.
            with contextlib.suppress(Exception):
                cb()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from another thread) when the query is cancelled; at once if it
        already is."""
        with self._lock:
            if not self._cancelled.is_set():
                self._callbacks.append(callback)
                return
        callback()


def timeout_error(timeout: float) -> QueryTimeout:
    """The one QueryTimeout message (504), wherever the deadline is noticed."""
    return QueryTimeout(
        f"query exceeded its deadline of {timeout:g} s; narrow the date range or raise"
        " `timeout` (up to the server's maximum)",
        timeout=timeout,
    )


def current() -> Deadline | None:
    """The deadline of the query running in this context, if any."""
    return _CURRENT.get()


def check() -> None:
    """`current().check()`, or nothing when no deadline is set (e.g. engine called directly)."""
    deadline = _CURRENT.get()
    if deadline is not None:
        deadline.check()


@contextmanager
def using(deadline: Deadline) -> Iterator[Deadline]:
    """Make `deadline` the current one for the duration of the block."""
    token = _CURRENT.set(deadline)
    try:
        yield deadline
    finally:
        _CURRENT.reset(token)

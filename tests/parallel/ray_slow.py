"""Slowed sub-tasks for the Ray tests, in a module of their own: the actors import it to run
them, and importing the test module itself (pytest, hypothesis, fixtures) would cost an actor
seconds, which the straggler rule would see as slowness."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from eventlens.query.parallel.executors import current_worker


def slowly(delay_s: float, fn: Callable[[Any], Any], task: Any) -> Any:
    """fn(task) after `delay_s` seconds."""
    time.sleep(delay_s)
    return fn(task)


def slow_on(worker: str, delay_s: float, fn: Callable[[Any], Any], task: Any) -> Any:
    """fn(task), `delay_s` seconds later when run by `worker`."""
    if current_worker() == worker:
        time.sleep(delay_s)
    return fn(task)

"""Candidate engines for the shadow tests: deliberately wrong ones, and badly behaved ones.

Each wraps the reference engine and changes exactly one thing, so the test knows which step,
bucket or cell must show up in the discrepancy record.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pyarrow as pa

from eventlens.query.normalise import NormalisedQuery
from eventlens.query.reference import ReferenceEngine

_REFERENCE = ReferenceEngine()


class ReferenceCandidate:
    """The reference engine under another name: a correct candidate."""

    name = "test-reference-candidate"

    def run(self, query: NormalisedQuery, snapshot: Any) -> Any:
        return _REFERENCE.run(query, snapshot)


class FunnelWindowOffByOneSecond:
    """Funnel window one second shorter than asked (a `<` where `<=` was meant)."""

    name = "test-wrong-funnel-window"

    def run(self, query: NormalisedQuery, snapshot: Any) -> Any:
        q = query.query
        units = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
        ff = q.funnelsFilter  # type: ignore[union-attr]
        seconds = ff.funnelWindowInterval * units[ff.funnelWindowIntervalUnit]
        wrong = ff.model_copy(
            update={"funnelWindowInterval": seconds - 1, "funnelWindowIntervalUnit": "second"}
        )
        return _REFERENCE.run(
            replace(query, query=q.model_copy(update={"funnelsFilter": wrong})), snapshot
        )


class DauPerDistinctId:
    """dau counted per distinct_id instead of per person."""

    name = "test-wrong-dau"

    def run(self, query: NormalisedQuery, snapshot: Any) -> Any:
        table = snapshot.read() if hasattr(snapshot, "read") else snapshot
        i = table.schema.get_field_index("person_id")
        table = table.set_column(i, table.schema.field(i), table.column("distinct_id"))
        return _REFERENCE.run(query, table)


class WeekStartsOnWrongDay:
    """Weeks start on Monday when the project says Sunday (and the other way round)."""

    name = "test-wrong-week-start"

    def run(self, query: NormalisedQuery, snapshot: Any) -> Any:
        return _REFERENCE.run(replace(query, week_start=1 - query.week_start), snapshot)


class Raises:
    name = "test-raises"

    def run(self, query: NormalisedQuery, snapshot: Any) -> Any:
        raise RuntimeError("candidate bug")


class Hangs:
    """Ignores its deadline and blocks until released (a non-cooperative hang)."""

    name = "test-hangs"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Semaphore(0)

    def run(self, query: NormalisedQuery, snapshot: Any) -> Any:
        self.started.release()
        self.release.wait(60)
        return _REFERENCE.run(query, snapshot)


class Slow:
    """Correct, but sleeps first."""

    name = "test-slow"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def run(self, query: NormalisedQuery, snapshot: Any) -> Any:
        time.sleep(self.seconds)
        return _REFERENCE.run(query, snapshot)


class Flaky:
    """A *primary* whose answer changes every run (to test the nondeterministic outcome)."""

    name = "test-flaky"

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def run(self, query: NormalisedQuery, snapshot: Any) -> Any:
        with self._lock:
            self.calls += 1
            n = self.calls
        result = _REFERENCE.run(query, snapshot)
        result[0]["data"][-1] += n
        return result


def as_table(snapshot: Any) -> pa.Table:
    return snapshot.read() if hasattr(snapshot, "read") else snapshot

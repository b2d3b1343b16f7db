"""QueryService in-process: deadlines (cooperative and not), bounded pool, validation."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from eventlens.config import Settings
from eventlens.errors import InvalidQuery, NotFound, QueryTimeout
from eventlens.observability import metrics
from eventlens.projects.store import SqliteMetadataStore
from eventlens.query import deadline as deadlines
from eventlens.query.registry import engine_names, register_engine
from eventlens.query.service import QueryService

QUERY: dict[str, Any] = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview"}],
    "dateRange": {"date_from": "-7d"},
}


def wait_until(cond: Any, limit: float = 20.0) -> bool:
    """Poll `cond` (generous limit: this checks progress, not speed)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return bool(cond())


class CooperativeEngine:
    """Loops until told to stop through the current deadline, like a well-behaved engine."""

    name = "test-cooperative"

    def __init__(self) -> None:
        self.stopped = threading.Event()

    def run(self, query: Any, snapshot: Any) -> Any:
        try:
            while True:
                deadlines.check()
                time.sleep(0.005)
        finally:
            self.stopped.set()


class StubbornEngine:
    """Ignores its deadline: blocks until the test releases it."""

    name = "test-stubborn"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def run(self, query: Any, snapshot: Any) -> Any:
        self.calls += 1
        self.release.wait(60)
        return []


class RecordingEngine:
    """Returns what it was given, and the deadline it runs under (the current one)."""

    name = "test-recording"

    def run(self, query: Any, snapshot: Any) -> Any:
        deadline = deadlines.current()
        assert deadline is not None
        return {
            "version": snapshot.version,
            "files": len(snapshot.files),
            "timeout": deadline.timeout,
        }


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[QueryService, int]]:
    settings = replace(Settings().with_data_dir(tmp_path), query_workers=1, query_max_timeout=10)
    store = SqliteMetadataStore(settings.meta_db)
    project = store.create_project("svc").project
    yield QueryService(settings, store), project.id
    store.close()


@pytest.fixture(autouse=True, scope="module")
def engines() -> None:

    engine_names()  # the built-in engines register first
    test_engines: tuple[Any, ...] = (CooperativeEngine(), StubbornEngine(), RecordingEngine())
    for engine in test_engines:
        register_engine(engine)


def _engine(name: str) -> Any:
    from eventlens.query.registry import get_engine

    return get_engine(name)


def test_missing_table_reads_as_empty_version_0_and_is_not_created(
    service: tuple[QueryService, int],
) -> None:
    svc, pid = service
    out = svc.run_sync(pid, QUERY, engine="test-recording", timeout=5)
    assert out.data_version == 0
    assert out.results == {"version": 0, "files": 0, "timeout": 5}
    assert out.engine == "test-recording" and out.kind == "TrendsQuery"
    assert len(out.fingerprint) == 64
    # cache_ms: the result cache served it (its computation included).
    assert set(out.timings) == {
        "parse_ms",
        "plan_ms",
        "queue_ms",
        "execute_ms",
        "cache_ms",
        "total_ms",
    }
    assert not svc.settings.event_table_dir(pid).exists()


def test_cooperative_engine_stops_at_the_deadline(service: tuple[QueryService, int]) -> None:
    svc, pid = service
    engine = _engine("test-cooperative")
    engine.stopped.clear()
    with pytest.raises(QueryTimeout, match=r"deadline of 0\.2 s"):
        svc.run_sync(pid, QUERY, engine="test-cooperative", timeout=0.2)
    assert engine.stopped.wait(20)
    assert wait_until(lambda: svc.pool.runaways == 0)


def test_stubborn_engine_is_a_counted_runaway_and_the_pool_stays_bounded(
    service: tuple[QueryService, int],
) -> None:
    svc, pid = service
    engine = _engine("test-stubborn")
    engine.release.clear()
    engine.calls = 0
    before = metrics.query_runaway._value.get()
    with pytest.raises(QueryTimeout):
        svc.run_sync(pid, QUERY, engine="test-stubborn", timeout=0.2)
    assert svc.pool.runaways == 1
    assert metrics.query_runaway._value.get() == before + 1
    # The only worker is held by the runaway: the next query waits in the queue, times out
    # there, and never starts (so no second thread and no second call).
    with pytest.raises(QueryTimeout):
        svc.run_sync(pid, QUERY, engine="test-stubborn", timeout=0.2)
    engine.release.set()
    assert wait_until(lambda: svc.pool.runaways == 0)
    assert metrics.query_runaway._value.get() == before
    assert engine.calls == 1
    # The slot is free again.
    assert svc.run_sync(pid, QUERY, engine="test-recording").data_version == 0


@pytest.mark.parametrize("timeout", [0, -1, 10.5, 1e9])
def test_timeout_outside_limits_is_400(service: tuple[QueryService, int], timeout: float) -> None:
    svc, pid = service
    with pytest.raises(InvalidQuery) as err:
        svc.run_sync(pid, QUERY, engine="test-recording", timeout=timeout)
    assert err.value.field == "timeout" and "<= 10 seconds" in err.value.message


def test_default_timeout_is_the_setting(service: tuple[QueryService, int]) -> None:
    svc, pid = service
    assert svc.run_sync(pid, QUERY, engine="test-recording").results["timeout"] == 30


def test_unknown_engine_names_the_known_ones(service: tuple[QueryService, int]) -> None:
    svc, pid = service
    with pytest.raises(InvalidQuery) as err:
        svc.run_sync(pid, QUERY, engine="nope")
    assert err.value.field == "engine" and "reference" in err.value.message


def test_unknown_project_and_bad_query(service: tuple[QueryService, int]) -> None:
    svc, pid = service
    with pytest.raises(NotFound):
        svc.run_sync(pid + 1, QUERY, engine="test-recording")
    with pytest.raises(InvalidQuery) as err:
        svc.run_sync(pid, {**QUERY, "colour": "red"}, engine="test-recording")
    assert err.value.field == "colour"


def test_deadline_cancel_runs_interrupt_hooks_once() -> None:
    d = deadlines.Deadline(60)
    calls: list[str] = []
    d.on_cancel(lambda: calls.append("a"))

    def boom() -> None:
        raise RuntimeError("hook failed")

    d.on_cancel(boom)  # a failing hook must not stop the others or mask the timeout
    d.on_cancel(lambda: calls.append("b"))
    assert not d.expired and 59 < d.remaining() <= 60
    d.check()
    d.cancel()
    d.cancel()
    assert calls == ["a", "b"] and d.expired
    d.on_cancel(lambda: calls.append("late"))  # registered after cancel: runs at once
    assert calls == ["a", "b", "late"]
    with pytest.raises(QueryTimeout):
        d.check()


def test_current_deadline_is_set_only_inside_the_query() -> None:
    assert deadlines.current() is None
    deadlines.check()  # no deadline: nothing to do
    d = deadlines.Deadline(60)
    with deadlines.using(d):
        assert deadlines.current() is d
    assert deadlines.current() is None

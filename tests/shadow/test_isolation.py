"""A candidate that raises, hangs or is slow never changes the primary's answer or holds it up;
a full candidate pool sheds (counted) instead of queueing without bound."""

from __future__ import annotations

import time
from typing import Any

import pytest

from eventlens.errors import ExecutionError
from eventlens.observability import metrics
from eventlens.query.service import QueryService
from eventlens.query.testing import run_on_events
from eventlens.shadow.wiring import shadow_of
from tests.shadow.conftest import Shadowed, day
from tests.shadow.engines import Flaky, Hangs, Raises, ReferenceCandidate

QUERY = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview"}],
    "interval": "day",
    "dateRange": {"date_from": "2026-11-01", "date_to": "2026-11-07"},
}


def _seed(env: Shadowed) -> Any:
    env.append(
        [
            {
                "event": "$pageview",
                "distinct_id": f"u{i}",
                "timestamp": day(f"2026-11-0{1 + i % 5}"),
            }
            for i in range(20)
        ]
    )
    service = QueryService(env.settings, env.metadata)  # no shadow: the expected answer
    assert shadow_of(service) is None
    return service.run_sync(env.project.id, QUERY, engine="reference").results


def _outcomes(service: QueryService) -> dict[str, int]:
    assert shadow_of(service) is not None
    shadow_of(service).flush()
    out: dict[str, int] = {}
    for row in shadow_of(service).store.comparisons():
        out[row["outcome"]] = out.get(row["outcome"], 0) + row["n"]
    return out


def _wait_for(predicate: Any, what: str, seconds: float = 20.0) -> None:
    end = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < end, f"gave up waiting for {what}"
        time.sleep(0.02)


def test_candidate_that_raises(shadowed: Shadowed) -> None:
    expected = _seed(shadowed)
    service = shadowed.service(Raises())
    assert service.run_sync(shadowed.project.id, QUERY, engine="reference").results == expected
    assert shadow_of(service) is not None and shadow_of(service).drain(30)
    [record] = shadow_of(service).store.discrepancies()
    assert record.outcome == "candidate_error"
    assert record.error is not None and "RuntimeError: candidate bug" in record.error
    assert record.primary_result == expected and record.candidate_result is None


def test_candidate_that_hangs_then_pool_sheds(shadowed: Shadowed) -> None:
    expected = _seed(shadowed)
    hang = Hangs()
    service = shadowed.service(hang, shadow_timeout=0.3, shadow_workers=1, shadow_queue=2)
    runner = shadow_of(service)
    assert runner is not None
    shed_before = metrics.shadow_queries.labels("shed")._value.get()
    try:
        # The first candidate blocks its only worker past its deadline...
        assert service.run_sync(shadowed.project.id, QUERY, engine="reference").results == expected
        assert hang.started.acquire(timeout=20)
        _wait_for(lambda: _outcomes(service).get("candidate_timeout") == 1, "the timeout")
        # ...so the next 2 wait in the queue and the other 8 are shed, each answered correctly.
        for _ in range(10):
            assert (
                service.run_sync(shadowed.project.id, QUERY, engine="reference").results == expected
            )
        assert runner._queue.qsize() == 2  # bounded: no more than shadow_queue waiting
        assert _outcomes(service)["shed"] == 8
        assert metrics.shadow_queries.labels("shed")._value.get() - shed_before == 8
    finally:
        hang.release.set()
    assert runner.drain(30)
    outcomes = _outcomes(service)
    assert outcomes == {"candidate_timeout": 1, "shed": 8, "match": 2}
    [record] = runner.store.discrepancies()
    assert record.outcome == "candidate_timeout" and "deadline" in (record.error or "")


def test_primary_does_not_wait_for_a_slow_candidate(shadowed: Shadowed) -> None:
    expected = _seed(shadowed)
    gate = Hangs()  # "slow": runs until the test lets it finish, well inside its deadline
    service = shadowed.service(gate, shadow_timeout=60)
    assert shadow_of(service) is not None
    try:
        # run_sync returns while the candidate is still running: it was never waited for.
        assert service.run_sync(shadowed.project.id, QUERY, engine="reference").results == expected
        assert gate.started.acquire(timeout=20)
        assert _outcomes(service) == {}
    finally:
        gate.release.set()
    assert shadow_of(service).drain(30)
    assert _outcomes(service) == {"match": 1}


def test_nondeterministic_primary_is_not_blamed_on_the_candidate(shadowed: Shadowed) -> None:
    _seed(shadowed)
    service = shadowed.service(ReferenceCandidate(), primary=Flaky())
    service.run_sync(shadowed.project.id, QUERY, engine="test-flaky")
    assert shadow_of(service) is not None and shadow_of(service).drain(30)
    [record] = shadow_of(service).store.discrepancies()
    assert record.outcome == "nondeterministic"
    assert record.diff[0]["path"] == "series[$pageview].data[2026-11-07]"


def test_primary_error_is_counted_and_other_engines_are_not_shadowed(shadowed: Shadowed) -> None:
    _seed(shadowed)
    service = shadowed.service(ReferenceCandidate(), primary=Raises())
    with pytest.raises(ExecutionError):
        service.run_sync(shadowed.project.id, QUERY, engine="test-raises")
    service.run_sync(shadowed.project.id, QUERY, engine="reference")  # not the primary
    assert shadow_of(service) is not None and shadow_of(service).drain(30)
    assert _outcomes(service) == {"primary_error": 1}


def test_sampling_rate_and_per_project_override(shadowed: Shadowed) -> None:
    _seed(shadowed)
    off = shadowed.service(
        ReferenceCandidate(),
        shadow_sample=1.0,
        shadow_sample_projects=f"{shadowed.project.id}:0%",
    )
    for _ in range(3):
        off.run_sync(shadowed.project.id, QUERY, engine="reference")
    assert shadow_of(off) is not None and shadow_of(off).drain(30)
    assert _outcomes(off) == {}
    assert shadow_of(off).wants(shadowed.project.id + 1, "reference")  # other projects: 100%
    half = shadowed.service(ReferenceCandidate(), shadow_sample=0.5)
    assert shadow_of(half) is not None
    drawn = sum(shadow_of(half).wants(shadowed.project.id, "reference") for _ in range(4000))
    assert 1500 < drawn < 2500  # ~2000; outside this is a broken draw, not bad luck


def test_same_results_as_run_on_events_helper() -> None:
    # The wrong-engine fixtures lean on the reference engine; check it agrees with the helper.
    events = [{"event": "$pageview", "distinct_id": "a", "timestamp": "2026-11-02T10:00:00Z"}]
    result = run_on_events(events, QUERY, now="2026-11-10T00:00:00Z")
    assert result[0]["data"][1] == 1

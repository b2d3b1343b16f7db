"""The result cache's refresh modes, single flight and failure handling, over a real event
table and the real parallel engine (tests/cache/support.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from eventlens.cache import Mode, mode_of
from eventlens.errors import ExecutionError
from eventlens.query import normalise, parse_query
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.reference import ReferenceEngine
from eventlens.query.testing import event_rows, parse_instant
from eventlens.storage.event_table import EventTable
from tests.cache.support import Harness, jsonable
from tests.parallel.strategies import person_uuid

NOW = "2024-04-03T12:00:00Z"
TRENDS = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}],
    "dateRange": {"date_from": "2024-03-01", "date_to": "2024-03-10"},
}


def _events(day: int, persons: range, event: str = "$pageview") -> list[dict[str, Any]]:
    return [
        {
            "event": event,
            "distinct_id": f"d{p}",
            "person_id": person_uuid(p),
            "timestamp": f"2024-03-{day:02d}T12:00:00Z",
        }
        for p in persons
    ]


@pytest.fixture
def table(tmp_path: Path) -> Iterator[EventTable]:
    t = EventTable.open_or_create(tmp_path / "events", buckets=4)
    t.append(event_rows(_events(2, range(20)) + _events(5, range(10))), log_offset=None)
    yield t


def _nq(query: dict[str, Any] = TRENDS) -> NormalisedQuery:
    return normalise(parse_query(query), timezone="UTC", week_start=0, now=parse_instant(NOW))


def _reference(nq: NormalisedQuery, table: EventTable) -> Any:
    return jsonable(ReferenceEngine().run(nq, table.snapshot()))


def test_blocking_computes_once_then_hits_until_a_commit(table: EventTable) -> None:
    h, nq = Harness(), _nq()
    first = h.serve("k", nq, table.snapshot())
    assert (first.result, first.is_cached, h.computations) == ("miss", False, 1)
    second = h.serve("k", nq, table.snapshot())
    assert (second.result, second.is_cached, h.computations) == ("hit", True, 1)
    assert second.answer == first.answer and second.answer is not None
    assert second.answer.results == _reference(nq, table)
    table.append(event_rows(_events(3, range(5, 8))), log_offset=None)
    third = h.serve("k", nq, table.snapshot())
    assert third.result in ("miss", "incremental") and h.computations == 2
    assert third.answer is not None and third.answer.data_version == table.version()
    assert third.answer.results == _reference(nq, table)


def test_a_commit_outside_the_range_recomputes_no_sub_task(table: EventTable) -> None:
    # Druid-style: the late commit's files are pruned by time, so every sub-task has the same
    # files as before and reuses its partial.
    h, nq = Harness(), _nq()
    h.serve("k", nq, table.snapshot())
    table.append(event_rows(_events(25, range(20))), log_offset=None)
    served = h.cache.serve(h.request("k", nq, table.snapshot(), explain=True))
    assert served.result == "incremental" and served.computed == 0 and served.reused >= 1
    assert served.explain is not None and served.explain["rows_scanned"] == 0
    assert served.answer is not None and served.answer.results == _reference(nq, table)


def test_a_commit_to_one_bucket_recomputes_only_that_bucket(table: EventTable) -> None:
    h, nq = Harness(), _nq()
    h.serve("k", nq, table.snapshot())
    tasks = table.snapshot().buckets
    table.append(event_rows(_events(4, range(3, 4))), log_offset=None)  # one person, one bucket
    served = h.cache.serve(h.request("k", nq, table.snapshot(), explain=True))
    # The changed bucket's sub-task is brought forward by a per-person delta (delta.py): only
    # the one person with new events is recomputed, nothing from scratch.
    assert served.result == "incremental" and served.computed == 0 and served.delta == 1
    assert served.reused == len({f.bucket for f in table.snapshot().files}) - 1 >= 1 <= tasks
    runs = served.explain["subtask_runs"] if served.explain else []
    assert [r["source"] for r in runs if r["source"] != "partial-cache"] == ["delta"]
    assert served.explain is not None and served.explain["persons_recomputed"] == 1
    assert served.answer is not None and served.answer.results == _reference(nq, table)


def test_force_blocking_computes_from_scratch(table: EventTable) -> None:
    h, nq = Harness(), _nq()
    h.serve("k", nq, table.snapshot())
    served = h.serve("k", nq, table.snapshot(), Mode.FORCE_BLOCKING)
    assert served.result == "miss" and served.reused == 0 and served.computed >= 1
    assert h.computations == 2


def test_force_cache_never_computes(table: EventTable) -> None:
    h, nq = Harness(), _nq()
    miss = h.serve("k", nq, table.snapshot(), Mode.FORCE_CACHE)
    assert miss.answer is None and miss.result == "miss" and h.computations == 0
    h.serve("k", nq, table.snapshot())
    table.append(event_rows(_events(3, range(2))), log_offset=None)
    stale = h.serve("k", nq, table.snapshot(), Mode.FORCE_CACHE)
    assert stale.result == "stale" and stale.stale and h.computations == 1
    assert stale.envelope()["versions_behind"] == 1


def _wait_complete(h: Harness, status_id: str) -> Any:
    for _ in range(500):
        status = h.cache.status(status_id)
        if status is not None and status.complete:
            return status
        time.sleep(0.01)
    raise AssertionError("the background refresh did not complete")


def test_async_serves_the_last_answer_and_refreshes_in_the_background(table: EventTable) -> None:
    h, nq = Harness(), _nq()
    cold = h.serve("k", nq, table.snapshot(), Mode.ASYNC)
    assert cold.answer is None and cold.status is not None  # nothing yet: poll the status
    done = _wait_complete(h, cold.status.id)
    assert not done.error and done.results == _reference(nq, table)
    assert h.serve("k", nq, table.snapshot(), Mode.ASYNC).result == "hit"
    before = table.version()
    table.append(event_rows(_events(3, range(4))), log_offset=None)
    stale = h.serve("k", nq, table.snapshot(), Mode.ASYNC)
    assert stale.result == "stale" and stale.answer is not None
    assert stale.answer.data_version == before and stale.status is not None
    refreshed = _wait_complete(h, stale.status.id)
    assert refreshed.data_version == table.version()
    assert refreshed.results == _reference(nq, table)
    fresh = h.serve("k", nq, table.snapshot(), Mode.ASYNC)
    assert fresh.result == "hit" and h.computations == 2


def test_concurrent_background_refreshes_are_deduplicated(table: EventTable) -> None:
    h, nq = Harness(delay_s=0.3), _nq()
    statuses = [h.serve("k", nq, table.snapshot(), Mode.ASYNC).status for _ in range(5)]
    ids = {s.id for s in statuses if s is not None}
    assert len(ids) == 1
    _wait_complete(h, ids.pop())
    assert h.computations == 1


def test_lazy_async_serves_a_young_answer_without_refreshing(table: EventTable) -> None:
    h, nq = Harness(), _nq()
    h.serve("k", nq, table.snapshot())
    table.append(event_rows(_events(3, range(2))), log_offset=None)
    lazy = h.serve("k", nq, table.snapshot(), Mode.LAZY_ASYNC)
    assert lazy.result == "stale" and lazy.status is None and h.computations == 1
    h.cache.lazy_seconds = 0.0  # now every answer is "old"
    old = h.serve("k", nq, table.snapshot(), Mode.LAZY_ASYNC)
    assert old.status is not None
    assert _wait_complete(h, old.status.id).data_version == table.version()


def test_twenty_concurrent_identical_requests_compute_once(table: EventTable) -> None:
    h, nq = Harness(delay_s=0.2), _nq()
    snapshot = table.snapshot()
    with ThreadPoolExecutor(20) as pool:
        served = list(pool.map(lambda _: h.serve("k", nq, snapshot), range(20)))
    assert h.computations == 1
    assert sorted({s.result for s in served}) == ["coalesced", "miss"]
    assert len({repr(s.answer) for s in served}) == 1


def test_a_failed_refresh_keeps_the_last_good_answer_and_says_so(table: EventTable) -> None:
    h, nq = Harness(), _nq()
    good = h.serve("k", nq, table.snapshot())
    table.append(event_rows(_events(3, range(2))), log_offset=None)
    h.fail = ExecutionError("query sub-task failed twice on partition bucket(s) [1]")
    served = h.serve("k", nq, table.snapshot())
    assert served.result == "stale" and served.answer == good.answer
    assert served.status is not None and served.status.error
    assert "last good answer" in (served.status.error_message or "")
    # In the background too: the status says it failed, the answer stays.
    status = h.serve("k", nq, table.snapshot(), Mode.ASYNC).status
    assert status is not None and _wait_complete(h, status.id).error
    assert h.serve("k", nq, table.snapshot(), Mode.FORCE_CACHE).answer == good.answer
    # Without an earlier answer the error is the caller's.
    with pytest.raises(ExecutionError):
        h.serve("other", nq, table.snapshot())


def test_presentation_fields_share_one_answer_and_answer_fields_do_not() -> None:
    plain = _nq()
    drawn = _nq({**TRENDS, "trendsFilter": {"showLegend": True, "decimalPlaces": 2}})
    other = _nq({**TRENDS, "interval": "week"})
    assert plain.fingerprint != drawn.fingerprint  # the raw query differs ...
    assert plain.answer_fingerprint() == drawn.answer_fingerprint()  # ... its answer does not
    assert plain.answer_fingerprint() != other.answer_fingerprint()


def test_legacy_booleans_are_posthogs() -> None:
    assert mode_of(True) is Mode.FORCE_BLOCKING and mode_of(False) is Mode.FORCE_CACHE
    assert mode_of(None) is Mode.BLOCKING and mode_of("lazy_async") is Mode.LAZY_ASYNC
    with pytest.raises(ValueError, match="refresh must be one of"):
        mode_of("sometimes")

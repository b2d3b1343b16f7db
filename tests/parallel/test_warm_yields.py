"""The first query after a start is answered ahead of the background warm-up: the warm-up
yields between buckets while a query runs, so the query builds the buckets it needs itself
instead of queueing behind every bucket of every project. Asserted on the order of builds."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from eventlens.config import Settings
from eventlens.projects.store import MetadataStore
from eventlens.query import normalise, parse_query
from eventlens.query.parallel import ParallelEngine, resident, resident_cache
from eventlens.query.warmup import warm_resident
from eventlens.storage import tables
from tests.parallel.support import seed_pageviews


@dataclass
class _Project:
    id: int


class _Projects:
    """The one call warm_resident makes of the metadata store."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids

    def list_projects(self) -> list[_Project]:
        return [_Project(i) for i in self.ids]


def test_a_query_right_after_start_is_not_queued_behind_the_warm_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings().with_data_dir(tmp_path)
    seed_pageviews(settings.event_table_dir(1), 40, (1, 2, 3))  # 4 buckets
    monkeypatch.setattr(resident_cache, "CACHE", resident_cache.ResidentCache())
    events: list[tuple[str, Any]] = []
    lock = threading.Lock()
    warm_building = threading.Event()
    query_running = threading.Event()
    real_build = resident.build_bucket

    def build(paths: Any) -> Any:
        warm = threading.current_thread().name == "warm"
        if warm and not warm_building.is_set():
            warm_building.set()
            # The query arrives while the warm-up is inside its first bucket.
            assert query_running.wait(30)
        bucket = real_build(paths)
        with lock:
            events.append(("warm" if warm else "query", tuple(paths)))
        return bucket

    monkeypatch.setattr(resident_cache, "build_bucket", build)
    stop = threading.Event()
    warming = threading.Thread(
        target=warm_resident,
        args=(settings, cast(MetadataStore, _Projects([1])), stop),
        name="warm",
    )
    warming.start()
    assert warm_building.wait(30)
    nq = normalise(
        parse_query({"kind": "TrendsQuery", "series": [{"event": "$pageview"}]}),
        timezone="UTC",
        week_start=0,
        now=datetime.now(UTC),
    )
    snapshot = tables.snapshot(settings, 1)
    result: list[Any] = []
    querying = threading.Thread(
        target=lambda: result.append(ParallelEngine("inline").run(nq, snapshot)), name="query"
    )
    querying.start()
    while resident_cache.DEMAND.running == 0 and querying.is_alive():
        querying.join(0.01)
    query_running.set()
    querying.join(60)
    with lock:
        events.append(("query done", None))
    warming.join(60)
    assert not warming.is_alive() and result
    assert sum(row["count"] for row in result[0]) == 120
    done = events.index(("query done", None))
    before = events[:done]
    # The warm-up finished only the bucket it was building; the query built the other three.
    assert [who for who, _ in before].count("warm") == 1
    assert [who for who, _ in before].count("query") == 3
    # Nothing was built twice: after the query, the warm-up found every bucket resident.
    assert len({paths for _, paths in events if paths is not None}) == 4
    assert len(events) == 5

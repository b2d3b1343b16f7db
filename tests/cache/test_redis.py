"""The Redis backend: two real EventLens servers over one event table share answers and single
flight through one real redis-server; Redis down degrades to computing, never to errors."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventlens.cache import MemoryPartials, ResultCache
from eventlens.cache.redis_backend import RedisBackend
from eventlens.config import Settings
from tests.cache.support import Harness
from tests.cache.test_modes import TRENDS, _nq, _reference
from tests.parallel.support import seed_pageviews
from tests.support.server import ServerProcess, create_project, free_port

QUERY = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}],
    "dateRange": {"date_from": "-14d"},
}


def _computed(server: ServerProcess) -> int:
    """Queries this server computed (miss + incremental), from its /metrics."""
    text = httpx.get(server.url + "/metrics", timeout=10).text
    total = 0.0
    for result in ("miss", "incremental"):
        found = re.search(
            rf'^eventlens_query_cache_requests_total{{result="{result}"}} (\S+)$', text, re.M
        )
        total += float(found.group(1)) if found else 0.0
    return int(total)


def _post(server: ServerProcess, project: dict[str, Any], body: dict[str, Any]) -> Any:
    r = httpx.post(
        f"{server.url}/api/projects/{project['id']}/query",
        json=body,
        headers={"Authorization": f"Bearer {project['api_key']}"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def two_servers(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[tuple[Any, ServerProcess, ServerProcess]]:
    """Servers A and B over one project's event table (B's data dir links A's projects and has
    a copy of its metadata), both with cache_backend = redis at `redis_url`."""
    tmp_path = tmp_path_factory.mktemp("two-servers")
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    project = create_project(a_dir)
    seed_pageviews(
        Settings(data_dir=a_dir).event_table_dir(int(project["id"])), 40, (0, 1, 2, 3, 5, 8)
    )
    b_dir.mkdir()
    for name in ("meta.db", "meta.db-wal", "meta.db-shm"):
        if (a_dir / name).exists():
            shutil.copy(a_dir / name, b_dir / name)
    (b_dir / "projects").symlink_to(a_dir / "projects")
    env = {"EVENTLENS_CACHE_BACKEND": "redis", "EVENTLENS_CACHE_REDIS_URL": redis_url}
    env["EVENTLENS_QUERY_WARM"] = "0"
    a = ServerProcess(a_dir, env=dict(env)).start()
    try:
        b = ServerProcess(b_dir, env=dict(env)).start()
        try:
            yield project, a, b
        finally:
            b.stop()
    finally:
        a.stop()


def test_the_second_server_serves_the_first_servers_answer(
    two_servers: tuple[Any, ServerProcess, ServerProcess],
) -> None:
    project, a, b = two_servers
    before_a, before_b = _computed(a), _computed(b)
    first = _post(a, project, {"query": QUERY})
    assert first["cache"]["result"] == "miss" and first["is_cached"] is False
    second = _post(b, project, {"query": QUERY})
    assert second["cache"]["result"] == "hit" and second["is_cached"] is True
    assert second["results"] == first["results"] and second["cache_key"] == first["cache_key"]
    assert second["data_version"] == first["data_version"] == second["current_data_version"]
    assert (_computed(a) - before_a, _computed(b) - before_b) == (1, 0)


def test_twenty_concurrent_cold_requests_across_both_servers_compute_once(
    two_servers: tuple[Any, ServerProcess, ServerProcess],
) -> None:
    project, a, b = two_servers
    before = _computed(a) + _computed(b)
    query = {**QUERY, "breakdownFilter": {"breakdown": "$browser"}}  # cold: never asked before
    with ThreadPoolExecutor(20) as pool:
        answers = list(
            pool.map(lambda i: _post((a, b)[i % 2], project, {"query": query}), range(20))
        )
    assert _computed(a) + _computed(b) - before == 1
    assert len({repr(x["results"]) for x in answers}) == 1
    results = sorted(x["cache"]["result"] for x in answers)
    assert results.count("miss") == 1 and set(results) <= {"miss", "coalesced", "hit"}


def test_a_crashed_lease_holder_blocks_nobody(tmp_path: Path, redis_url: str) -> None:
    from eventlens.storage.event_table import EventTable

    seed_pageviews(tmp_path / "events", 10, (1, 2))
    snapshot = EventTable.open_or_create(tmp_path / "events").snapshot()
    nq = _nq()
    backend = RedisBackend(redis_url)
    # A holder that died mid-computation: its lease stays until it lapses (0.3 s).
    assert backend.acquire(f"k@{snapshot.version}", "dead-owner", 0.3)
    h = Harness(cache=ResultCache(backend, MemoryPartials(1 << 20), lease_seconds=0.3))
    started = time.monotonic()
    served = h.serve("k", nq, snapshot)
    assert served.result == "miss" and h.computations == 1
    assert 0.2 <= time.monotonic() - started < 5


def test_redis_down_degrades_to_computing(tmp_path: Path) -> None:
    from eventlens.storage.event_table import EventTable

    seed_pageviews(tmp_path / "events", 10, (1, 2))
    table = EventTable.open_or_create(tmp_path / "events")
    nq = _nq(TRENDS)
    dead = RedisBackend(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)
    h = Harness(cache=ResultCache(dead, MemoryPartials(1 << 20)))
    for _ in range(3):
        served = h.serve("k", nq, table.snapshot())
        assert served.answer is not None and served.result in ("miss", "incremental")
        assert served.answer.results == _reference(nq, table)
    assert h.computations == 3 and dead.down

"""The query deadline through a real HTTP server (uvicorn on loopback, in this process so that
the test can register an engine that ignores its deadline)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from eventlens.config import Settings
from eventlens.projects.store import SqliteMetadataStore
from eventlens.query.registry import engine_names, register_engine
from eventlens.web.app import create_app
from tests.support.server import free_port

QUERY: dict[str, Any] = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview"}],
}


class StubbornEngine:
    """Never looks at its deadline; blocks until released."""

    name = "test-http-stubborn"

    def __init__(self) -> None:
        self.release = threading.Event()

    def run(self, query: Any, snapshot: Any) -> Any:
        self.release.wait(60)
        return [{"late": True}]


ENGINE = StubbornEngine()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, int]]:
    engine_names()  # built-in engines first
    register_engine(ENGINE)
    data_dir: Path = tmp_path_factory.mktemp("deadline")
    settings = replace(Settings().with_data_dir(data_dir), query_workers=2)
    store = SqliteMetadataStore(settings.meta_db)
    created = store.create_project("slow")
    store.close()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_config=None, access_log=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    end = time.monotonic() + 30
    while not server.started and time.monotonic() < end:
        time.sleep(0.02)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}", created.api_key, created.project.id
    finally:
        ENGINE.release.set()
        server.should_exit = True
        thread.join(30)


def _runaway(metrics_text: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith("eventlens_query_runaway "):
            return float(line.split()[1])
    raise AssertionError("eventlens_query_runaway missing from /metrics")


def test_deadline_answers_504_even_if_the_engine_never_stops(live: tuple[str, str, int]) -> None:
    url, key, pid = live
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        r = c.post(
            f"/api/projects/{pid}/query",
            json={"query": QUERY, "engine": ENGINE.name, "timeout": 0.3},
        )
        assert r.status_code == 504, r.text
        assert r.json() == {
            "type": "QueryTimeout",
            "detail": "query exceeded its deadline of 0.3 s; narrow the date range or raise"
            " `timeout` (up to the server's maximum)",
            "timeout": 0.3,
        }
        # The runaway is accounted for while it holds its slot ...
        assert _runaway(c.get("/metrics").text) == 1
        # ... the other slot still answers ...
        ok = c.post(f"/api/projects/{pid}/query", json={"query": QUERY})
        assert ok.status_code == 200 and ok.json()["data_version"] == 0
        # ... and once the engine returns, its late result is dropped and the slot is back.
        ENGINE.release.set()
        end = time.monotonic() + 20
        while _runaway(c.get("/metrics").text) != 0 and time.monotonic() < end:
            time.sleep(0.02)
        assert _runaway(c.get("/metrics").text) == 0

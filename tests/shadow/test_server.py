"""Shadow mode in a real server: turned on by environment, answers unchanged, the report endpoint
scoped to the caller's API key, metrics exported."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventlens.query.service import DEFAULT_ENGINE
from tests.api.conftest import append_events
from tests.support.server import ServerProcess, create_project

QUERY = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("shadow") / "data"
    a, b = create_project(data_dir, "alpha"), create_project(data_dir, "bravo")
    now = datetime.now(UTC) - timedelta(hours=1)
    for p in (a, b):
        append_events(
            data_dir,
            int(p["id"]),
            [{"event": "$pageview", "distinct_id": f"u{i}", "timestamp": now} for i in range(3)],
        )
    # After a cut-over: the default engine serves, the old one (reference) keeps checking it.
    # Cache off: shadow mode compares computations, and these tests count one per query.
    env = {
        "EVENTLENS_SHADOW_CANDIDATE": "reference",
        "EVENTLENS_SHADOW_SAMPLE": "100%",
        "EVENTLENS_CACHE_BACKEND": "off",
    }
    server = ServerProcess(data_dir, env=env).start()
    try:
        yield {"server": server, "a": a, "b": b, "data_dir": data_dir}
    finally:
        server.stop()


def _client(d: dict[str, Any], key: str | None) -> httpx.Client:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return httpx.Client(base_url=d["server"].url, headers=headers, timeout=60)


def _report_when(client: httpx.Client, compared: int) -> dict[str, Any]:
    end = time.monotonic() + 30
    while True:
        report: dict[str, Any] = client.get("/api/shadow/report").json()
        if report["compared"] >= compared or time.monotonic() > end:
            return report
        time.sleep(0.1)


def test_answers_report_scope_and_metrics(deployment: dict[str, Any]) -> None:
    a, b = deployment["a"], deployment["b"]
    with _client(deployment, a["api_key"]) as ca, _client(deployment, b["api_key"]) as cb:
        for _ in range(2):
            r = ca.post(f"/api/projects/{a['id']}/query", json={"query": QUERY})
            assert r.status_code == 200 and r.json()["results"][0]["count"] == 3
        assert cb.post(f"/api/projects/{b['id']}/query", json={"query": QUERY}).status_code == 200

        report_a = _report_when(ca, 2)
        report_b = _report_when(cb, 1)
        assert report_a["compared"] == 2 and report_a["outcomes"]["match"] == 2
        assert report_b["compared"] == 1  # only bravo's queries through bravo's key
        assert report_a["primary"] == DEFAULT_ENGINE and report_a["candidate"] == "reference"
        assert report_a["verdict"] == "not ready"  # 2 queries, 0 days: the default policy
        assert report_a["latency_ms"]["candidate"]["p50"] is not None

        bad = ca.get("/api/shadow/report", params={"since": "a while"})
        assert bad.status_code == 400 and "since" in bad.text
    with _client(deployment, None) as anon:
        assert anon.get("/api/shadow/report").status_code == 401
    metrics = httpx.get(deployment["server"].url + "/metrics").text
    assert 'eventlens_shadow_queries_total{outcome="match"} 3.0' in metrics
    assert "eventlens_shadow_engine_seconds_bucket" in metrics


def test_serve_rejects_bad_shadow_flags(tmp_path: Path) -> None:
    def serve(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "eventlens", "serve", "--data-dir", str(tmp_path), *flags],
            capture_output=True,
            text=True,
            timeout=60,
        )

    out = serve("--shadow-candidate", "reference", "--shadow-sample", "150%")
    assert out.returncode == 2 and "outside 0-1" in out.stderr
    out = serve("--shadow-candidate", "no-such-engine")
    assert out.returncode == 2 and "no-such-engine" in out.stderr

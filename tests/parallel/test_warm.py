"""Warm-up at server start: a real `eventlens serve` over a project that already has events
reads them into resident buckets in the background, before any query asks (the metric shows
it), with the properties recent queries used (from the query log) decoded too, and a query then
finds every bucket in memory."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from eventlens.config import Settings
from tests.parallel.support import seed_pageviews
from tests.support.server import ServerProcess


def _resident_bytes(server: ServerProcess) -> float:
    text = httpx.get(server.url + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("eventlens_query_resident_bytes "):
            return float(line.split()[1])
    raise AssertionError("eventlens_query_resident_bytes is not exported")


def _seed(data_dir: Path, project_id: int) -> None:
    seed_pageviews(Settings().with_data_dir(data_dir).event_table_dir(project_id), 20, (1, 2, 3))


def _explain(server: ServerProcess, project: dict[str, str], **extra: object) -> dict[str, object]:
    response = httpx.post(
        f"{server.url}/api/projects/{project['id']}/query?explain=1",
        headers={"Authorization": f"Bearer {project['api_key']}"},
        json={"query": {"kind": "TrendsQuery", "series": [{"event": "$pageview"}], **extra}},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_a_started_server_warms_resident_buckets(data_dir: Path, project: dict[str, str]) -> None:
    _seed(data_dir, int(project["id"]))
    server = ServerProcess(data_dir).start()
    try:
        deadline = time.monotonic() + 20  # generous: a background read of 60 events
        while _resident_bytes(server) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _resident_bytes(server) > 0  # before any query ran
        body = _explain(server, project)
        explain = body["explain"]
        assert isinstance(explain, dict)
        assert {run["source"] for run in explain["subtask_runs"]} == {"resident"}
        assert sum(row["count"] for row in body["results"]) == 60  # type: ignore[union-attr]
    finally:
        server.stop()


def test_warm_up_can_be_turned_off(data_dir: Path, project: dict[str, str]) -> None:
    _seed(data_dir, int(project["id"]))
    server = ServerProcess(data_dir, env={"EVENTLENS_QUERY_WARM": "0"}).start()
    try:
        time.sleep(1.0)  # what a warm-up would have had time to do
        assert _resident_bytes(server) == 0
        _explain(server, project)
        assert _resident_bytes(server) > 0  # the first query read them
    finally:
        server.stop()


def _warm_logs(data_dir: Path) -> list[dict[str, object]]:
    lines = (data_dir / "server.log").read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    return [e for e in entries if e.get("event") == "query.warm"]


def test_properties_recent_queries_used_are_decoded_at_start(
    data_dir: Path, project: dict[str, str]
) -> None:
    _seed(data_dir, int(project["id"]))
    first = ServerProcess(data_dir).start()
    try:
        _explain(first, project, breakdownFilter={"breakdown": "$browser"})  # in the query log
    finally:
        first.stop()
    started = len(_warm_logs(data_dir))
    second = ServerProcess(data_dir).start()
    try:
        deadline = time.monotonic() + 20
        while len(_warm_logs(data_dir)) == started and time.monotonic() < deadline:
            time.sleep(0.1)
        warmed = _warm_logs(data_dir)[started:]
        assert warmed and warmed[0]["project_id"] == int(project["id"])
        assert warmed[0]["properties"] == ["event.$browser"]
        assert warmed[0]["rows"] == 60
    finally:
        second.stop()

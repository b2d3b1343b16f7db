"""A 500 through a real server: JSON, an error id that is in the JSON log with the traceback, and
nothing of the server (paths, library messages) in the answer. The faults are real ones below the
API: a dropped SQLite table, a corrupt Parquet data file."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from eventlens.config import Settings
from tests.api.conftest import append_events
from tests.support.server import ServerProcess, create_project

LEAKS = re.compile(r"/work/|/tmp/|\.py\b|\.parquet|Traceback|sqlite|no such table|numba", re.I)


@pytest.fixture(scope="module")
def broken(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, dict[str, Any]]]:
    # One server for both tests: each breaks a different store (saved insights, event files).
    data_dir = tmp_path_factory.mktemp("broken") / "data"
    project = create_project(data_dir, "p")
    now = datetime.now(UTC)
    append_events(
        data_dir,
        int(project["id"]),
        [
            {"event": "e", "distinct_id": f"u{i}", "timestamp": now - timedelta(hours=i)}
            for i in range(5)
        ],
    )
    # No warm-up: resident buckets read before the files are corrupted would answer from memory
    # (they are keyed by the immutable file paths), and the fault must reach the engine's read.
    server = ServerProcess(data_dir, env={"EVENTLENS_QUERY_WARM": "0"}).start()
    try:
        yield server, project
    finally:
        server.stop()


def _log_line(server: ServerProcess, error_id: str) -> dict[str, Any]:
    """The JSON log line naming error_id (every line of the log must be JSON)."""
    deadline = time.monotonic() + 5
    while True:
        lines = [
            json.loads(line) for line in (server.data_dir / "server.log").read_text().splitlines()
        ]
        found = [line for line in lines if line.get("error_id") == error_id]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, found
            return found[0]
        time.sleep(0.05)


def test_unexpected_exception_is_a_json_500_with_a_logged_error_id(
    broken: tuple[ServerProcess, dict[str, Any]],
) -> None:
    server, project = broken
    headers = {"Authorization": f"Bearer {project['api_key']}"}
    url = f"{server.url}/api/projects/{project['id']}/insights"
    assert httpx.get(url, headers=headers).status_code == 200  # the store creates its tables
    db = sqlite3.connect(Settings().with_data_dir(server.data_dir).meta_db)
    db.execute("DROP TABLE saved_insights")
    db.commit()
    db.close()
    r = httpx.get(url, headers=headers)
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["type"] == "InternalError" and body["detail"] == "internal error", body
    assert re.fullmatch(r"[0-9a-f]{32}", body["error_id"]), body
    assert not LEAKS.search(r.text), r.text
    line = _log_line(server, body["error_id"])
    assert line["event"] == "http.internal_error"
    assert "no such table" in line["error"]
    assert "Traceback" in line["exception"]


def test_execution_error_answer_shows_no_paths(
    broken: tuple[ServerProcess, dict[str, Any]],
) -> None:
    server, project = broken
    table_dir = Settings().with_data_dir(server.data_dir).event_table_dir(int(project["id"]))
    files = sorted(table_dir.rglob("*.parquet"))
    assert files
    for f in files:
        f.write_bytes(b"PAR1 not a parquet file PAR1")
    headers = {"Authorization": f"Bearer {project['api_key']}"}
    query = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "e"}]}
    for engine in ("parallel", "reference"):
        r = httpx.post(
            f"{server.url}/api/projects/{project['id']}/query",
            json={"query": query, "engine": engine},
            headers=headers,
            timeout=60,
        )
        assert r.status_code == 500, (engine, r.text)
        body = r.json()
        assert body["type"] == "ExecutionError", body
        assert set(body) == {"type", "detail", "error_id"}, body
        assert not LEAKS.search(r.text), r.text
        line = _log_line(server, body["error_id"])
        assert "Traceback" in line["exception"]

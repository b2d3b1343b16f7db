"""`/_health` and `/_ready` tell the truth about ingest (issue 10): a dead or crash-looping
consumer, lag beyond `ready_max_lag_seconds`, free disk below `min_free_disk_mb`."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from eventlens.config import Settings
from eventlens.ingest.health import check
from tests.ingest.helpers import consumer_pid
from tests.support.server import ServerProcess


def _until(
    probe: Callable[[], dict[str, Any] | None], what: str, timeout: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = probe()
        if got is not None:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _ready_when(url: str, code: int, reason_part: str = "") -> Callable[[], dict[str, Any] | None]:
    def probe() -> dict[str, Any] | None:
        r = httpx.get(url + "/_ready")
        body: dict[str, Any] = r.json()
        if r.status_code == code and (
            not reason_part or any(reason_part in x for x in body["reasons"])
        ):
            return body
        return None

    return probe


def test_ready_when_all_is_well(server: ServerProcess) -> None:
    body = _until(_ready_when(server.url, 200), "ready")
    assert body["status"] == "ok" and body["ready"] is True and body["reasons"] == []
    assert set(body["checks"]) == {"consumer", "lag", "disk"}
    health = httpx.get(server.url + "/_health")
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_disk_below_threshold_is_not_ready(data_dir: Path, project: dict[str, str]) -> None:
    server = ServerProcess(data_dir, env={"EVENTLENS_MIN_FREE_DISK_MB": str(10**12)}).start()
    try:
        r = httpx.get(server.url + "/_ready")
        assert r.status_code == 503
        body = r.json()
        assert body["checks"]["disk"]["ok"] is False
        assert any("min_free_disk_mb" in x for x in body["reasons"])
        # Liveness stays up (restarting would not free disk), and says what is wrong.
        health = httpx.get(server.url + "/_health")
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
    finally:
        server.stop()


def test_lag_beyond_threshold_is_not_ready(data_dir: Path, project: dict[str, str]) -> None:
    # The consumer commits at most every 30 s: the second event waits, and ages past 1 s.
    env = {"EVENTLENS_COMMIT_INTERVAL": "30", "EVENTLENS_READY_MAX_LAG_SECONDS": "1"}
    server = ServerProcess(data_dir, env=env).start()
    try:
        _until(_ready_when(server.url, 200), "ready")
        for _ in range(2):
            event = {"event": "e", "distinct_id": "d", "uuid": str(uuid.uuid4())}
            body = {"api_key": project["token"], "batch": [event]}
            assert httpx.post(server.url + "/batch/", json=body).status_code == 200
            time.sleep(1)
        body = _until(_ready_when(server.url, 503, "ingest lag"), "lag to fail readiness")
        assert body["checks"]["lag"]["ok"] is False and body["checks"]["lag"]["seconds"] > 1
    finally:
        server.stop()


def test_crash_looping_consumer_is_not_ready(data_dir: Path, project: dict[str, str]) -> None:
    settings = Settings().with_data_dir(data_dir)
    server = ServerProcess(data_dir).start()
    try:
        _until(_ready_when(server.url, 200), "ready")
        killed: set[int] = set()
        for _ in range(3):
            pid = consumer_pid(settings, killed)
            os.kill(pid, signal.SIGKILL)
            killed.add(pid)
            time.sleep(0.3)
        body = _until(_ready_when(server.url, 503, "crash-looping"), "crash loop to show")
        assert body["checks"]["consumer"]["ok"] is False
        assert body["checks"]["consumer"]["restarts"] >= 2
        metrics = httpx.get(server.url + "/metrics").text.splitlines()
        restarts = [
            float(x.split()[1])
            for x in metrics
            if x.startswith("eventlens_ingest_consumer_restarts_total ")
        ]
        assert restarts and restarts[0] >= 2
    finally:
        server.stop()


def test_consumer_dead_for_good_fails_liveness(tmp_path: Path) -> None:
    settings = Settings().with_data_dir(tmp_path)
    tmp_path.mkdir(exist_ok=True)
    h = check(settings, None, time.time())
    assert not h.live and not h.ready
    assert h.body()["status"] == "failing"
    assert "nothing restarts it" in h.reasons[0]

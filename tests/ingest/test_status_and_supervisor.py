"""`eventlens status` and the consumer's lifecycle under the server's supervisor."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

import httpx

from eventlens.capture.model import CapturedEvent, encode_log_record
from eventlens.config import Settings
from eventlens.ingest.consumer import read_status
from eventlens.ingest.log import IngestLog
from tests.ingest.helpers import wait_caught_up
from tests.support.server import ServerProcess, create_project, run_cli


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_consumer(settings: Settings, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = read_status(settings)
        if status is not None and _alive(int(status["pid"])):
            return int(status["pid"])
        time.sleep(0.05)
    raise AssertionError("consumer did not start")


def test_status_reports_events_dead_letters_and_lag(data_dir: Path) -> None:
    project = create_project(data_dir, name="shop")
    other = create_project(data_dir, name="empty")
    settings = Settings().with_data_dir(data_dir)
    server = ServerProcess(data_dir).start()
    try:
        batch: list[dict[str, object]] = [
            {"event": "view", "distinct_id": f"u{i % 3}", "uuid": str(uuid.uuid4())}
            for i in range(10)
        ]
        batch.append({"event": "view", "uuid": str(uuid.uuid4())})  # no distinct_id: dead letter
        r = httpx.post(server.url + "/batch/", json={"api_key": project["token"], "batch": batch})
        assert r.status_code == 200
        wait_caught_up(settings)
        consumer_pid = _wait_consumer(settings)

        out = run_cli("status", "--json", data_dir=data_dir)
        doc = json.loads(out.stdout)
        ingest = doc["ingest"]
        assert ingest["lag_bytes"] == 0
        assert ingest["log_end"] > 0
        assert ingest["consumer_running"] is True
        assert ingest["consumer_pid"] == consumer_pid
        by_id = {p["id"]: p for p in doc["projects"]}
        shop = by_id[int(project["id"])]
        assert shop["events"] == 10
        assert shop["persons"] == 3
        assert shop["dead_letters"] == 1
        assert shop["pending_events"] == 0
        assert shop["data_version"] >= 1
        assert shop["data_files"] >= 1 and shop["bytes"] > 0
        assert by_id[int(other["id"])]["events"] == 0

        one = json.loads(
            run_cli("status", "--json", "--project", str(project["id"]), data_dir=data_dir).stdout
        )
        assert [p["id"] for p in one["projects"]] == [int(project["id"])]
        human = run_cli("status", data_dir=data_dir).stdout
        assert "10 events" in human and "1 dead" in human
    finally:
        server.stop()
    # A clean shutdown stops the consumer too.
    assert not _alive(consumer_pid)
    stopped = json.loads(run_cli("status", "--json", data_dir=data_dir).stdout)
    assert stopped["ingest"]["consumer_running"] is False


def test_status_of_unknown_project_is_a_clear_error(data_dir: Path) -> None:
    create_project(data_dir)
    out = run_cli("status", "--project", "999", data_dir=data_dir, check=False)
    assert out.returncode != 0
    assert "no project with id 999" in out.stderr


def test_consumer_exits_when_its_server_is_killed_alone(data_dir: Path) -> None:
    create_project(data_dir)
    settings = Settings().with_data_dir(data_dir)
    server = ServerProcess(data_dir).start()
    consumer_pid = _wait_consumer(settings)
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGKILL)  # the server only, not its process group
    server.proc.wait(10)
    deadline = time.monotonic() + 10
    while _alive(consumer_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    # An orphaned consumer would race the next server's consumer on the same tables.
    assert not _alive(consumer_pid), "orphaned consumer kept running"
    restarted = ServerProcess(data_dir).start()
    try:
        assert _wait_consumer(settings) != consumer_pid
    finally:
        restarted.stop()


def test_status_counts_pending_events_while_no_consumer_runs(data_dir: Path) -> None:
    project = create_project(data_dir)
    settings = Settings().with_data_dir(data_dir)
    log = IngestLog(settings.log_dir)
    log.start()
    received = int((time.time() - 3) * 1e6)
    events = [CapturedEvent(str(uuid.uuid4()), "view", "u", received, {}) for _ in range(4)]
    log.append_blocking(encode_log_record(int(project["id"]), received, events, []))
    log.append_blocking(encode_log_record(int(project["id"]), received, events[:1], []))
    end = log.end_offset()
    log.close()
    doc = json.loads(run_cli("status", "--json", data_dir=data_dir).stdout)
    assert doc["ingest"]["lag_bytes"] == end
    assert doc["ingest"]["oldest_unapplied_age_s"] >= 3
    assert doc["ingest"]["consumer_running"] is False
    assert doc["projects"][0]["pending_events"] == 5
    assert doc["projects"][0]["events"] == 0

"""Crash safety of capture -> log -> consumer -> table, with real processes (issue #2).

Concurrent clients POST posthog-style `/batch/` requests with uuids they generate while the
server (with its consumer) or the consumer alone is SIGKILLed at random moments. After the dust
settles every uuid that was ACKNOWLEDGED (HTTP 200) must be in the event table exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from eventlens.config import Settings
from tests.ingest.helpers import consumer_pid, stored_uuids, wait_caught_up
from tests.support.server import ServerProcess, create_project

CLIENTS = 4
BATCH = 25


@dataclass
class Load:
    """CLIENTS threads posting batches until stopped; records the uuids acknowledged."""

    url: str
    token: str
    acked: list[str] = field(default_factory=list)
    sent: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for n in range(CLIENTS):
            t = threading.Thread(target=self._client, args=(n,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _client(self, n: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stop.is_set():
                uuids = [str(uuid.uuid4()) for _ in range(BATCH)]
                batch = [
                    {"event": "crash_test", "distinct_id": f"user-{n}-{i % 7}", "uuid": u}
                    for i, u in enumerate(uuids)
                ]
                with self._lock:
                    self.sent += len(uuids)
                try:
                    r = client.post("/batch/", json={"api_key": self.token, "batch": batch})
                except httpx.HTTPError:
                    # Killed server: not acknowledged. Wait for the next round's server.
                    time.sleep(0.05)
                    continue
                if r.status_code == 200:
                    with self._lock:
                        self.acked.extend(uuids)

    def finish(self) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(15)


def assert_exactly_once(settings: Settings, project_id: int, acked: list[str]) -> None:
    stored = stored_uuids(settings, project_id)
    assert len(stored) == len(set(stored)), "some uuid is stored twice"
    missing = set(acked) - set(stored)
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"


def test_server_kill9_loses_and_duplicates_nothing(data_dir: Path) -> None:
    project = create_project(data_dir)
    settings = Settings().with_data_dir(data_dir)
    server = ServerProcess(data_dir)
    acked: list[str] = []
    rng = random.Random()
    for _ in range(3):
        server.start()
        load = Load(server.url, project["token"]).start()
        time.sleep(rng.uniform(0.5, 2.0))
        server.kill9()
        load.finish()
        acked += load.acked
        assert load.acked, "no request was acknowledged before the kill"
    server.start()
    try:
        wait_caught_up(settings)
        assert_exactly_once(settings, int(project["id"]), acked)
    finally:
        server.stop()


def test_consumer_kill9_mid_commit_loses_and_duplicates_nothing(data_dir: Path) -> None:
    project = create_project(data_dir)
    settings = Settings().with_data_dir(data_dir)
    # Commit continuously, so that a kill at a random moment usually lands inside a commit.
    server = ServerProcess(data_dir, env={"EVENTLENS_COMMIT_INTERVAL": "0.02"}).start()
    killed: set[int] = set()
    rng = random.Random()
    try:
        load = Load(server.url, project["token"]).start()
        for _ in range(4):
            pid = consumer_pid(settings, killed)
            # Let it get into its stride, then kill it in the middle of whatever it does.
            time.sleep(rng.uniform(0.3, 1.0))
            os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        consumer_pid(settings, killed)
        time.sleep(0.5)
        load.finish()
        assert load.acked
        wait_caught_up(settings)
        assert_exactly_once(settings, int(project["id"]), load.acked)
        # The server kept acknowledging while its consumer was down: the log decouples them.
        assert server.proc is not None and server.proc.poll() is None
    finally:
        server.stop()


def test_acknowledged_event_is_visible_within_5_seconds(data_dir: Path) -> None:
    project = create_project(data_dir)
    settings = Settings().with_data_dir(data_dir)
    server = ServerProcess(data_dir).start()
    try:
        # The consumer process is up once it has written its first status.
        consumer_pid(settings, set())
        for _ in range(3):
            u = str(uuid.uuid4())
            event = {"event": "e", "distinct_id": "d", "uuid": u}
            r = httpx.post(
                server.url + "/batch/", json={"api_key": project["token"], "batch": [event]}
            )
            assert r.status_code == 200
            acked_at = time.monotonic()
            while u not in stored_uuids(settings, int(project["id"])):
                assert time.monotonic() - acked_at < 5.0, "acknowledged event not visible in 5 s"
                time.sleep(0.05)
    finally:
        server.stop()

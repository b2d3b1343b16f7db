"""A real Prometheus (Debian's `prometheus`) on loopback scrapes real EventLens servers, with
the rules rendered at a compressed time scale (an hour in a minute), and each injected fault
makes its alert fire, seen through Prometheus's HTTP API:

- capture answers 5xx (the test-only `fault_capture_error_rate`) -> capture-availability page;
- queries are slow (the test-only `fault_query_delay`)            -> query-latency page;
- the ingest consumer is killed, again and again                  -> consumer crash-looping;
- the ingest consumer is frozen (SIGSTOP) while capture goes on   -> ingest stalled.

Two servers (the SLOs are service-wide sums, so one Prometheus covers both): `faulty` gets the
5xx, the slow queries and the killed consumer, `stalling` the frozen consumer and the healthy
capture traffic. Before the faults, the same rules see healthy servers and no alert is active.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventlens.observability import dashboard, rules, slo
from tests.api.bodies import TRENDS
from tests.support.server import ServerProcess, create_project, free_port

PROMETHEUS = shutil.which("prometheus")
TIME_SCALE = 60  # 5m -> 5 s, 1h -> 60 s
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus missing: apt-get install prometheus (scripts/test does)"
)


class Prometheus:
    def __init__(self, workdir: Path, targets: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (workdir / "rules.yaml").write_text(rules.render(slo.load(), time_scale=TIME_SCALE))
        (workdir / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "rule_files: [rules.yaml]\n"
            "scrape_configs:\n"
            "- job_name: eventlens\n"
            f"  static_configs: [{{targets: [{', '.join(repr(t) for t in targets)}]}}]\n"
        )
        assert PROMETHEUS is not None
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(workdir / "prometheus.log", "wb"),  # noqa: SIM115 - the child owns it
        )
        self.log = workdir / "prometheus.log"

    def api(self, path: str, **params: str) -> Any:
        r = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=5)
        assert r.status_code in (200, 400, 422), r.text
        return r.json()

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"prometheus not ready: {self.log.read_text()[-3000:]}")

    def firing(self) -> dict[str, set[str]]:
        """alertname -> severities of its firing alerts."""
        out: dict[str, set[str]] = {}
        for a in self.api("alerts")["data"]["alerts"]:
            if a["state"] == "firing":
                out.setdefault(a["labels"]["alertname"], set()).add(a["labels"].get("severity", ""))
        return out

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _capture(server: ServerProcess, token: str, stop: threading.Event) -> None:
    """SDK-shaped batches, ~20 a second, until `stop`; failures are the point, not errors."""
    n = 0
    with httpx.Client(timeout=5) as client:
        while not stop.is_set():
            batch = [{"event": "$pageview", "distinct_id": f"u{n % 7}", "properties": {"n": n}}]
            with contextlib.suppress(httpx.HTTPError):
                client.post(server.url + "/batch/", json={"api_key": token, "batch": batch})
            n += 1
            stop.wait(0.05)


def _query(server: ServerProcess, project: dict[str, str], stop: threading.Event) -> None:
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                client.post(
                    f"{server.url}/api/projects/{project['id']}/query",
                    json={"query": TRENDS},
                    headers={"Authorization": f"Bearer {project['api_key']}"},
                )
            stop.wait(0.2)


def _consumer_pid(server: ServerProcess) -> int | None:
    body = httpx.get(server.url + "/_health", timeout=5).json()
    pid = body["checks"]["consumer"].get("pid")
    return int(pid) if pid else None


def _start(data: Path, env: dict[str, str]) -> tuple[ServerProcess, dict[str, str]]:
    project = create_project(data)
    # The result cache on: every served query (hits too) is in the query SLIs.
    env = {**env, "EVENTLENS_COMMIT_INTERVAL": "0.2"}
    return ServerProcess(data, env=env).start(60), project


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[dict[str, tuple[ServerProcess, dict[str, str]]]]:
    envs = {
        "faulty": {
            "EVENTLENS_FAULT_CAPTURE_ERROR_RATE": "1",
            "EVENTLENS_FAULT_QUERY_DELAY": "3",
            "EVENTLENS_QUERY_WARM": "0",
        },
        "stalling": {},
    }
    # Started side by side: each start is mostly Python importing, on a busy machine.
    with ThreadPoolExecutor(len(envs)) as pool:
        futures = {name: pool.submit(_start, tmp_path / name, env) for name, env in envs.items()}
    started = {name: f.result() for name, f in futures.items()}
    try:
        yield started
    finally:
        for server, _ in started.values():
            if server.proc is not None and server.proc.poll() is None:
                os.killpg(server.proc.pid, signal.SIGKILL)
                server.proc.wait(10)


def _wait_for(prom: Prometheus, want: dict[str, str], timeout: float) -> dict[str, set[str]]:
    """Every alert seen firing (with its severity) by the deadline; not necessarily at once:
    a crash loop's alert resolves once the kills stop, while a stall's needs time to fire."""
    deadline = time.monotonic() + timeout
    seen: dict[str, set[str]] = {}
    while time.monotonic() < deadline:
        for alert, severities in prom.firing().items():
            seen.setdefault(alert, set()).update(severities)
        if all(sev in seen.get(alert, set()) for alert, sev in want.items()):
            return seen
        time.sleep(0.5)
    raise AssertionError(f"wanted {want}, seen firing: {seen}")


def _kill_consumer_repeatedly(server: ServerProcess, times: int) -> None:
    """SIGKILL the consumer as soon as the supervisor brings it back, `times` times."""
    for _ in range(times):
        end = time.monotonic() + 15
        pid = None
        while time.monotonic() < end and pid is None:
            pid = _consumer_pid(server)
            time.sleep(0.1)
        assert pid is not None, "the supervisor did not restart the consumer"
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)


@pytest.mark.slow
def test_each_injected_fault_fires_its_alert(
    tmp_path: Path, servers: dict[str, tuple[ServerProcess, dict[str, str]]]
) -> None:
    prom_dir = tmp_path / "prometheus"
    prom_dir.mkdir()
    prom = Prometheus(prom_dir, [f"127.0.0.1:{s.port}" for s, _ in servers.values()])
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        prom.wait_ready()
        # Healthy traffic first (capture on the servers without a capture fault): no alert.
        server, project = servers["stalling"]
        threads.append(threading.Thread(target=_capture, args=(server, project["token"], stop)))
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            up = prom.api("query", query="sum(up)")["data"]["result"]
            if up and float(up[0]["value"][1]) == len(servers):
                break
            time.sleep(0.5)
        time.sleep(6)  # more than the scaled 5m window, so every rate has samples
        slos = slo.load()
        expected = {
            rules.alert_name(slos.get("capture-availability")): "page",
            rules.alert_name(slos.get("query-latency")): "page",
            rules.CRASH_LOOP_ALERT: "page",
            rules.STALLED_ALERT: "page",
        }
        # None of the alerts the faults must cause fires before them. (Capture latency is left
        # out: on a saturated CI machine a 0.25 s acknowledgement can be honestly missed.)
        before = prom.firing()
        assert set(expected).isdisjoint(before), f"alerts before any fault: {before}"

        # Every dashboard query is valid PromQL for this Prometheus.
        for expr in dashboard.expressions(dashboard.dashboard(slo.load())):
            assert prom.api("query", query=expr)["status"] == "success", expr

        # The faults.
        server, project = servers["faulty"]
        extra = [
            threading.Thread(target=_capture, args=(server, project["token"], stop)),
            threading.Thread(target=_query, args=(server, project, stop)),
        ]
        for t in extra:
            t.start()
        threads += extra
        killer = threading.Thread(target=_kill_consumer_repeatedly, args=(servers["faulty"][0], 4))
        killer.start()
        threads.append(killer)
        frozen = _consumer_pid(servers["stalling"][0])
        assert frozen is not None
        os.kill(frozen, signal.SIGSTOP)
        try:
            firing = _wait_for(prom, expected, timeout=60)
        finally:
            os.kill(frozen, signal.SIGCONT)
        # A fault that was not injected did not fire: slow queries are not failed queries.
        assert rules.alert_name(slos.get("query-availability")) not in firing, firing
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        prom.stop()

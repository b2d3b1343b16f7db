"""`bench query --api`: the mix as a user sees it, through a real `eventlens serve` on loopback.

The benchmark's data directory (the imported or generated table of project 1) is served by a
child `eventlens serve` with the result cache off (every request computes) and its warm-up on,
as in production. Each request goes through HTTP, API-key authentication, parsing, normalising,
pinning the snapshot, planning, the engine and JSON serialisation; the client keeps one
connection open (as a dashboard's browser does). The server's own CPU seconds are read from
/proc per request, so a cell records what the request cost both processes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from eventlens.config import Settings
from eventlens.projects.store import SqliteMetadataStore

_KEY_FILE = "bench-api.json"
_TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _project_key(settings: Settings) -> tuple[int, str]:
    """(project id, API key) of the project whose table the bench loaded (id 1), creating the
    project on first use; the key is kept next to the data (a bench directory, not a user's)."""
    key_file = settings.data_dir / _KEY_FILE
    if key_file.exists():
        saved = json.loads(key_file.read_text())
        return int(saved["project_id"]), str(saved["api_key"])
    store = SqliteMetadataStore(settings.meta_db)
    try:
        if store.list_projects():
            raise RuntimeError(
                f"{settings.data_dir} has projects but no {_KEY_FILE}: remove it to re-import"
            )
        created = store.create_project("bench")
    finally:
        store.close()
    if created.project.id != 1:
        raise RuntimeError(f"the bench project got id {created.project.id}, not 1")
    key_file.write_text(json.dumps({"project_id": 1, "api_key": created.api_key}))
    return 1, created.api_key


class ApiServer:
    """A child `eventlens serve` over `data_dir` and a kept-alive client of its query API."""

    def __init__(self, data_dir: Path) -> None:
        self.settings = Settings().with_data_dir(data_dir)
        self.project_id, self.api_key = _project_key(self.settings)
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        import httpx  # the bench extra: not needed to import the CLI

        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}",
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=600,
        )
        self.started_s = 0.0
        self.log_path = self.settings.data_dir / "bench-api-server.log"
        self.log_offset = 0

    def start(self, timeout: float = 120.0) -> ApiServer:
        """Start the server and wait for /_health (its warm-up then runs in the background)."""
        import httpx

        self.log_path = self.settings.data_dir / "bench-api-server.log"
        # Earlier runs' lines stay in the log: this run's start here.
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")  # noqa: SIM115
        env = {**os.environ, "EVENTLENS_CACHE_BACKEND": "off"}
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "eventlens", "serve"),
                *("--port", str(self.port), "--data-dir", str(self.settings.data_dir)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the bench API server exited at start (bench-api-server.log)")
            try:
                if self.client.get("/_health", timeout=1).status_code == 200:
                    self.started_s = time.perf_counter() - t0
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the bench API server did not start (bench-api-server.log)")

    def query(self, query: dict[str, Any]) -> dict[str, Any]:
        """One POST .../query; the response body (results, timings). Raises on a non-200.
        The deadline is the server's maximum: on a loaded machine a cold query may pass the
        default 30 s, and the benchmark reports its time rather than a timeout."""
        response = self.client.post(
            f"/api/projects/{self.project_id}/query",
            json={"query": query, "timeout": self.settings.query_max_timeout},
        )
        if response.status_code != 200:
            raise RuntimeError(f"API answered {response.status_code}: {response.text[:500]}")
        body: dict[str, Any] = response.json()
        return body

    def wait_warm(self, timeout: float) -> float:
        """Seconds until this run's server logged its warm-up of a project (or `timeout`)."""
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_offset)
                if b'"event": "query.warm"' in f.read():
                    break
            time.sleep(0.2)
        return time.perf_counter() - t0

    def server_cpu_s(self) -> float:
        """The server process's CPU seconds so far (user + system, /proc)."""
        if self.proc is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def stop(self) -> None:
        self.client.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

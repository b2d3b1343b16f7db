"""A real `eventlens serve` subprocess on a free loopback port, for end-to-end tests.

Tests that kill the server (`kill -9`) or its consumer use `ServerProcess` directly; most use
the `server` fixture from conftest.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(*args: str, data_dir: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventlens", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=check,
        timeout=600,
    )


def create_project(data_dir: Path, name: str = "test", timezone: str = "UTC") -> dict[str, str]:
    out = run_cli("project", "create", name, "--timezone", timezone, "--json", data_dir=data_dir)
    result: dict[str, str] = json.loads(out.stdout)
    return result


@dataclass
class ServerProcess:
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.port = self.port or free_port()
        log_path = self.data_dir / "server.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "eventlens",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(log_path, "ab"),  # noqa: SIM115 - the child owns it
            env={**os.environ, **self.env},
            start_new_session=True,  # so kill9() also reaches the consumer child
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early: {log_path.read_text()[-4000:]}")
            try:
                if httpx.get(self.url + "/_health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not start: {log_path.read_text()[-4000:]}")

    def kill9(self) -> None:
        """SIGKILL the server's whole process group (server and consumer), like a power cut
        for the processes (the page cache survives; fsync-honest storage is assumed)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def post_query(server: ServerProcess, project: dict[str, Any], query: dict[str, Any]) -> Any:
    """The answer of `query` through the server's query API (asserts a 200)."""
    r = httpx.post(
        f"{server.url}/api/projects/{project['id']}/query",
        json={"query": query},
        headers={"Authorization": f"Bearer {project['api_key']}"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return r.json()

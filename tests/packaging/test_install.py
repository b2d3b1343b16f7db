"""`pip install .` as a user does it: a wheel, a fresh venv, no test extra, a CLI that serves.

The wheel is built from a copy of the sources (an in-tree build would leave build/ behind, and a
stale build/ can put deleted modules into the wheel). Its dependencies are resolved from the
registry with requirements.lock as a constraints file: the same versions as the lock, but only
what `[project] dependencies` pull in, so a runtime import of a test-only package fails here.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.packaging.deps import ROOT, declared, normalise
from tests.support.server import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def _run(
    *args: str | Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd
    )
    assert out.returncode == 0, f"{args}: {out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def _clean_env() -> dict[str, str]:
    """The environment without anything that points Python at the source tree or a venv."""
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP"}
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("EVENTLENS_")}


def _health(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_health", timeout=2) as r:
            return int(r.status)
    except (urllib.error.URLError, OSError):
        return None


def test_wheel_installs_without_test_extra_and_serves(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "eventlens", src / "eventlens", ignore=shutil.ignore_patterns("__pycache__")
    )
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", wheels, src, cwd=tmp_path)  # fmt: skip
    (wheel,) = wheels.glob("eventlens-*.whl")

    venv = tmp_path / "venv"
    env = _clean_env()
    _run(sys.executable, "-m", "venv", venv, env=env)
    py, cli = venv / "bin" / "python", venv / "bin" / "eventlens"
    _run(py, "-m", "pip", "install", "-q", "--constraint", ROOT / "requirements.lock", wheel,
         env=env, cwd=tmp_path)  # fmt: skip

    # The venv holds the runtime set only: no test extra leaked in, and eventlens is the wheel's.
    runtime, extras = declared()
    test_only = sorted(extras["test"] - runtime)
    listed = _run(py, "-m", "pip", "list", "--format=freeze", env=env).stdout
    installed = {normalise(line.split("==")[0]) for line in listed.splitlines() if "==" in line}
    assert runtime <= installed, sorted(runtime - installed)
    assert not installed & set(test_only), sorted(installed & set(test_only))
    probe = _run(py, "-c", "import importlib.util as u, eventlens; "
                 "print(eventlens.__file__); print(u.find_spec('httpx'))",
                 env=env, cwd=tmp_path).stdout.split()  # fmt: skip
    assert probe[0].startswith(str(venv)) and probe[1] == "None", probe

    help_out = _run(cli, "--help", env=env, cwd=tmp_path, timeout=120).stdout
    for command in ("serve", "query", "deadletter", "demo", "bench"):
        assert command in help_out, help_out

    port, data_dir = free_port(), tmp_path / "data"
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [cli, "serve", "--port", str(port), "--data-dir", str(data_dir)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while _health(port) != 200:
            assert proc.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert proc.wait(30) in (0, -signal.SIGTERM), log.read_text()[-4000:]
        assert "Application shutdown complete" in log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

"""`eventlens demo` end to end: a real subprocess, a real import, a real server."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

from eventlens.accounts.passwords import verify
from eventlens.accounts.policy import Role
from eventlens.accounts.store import AccountStore
from eventlens.config import Settings
from eventlens.projects.store import SqliteMetadataStore
from eventlens.storage.event_table import EventTable
from tests.support.server import free_port


def _run_demo(data_dir: Path, events: str) -> str:
    """Start the demo, wait until it serves /_health, stop it; returns its stdout."""
    port = free_port()
    out_path = data_dir.parent / f"demo-{port}.out"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "eventlens", "demo", "--events", events, "--port", str(port),
             "--data-dir", str(data_dir)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, out_path.read_text()
            assert time.monotonic() < deadline, out_path.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    return out_path.read_text()


def _table_uuids(data_dir: Path, project_id: int) -> list[str]:
    table = EventTable.open_or_create(
        Settings().with_data_dir(data_dir).event_table_dir(project_id)
    )
    return list(table.snapshot().read(["uuid"]).column("uuid").to_pylist())


def test_demo_imports_serves_and_reruns_idempotently(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = _run_demo(data_dir, "3k")

    creds_path = data_dir / "demo-credentials.json"
    creds = orjson.loads(creds_path.read_bytes())
    assert stat.S_IMODE(creds_path.stat().st_mode) == 0o600
    assert creds["imported"] is True
    for secret in (creds["token"], creds["api_key"], f'Posthog("{creds["token"]}"'):
        assert secret in first
    uuids = _table_uuids(data_dir, creds["project_id"])
    assert len(uuids) == len(set(uuids)) == 3_000
    # The demo prints a dashboard login: an owner of the demo project's organisation.
    assert f"login:      {creds['login_email']} / {creds['login_password']}" in first
    accounts = AccountStore(data_dir / "meta.db")
    try:
        user = accounts.user_by_email(creds["login_email"])
        assert user is not None and verify(user.password_hash, creds["login_password"])
        assert accounts.memberships(user.id)[1].role is Role.OWNER
    finally:
        accounts.close()

    second = _run_demo(data_dir, "3k")
    assert "reused" in second and creds["api_key"] in second
    assert creds["login_password"] in second  # the same login on a rerun
    assert "imported" not in second.split("EventLens demo")[0]
    store = SqliteMetadataStore(data_dir / "meta.db")
    try:
        projects = store.list_projects()
        assert [(p.name, p.timezone) for p in projects] == [("Demo", "America/New_York")]
        assert [p.id for p in store.projects_for_api_key(creds["api_key"])] == [projects[0].id]
    finally:
        store.close()
    assert len(_table_uuids(data_dir, creds["project_id"])) == 3_000
    assert not (data_dir / "demo" / "events.parquet").exists()


def test_demo_on_a_busy_port_fails_fast_before_any_data(tmp_path: Path) -> None:
    """Regression: it generated and imported the data, printed credentials for a server that
    never started, then died of a signal at exit (SIGSEGV/SIGABRT from the warm-up thread)."""
    data_dir = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-m", "eventlens", "demo", "--events", "3k", "--port", str(port),
             "--data-dir", str(data_dir)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert out.returncode == 6, (out.returncode, out.stderr[-3000:])  # Unavailable, no signal
    assert f"port {port} is already in use" in out.stderr and "--port" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert "token" not in out.stdout and "generating" not in out.stdout, out.stdout
    assert not data_dir.exists() or not any(data_dir.iterdir()), list(data_dir.rglob("*"))
    assert time.monotonic() - started < 60

"""Backup while the server runs, write more, restore into a new directory: a server on it has
exactly the events of the backup, and keeps ingesting after them. Format versions: a newer
directory is refused with its exit code, `eventlens migrate` is explicit."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from eventlens.cli import errors as exit_codes
from eventlens.errors import IncompatibleDataFormat
from eventlens.storage import format as data_format
from tests.api.bodies import TRENDS
from tests.support.server import ServerProcess, create_project, post_query, run_cli

EVERY_DAY: dict[str, Any] = {**TRENDS, "dateRange": {"date_from": "-1d"}}


def _send(server: ServerProcess, token: str, n: int, tag: str) -> None:
    batch = [
        {"event": "$pageview", "distinct_id": f"{tag}-{i % 5}", "properties": {"i": i}}
        for i in range(n)
    ]
    r = httpx.post(server.url + "/batch/", json={"api_key": token, "batch": batch}, timeout=30)
    assert r.status_code == 200, r.text


def _count(server: ServerProcess, project: dict[str, str]) -> int:
    return sum(s["count"] for s in post_query(server, project, EVERY_DAY)["results"])


def _wait_count(server: ServerProcess, project: dict[str, str], want: int) -> int:
    end, got = time.monotonic() + 60, -1
    while time.monotonic() < end:
        got = _count(server, project)
        if got == want:
            return got
        time.sleep(0.2)
    return got


@pytest.mark.slow
def test_backup_write_more_restore_verify_counts(tmp_path: Path) -> None:
    data, restored, snap = tmp_path / "data", tmp_path / "restored", tmp_path / "backup"
    project = create_project(data)
    server = ServerProcess(data).start(60)
    try:
        _send(server, project["token"], 40, "before")
        assert _wait_count(server, project, 40) == 40
        _send(server, project["token"], 7, "acked")  # acknowledged, perhaps not yet applied
        out = run_cli("backup", "--out", str(snap), "--json", data_dir=data)
        report = orjson.loads(out.stdout)
        assert report["projects"] == [int(project["id"])]
        _send(server, project["token"], 25, "after")
        assert _wait_count(server, project, 72) == 72
    finally:
        server.stop()

    run_cli("restore", "--from", str(snap), data_dir=restored)
    again = ServerProcess(restored).start(60)
    try:
        # The 7 acknowledged events are in the backup's log and replay; the 25 later ones are not.
        assert _wait_count(again, project, 47) == 47
        _send(again, project["token"], 5, "restored")  # new offsets must not collide
        assert _wait_count(again, project, 52) == 52
    finally:
        again.stop()

    not_empty = run_cli("restore", "--from", str(snap), data_dir=restored, check=False)
    assert not_empty.returncode == exit_codes.INVALID_INPUT and "not empty" in not_empty.stderr


def test_newer_format_is_refused_with_its_exit_code(tmp_path: Path) -> None:
    data = tmp_path / "data"
    create_project(data)
    data_format.write_version(data, data_format.FORMAT_VERSION + 1)
    out = run_cli("serve", "--port", "0", data_dir=data, check=False)
    assert out.returncode == exit_codes.DATA_FORMAT, out.stderr
    assert "newer EventLens" in out.stderr and "restore the backup" in out.stderr
    assert "Traceback" not in out.stderr
    migrate = run_cli("migrate", data_dir=data, check=False)
    assert migrate.returncode == exit_codes.DATA_FORMAT


def test_format_is_recorded_and_migrations_are_explicit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data_format.ensure_current(data)  # a new directory records the current format
    assert data_format.read_version(data) == data_format.FORMAT_VERSION
    # A release with format N+1 and its step: the server refuses until `migrate` runs it.
    ran: list[Path] = []
    nxt = data_format.FORMAT_VERSION + 1
    monkeypatch.setattr(data_format, "FORMAT_VERSION", nxt)
    monkeypatch.setitem(data_format.MIGRATIONS, nxt - 1, ran.append)
    with pytest.raises(IncompatibleDataFormat, match="eventlens migrate"):
        data_format.ensure_current(data)
    assert data_format.migrate(data, dry_run=True) == [nxt - 1] and ran == []
    assert data_format.migrate(data) == [nxt - 1] and ran == [data]
    assert data_format.read_version(data) == nxt
    data_format.ensure_current(data)  # now current
    assert data_format.migrate(data) == []

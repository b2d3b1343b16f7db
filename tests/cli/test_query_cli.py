"""`eventlens query`: local (data dir) and remote (--url) modes, tables and JSON, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import append_events
from tests.support.server import ServerProcess, run_cli


def _funnel(now: datetime) -> dict[str, Any]:
    day = now.date()
    return {
        "kind": "FunnelsQuery",
        "series": [
            {"kind": "EventsNode", "event": "$pageview"},
            {"kind": "EventsNode", "event": "signup", "custom_name": "Signed up"},
        ],
        "dateRange": {"date_from": str(day - timedelta(days=3)), "date_to": str(day)},
    }


@pytest.fixture
def loaded(data_dir: Path, project: dict[str, Any]) -> tuple[Path, int, datetime]:
    now = datetime.now(UTC).replace(microsecond=0)
    events = [
        {"event": "$pageview", "distinct_id": f"u{i}", "timestamp": now - timedelta(days=1)}
        for i in range(4)
    ] + [
        {"event": "signup", "distinct_id": "u0", "timestamp": now - timedelta(hours=23)},
    ]
    append_events(data_dir, int(project["id"]), events)
    return data_dir, int(project["id"]), now


def test_local_json_and_table(loaded: tuple[Path, int, datetime], tmp_path: Path) -> None:
    data_dir, pid, now = loaded
    qfile = tmp_path / "q.json"
    qfile.write_text(json.dumps(_funnel(now)))
    out = json.loads(
        run_cli("query", "--project", str(pid), "--json", str(qfile), data_dir=data_dir).stdout
    )
    assert out["data_version"] == 1 and out["engine"] == "parallel"  # the default engine
    assert [s["count"] for s in out["results"]] == [4, 1]
    table = run_cli("query", "--project", str(pid), str(qfile), data_dir=data_dir).stdout
    assert "Funnel" in table and "Signed up" in table and "25.0%" in table
    assert "data version 1" in table


def test_stdin_and_request_body_form(loaded: tuple[Path, int, datetime]) -> None:
    data_dir, pid, now = loaded
    body = {"query": _funnel(now), "engine": "reference", "timeout": 60}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "eventlens",
            "query",
            "--project",
            str(pid),
            "--json",
            "-",
            "--data-dir",
            str(data_dir),
        ],
        input=json.dumps(body),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert [s["count"] for s in json.loads(proc.stdout)["results"]] == [4, 1]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"kind": "TrendsQuery", "series": [{"event": "a"}], "colour": 1}', "colour"),
        ("{not json", "not valid JSON"),
        ("[1]", "JSON object"),
        ('{"query": {}, "expected": []}', "unsupported field 'expected'"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    loaded: tuple[Path, int, datetime], tmp_path: Path, content: str, needle: str
) -> None:
    data_dir, pid, _ = loaded
    qfile = tmp_path / "bad.json"
    qfile.write_text(content)
    proc = run_cli("query", "--project", str(pid), str(qfile), data_dir=data_dir, check=False)
    assert proc.returncode == 2
    assert needle in proc.stderr and "Traceback" not in proc.stderr


def test_remote_matches_local(
    loaded: tuple[Path, int, datetime], project: dict[str, Any], tmp_path: Path
) -> None:
    data_dir, pid, now = loaded
    qfile = tmp_path / "q.json"
    qfile.write_text(json.dumps(_funnel(now)))
    local = json.loads(
        run_cli("query", "--project", str(pid), "--json", str(qfile), data_dir=data_dir).stdout
    )
    server = ServerProcess(data_dir).start()
    try:
        remote_args = ("query", "--project", str(pid), "--json", "--url", server.url)
        remote = json.loads(
            run_cli(
                *remote_args, "--api-key", project["api_key"], str(qfile), data_dir=data_dir
            ).stdout
        )
        denied = run_cli(
            *remote_args, "--api-key", "phx_wrong", str(qfile), data_dir=data_dir, check=False
        )
    finally:
        server.stop()
    for key in ("results", "data_version", "engine", "kind", "fingerprint"):
        assert remote[key] == local[key]
    assert denied.returncode == 4 and "401 unknown API key" in denied.stderr  # authentication

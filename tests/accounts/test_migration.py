"""An existing data directory upgrades intact: the metadata database of
tests/fixtures/accounts/meta_v0.sql was made by main's code before accounts existed (two
`eventlens project create`, one saved insight and dashboard; meta_v0.json has what the CLI
printed). The server opens it, the old secret keys still work, nothing is lost, and the first
owner created afterwards sees the old projects."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.server import ServerProcess

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "accounts"


def test_pre_accounts_data_dir_upgrades(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    db = sqlite3.connect(data_dir / "meta.db")
    db.executescript((FIXTURES / "meta_v0.sql").read_text())
    db.close()
    old = json.loads((FIXTURES / "meta_v0.json").read_text())["projects"]
    server = ServerProcess(data_dir).start()
    try:
        for p in old:
            with httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {p['api_key']}"}
            ) as c:
                listed = c.get("/api/projects").json()
                assert [(x["id"], x["name"]) for x in listed] == [(p["id"], p["name"])]
                if p["id"] == 1:
                    assert [i["name"] for i in c.get("/api/projects/1/insights").json()] == [
                        "pageviews"
                    ]
                    assert c.get("/api/projects/1/dashboards").json()[0]["insight_ids"] == [1]
        created = subprocess.run(
            [
                sys.executable,
                "-m",
                "eventlens",
                "user",
                "create",
                "first@example.com",
                "--owner",
                "--data-dir",
                str(data_dir),
            ],
            input="a fine first password\n",
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert created.returncode == 0, created.stderr
        with httpx.Client(base_url=server.url) as c:
            r = c.post(
                "/api/login",
                json={"email": "first@example.com", "password": "a fine first password"},
            )
            assert r.status_code == 200, r.text
            assert {p["id"] for p in c.get("/api/projects").json()} == {1, 2}
    finally:
        server.stop()
    # Every old row is still there, unchanged: its old values first, in order (a later release
    # may add columns at the end with ALTER TABLE ADD COLUMN, e.g. test_account_filters).
    db = sqlite3.connect(data_dir / "meta.db")
    try:
        dump = db.iterdump()
        rows = [line for line in dump if line.startswith("INSERT")]
    finally:
        db.close()
    for line in (FIXTURES / "meta_v0.sql").read_text().splitlines():
        if line.startswith("INSERT"):
            old = line.removesuffix(");")
            assert any(r == line or r.startswith(old + ",") for r in rows), line

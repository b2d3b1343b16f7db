"""`eventlens deadletter list|replay` over a real data dir, ingest log and dead-letter store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from eventlens.capture.model import decode_log_record
from eventlens.capture.replay import is_segment_message, replay_uuid, revalidate
from eventlens.config import Settings
from eventlens.ingest.log import LogReader
from eventlens.storage import deadletters, state
from tests.support.server import run_cli

RECEIVED = 1_700_000_000_000_000


def _add(settings: Settings, pid: int, items: list[tuple[int, str, Any]]) -> None:
    conn = state.connect(settings.state_db(pid))
    try:
        conn.execute("BEGIN IMMEDIATE")
        deadletters.add(conn, RECEIVED, items)
        conn.execute("COMMIT")
    finally:
        conn.close()


def test_revalidate_is_deterministic_and_uses_receive_time() -> None:
    payload = {"event": "e", "distinct_id": "u"}
    a = revalidate(payload, project_id=1, dead_letter_id=7, received_at_us=RECEIVED, max_event=1000)
    b = revalidate(payload, project_id=1, dead_letter_id=7, received_at_us=RECEIVED, max_event=1000)
    assert a.uuid == b.uuid == replay_uuid(1, 7) and a.timestamp == RECEIVED
    seg = {"type": "track", "event": "x", "userId": "u"}
    assert is_segment_message(seg) and not is_segment_message(payload)
    assert (
        revalidate(seg, project_id=1, dead_letter_id=8, received_at_us=1, max_event=1000).event
        == "x"
    )


def test_list_and_replay(data_dir: Path, project: dict[str, Any]) -> None:
    settings = Settings().with_data_dir(data_dir)
    pid = int(project["id"])
    fixed = {"event": "fixed", "distinct_id": "u1", "properties": {"a": 1}}
    broken = {"event": "", "distinct_id": "u2"}
    _add(settings, pid, [(0, "was bad once", fixed), (1, "batch[1].event is missing", broken)])

    out = run_cli("deadletter", "list", "--json", data_dir=data_dir)
    listed = json.loads(out.stdout)
    assert [d["reason"] for d in listed] == ["was bad once", "batch[1].event is missing"]
    assert listed[0]["payload"] == fixed
    text = run_cli("deadletter", "list", "--project", str(pid), data_dir=data_dir).stdout
    assert "was bad once" in text

    out = run_cli("deadletter", "replay", "--project", str(pid), "--json", data_dir=data_dir)
    summary = json.loads(out.stdout)[0]
    assert len(summary["replayed"]) == 1 and len(summary["still_invalid"]) == 1
    assert "event is missing" in summary["still_invalid"][0]["reason"]

    reader = LogReader(settings.log_dir)
    try:
        records = [decode_log_record(p) for _, p in reader.read(0, 1 << 20)]
    finally:
        reader.close()
    assert len(records) == 1
    rec_pid, _, events, dead = records[0]
    assert rec_pid == pid and dead == []
    assert [(e.event, e.distinct_id, e.properties) for e in events] == [("fixed", "u1", {"a": 1})]
    # Replayed rows are marked; listing shows only the one still invalid.
    remaining = json.loads(run_cli("deadletter", "list", "--json", data_dir=data_dir).stdout)
    assert [d["payload"] for d in remaining] == [broken]
    # A second replay has nothing valid left to append.
    run_cli("deadletter", "replay", data_dir=data_dir)
    reader = LogReader(settings.log_dir)
    try:
        assert len(reader.read(0, 1 << 20)) == 1
    finally:
        reader.close()


def test_unknown_project_is_a_clear_error(data_dir: Path) -> None:
    out = run_cli("deadletter", "list", "--project", "99", data_dir=data_dir, check=False)
    assert out.returncode != 0 and "project 99 does not exist" in out.stderr


def test_orjson_payloads_roundtrip(data_dir: Path, project: dict[str, Any]) -> None:
    settings = Settings().with_data_dir(data_dir)
    _add(settings, int(project["id"]), [(3, "r", [1, "x", None])])
    listed = json.loads(run_cli("deadletter", "list", "--json", data_dir=data_dir).stdout)
    assert orjson.dumps(listed[0]["payload"]) == b'[1,"x",null]'


def test_replay_through_a_running_server(tmp_path: Path) -> None:
    from tests.capture.test_e2e import table_rows
    from tests.support.server import ServerProcess, create_project

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    project = create_project(data_dir)
    pid = int(project["id"])
    settings = Settings().with_data_dir(data_dir)
    server = ServerProcess(data_dir).start()
    try:
        _add(settings, pid, [(0, "was bad once", {"event": "late", "distinct_id": "u"})])
        # The server holds the log: a direct replay says how to go through it instead.
        out = run_cli("deadletter", "replay", data_dir=data_dir, check=False)
        assert out.returncode != 0 and "--server" in out.stderr
        out = run_cli("deadletter", "replay", "--server", server.url, "--json", data_dir=data_dir)
        assert len(json.loads(out.stdout)[0]["replayed"]) == 1
        rows = table_rows(data_dir, pid, 1)
        assert [(r["event"], r["timestamp"].timestamp()) for r in rows] == [
            ("late", RECEIVED / 1_000_000)
        ]
        # The uuid is derived from (project, dead-letter id): replaying again would dedupe.
        assert rows[0]["uuid"] == replay_uuid(pid, 1)
    finally:
        server.stop()

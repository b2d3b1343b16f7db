"""Import of the uuid encodings exports use (binary, FixedSizeBinary(16), Arrow's uuid type,
upper case, no dashes, braces, urn, base64), `eventlens import` failing on rejected rows, and
import dead letters that keep the file's values and replay to the row the file meant."""

from __future__ import annotations

import base64
import datetime
import json
import uuid
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventlens.capture.import_rows import IMPORT_MARKER, import_timestamp, import_uuid
from eventlens.capture.model import decode_log_record
from eventlens.capture.replay import revalidate
from eventlens.errors import InvalidEvent
from eventlens.ingest.bulk_import import import_file
from eventlens.ingest.log import LogReader
from eventlens.storage import state
from tests.storage.support import T0, settings_at, table_rows
from tests.support.server import run_cli

UUIDS = [uuid.UUID(int=(i + 1) * 0x0123456789ABCDEF0123456789ABCDEF % (1 << 128)) for i in range(8)]


def _spellings(u: uuid.UUID) -> list[str]:
    return [
        str(u).upper(),
        u.hex,
        u.hex.upper(),
        "{" + str(u) + "}",
        "urn:uuid:" + str(u),
        base64.b64encode(u.bytes).decode(),
        base64.urlsafe_b64encode(u.bytes).decode(),
    ]


def _parquet(path: Path, uuid_column: pa.Array, n: int) -> Path:
    table = pa.table(
        {
            "uuid": uuid_column,
            "event": ["view"] * n,
            "distinct_id": [f"d{i}" for i in range(n)],
            "timestamp": pa.array([T0 + i for i in range(n)], pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize(
    "kind", ["binary", "fixed_size_binary", "arrow_uuid", "large_binary", "strings"]
)
def test_parquet_uuid_encodings_import_every_row(tmp_path: Path, kind: str) -> None:
    s = settings_at(tmp_path / "data")
    want = [str(u) for u in UUIDS]
    if kind == "strings":  # each uuid in another spelling
        column = pa.array([_spellings(u)[i % 7] for i, u in enumerate(UUIDS)], pa.string())
    else:
        raw = [u.bytes for u in UUIDS]
        types = {
            "binary": pa.binary(),
            "fixed_size_binary": pa.binary(16),
            "arrow_uuid": pa.uuid(),
            "large_binary": pa.large_binary(),
        }
        column = pa.array(raw, types[kind])
    f = _parquet(tmp_path / "u.parquet", column, len(UUIDS))
    result = import_file(s, 1, f)
    assert (result.imported, result.invalid) == (len(UUIDS), 0), result.sample
    assert sorted(r["uuid"] for r in table_rows(s)) == sorted(want)


def test_jsonl_uuid_spellings_import_every_row(tmp_path: Path) -> None:
    s = settings_at(tmp_path / "data")
    lines = []
    for i, u in enumerate(UUIDS):
        text = _spellings(u)[i % 7]
        lines.append({"uuid": text, "event": "e", "distinct_id": "d", "timestamp": T0 // 1000})
    f = tmp_path / "u.jsonl"
    f.write_bytes(b"\n".join(orjson.dumps(x) for x in lines))
    result = import_file(s, 1, f)
    assert (result.imported, result.invalid) == (len(UUIDS), 0), result.sample
    assert sorted(r["uuid"] for r in table_rows(s)) == sorted(str(u) for u in UUIDS)


@settings(max_examples=60, deadline=None)
@given(
    u=st.uuids(),
    form=st.integers(0, 6),
    noise=st.sampled_from(["", "x", "=", "-", "{", "}", "g", " "]),
)
def test_sql_and_python_uuid_rules_agree(u: uuid.UUID, form: int, noise: str) -> None:
    """The import's SQL rule and replay's Python rule read the same spellings the same way."""
    import duckdb

    from eventlens.ingest.bulk_import import _UUID_SQL

    text = _spellings(u)[form] + noise
    sql = f"SELECT CAST({_UUID_SQL} AS VARCHAR) FROM (SELECT trim(?) AS uuid_in)"  # as n.uuid_in
    got_sql = duckdb.execute(sql, [text]).fetchone()[0]  # type: ignore[index]
    try:
        got_py = import_uuid(text)
    except InvalidEvent:
        got_py = None
    assert got_sql == got_py
    if noise == "":
        assert got_sql == str(u)


def _bad_parquet(path: Path) -> Path:
    short = b"\x01\x02\x03\x04\x05"
    good = UUIDS[0].bytes
    table = pa.table(
        {
            "uuid": pa.array([short, good, good], pa.binary()),
            "event": ["view", None, ""],
            "distinct_id": ["a", "b", "c"],
            "timestamp": pa.array([T0, T0 + 1, T0 + 2], pa.timestamp("us")),
        }
    )
    pq.write_table(table, path)
    return path


def test_import_of_bad_rows_exits_non_zero_with_counts_and_a_sample(
    data_dir: Path, project: dict[str, str], tmp_path: Path
) -> None:
    f = _bad_parquet(tmp_path / "bad.parquet")
    pid = str(project["id"])
    out = run_cli("import", str(f), "--project", pid, "--json", data_dir=data_dir, check=False)
    assert out.returncode == 2, out.stderr  # InvalidInput, via cli/errors.py
    body = json.loads(out.stdout)
    assert (body["imported"], body["invalid"]) == (0, 3)
    assert body["reasons"] == {"uuid is binary but not 16 bytes": 1, "event is missing or empty": 2}
    assert "3 rows rejected" in out.stderr and "row 0: uuid is binary" in out.stderr
    # The dead letter keeps the file's values: the bytes (base64, with their type) and the time.
    first = body["rejected_sample"][0]["payload"]
    assert first["uuid"] == {
        "$binary": base64.b64encode(b"\x01\x02\x03\x04\x05").decode(),
        "$type": "BLOB",
    }
    assert datetime.datetime.fromisoformat(first["timestamp"]) == datetime.datetime.fromtimestamp(
        T0 / 1e6, datetime.UTC
    )
    assert first[IMPORT_MARKER] == "bad.parquet"


def test_import_dead_letters_replay_to_the_rows_the_file_meant(
    data_dir: Path, project: dict[str, str], tmp_path: Path
) -> None:
    """Rows rejected for a missing event: once an operator fills it in, replay appends them
    with the file's binary uuid and native timestamp (Parquet) and its epoch-seconds time and
    base64 uuid (JSON lines)."""
    pid = int(project["id"])
    settings_ = settings_at(data_dir)
    f = _bad_parquet(tmp_path / "bad.parquet")
    jl = tmp_path / "bad.jsonl"
    b64 = base64.b64encode(UUIDS[1].bytes).decode()
    jl.write_bytes(orjson.dumps({"uuid": b64, "distinct_id": "j", "timestamp": T0 // 1_000_000}))
    for path in (f, jl):
        run_cli("import", str(path), "--project", str(pid), data_dir=data_dir, check=False)
    conn = state.connect(settings_.state_db(pid))
    try:
        rows = conn.execute("SELECT id, payload FROM dead_letters ORDER BY id").fetchall()
        conn.execute("BEGIN IMMEDIATE")
        for dl_id, payload in rows:  # the operator's fix: name the event
            fixed: dict[str, Any] = orjson.loads(payload)
            fixed["event"] = "fixed"
            conn.execute(
                "UPDATE dead_letters SET payload = ? WHERE id = ?", (orjson.dumps(fixed), dl_id)
            )
        conn.execute("COMMIT")
    finally:
        conn.close()
    out = run_cli("deadletter", "replay", "--project", str(pid), "--json", data_dir=data_dir)
    summary = json.loads(out.stdout)[0]
    assert len(summary["replayed"]) == 3, summary
    assert [s["reason"] for s in summary["still_invalid"]] == [
        "deadletter[1].uuid is 5 bytes of binary; a binary uuid must be 16 bytes"
    ]
    reader = LogReader(settings_.log_dir)
    try:
        events = [e for _, p in reader.read(0, 1 << 20) for e in decode_log_record(p)[2]]
    finally:
        reader.close()
    got = sorted((e.uuid, e.distinct_id, e.timestamp) for e in events)
    assert got == sorted(
        [
            (str(UUIDS[0]), "b", T0 + 1),
            (str(UUIDS[0]), "c", T0 + 2),
            (str(UUIDS[1]), "j", T0 // 1_000_000 * 1_000_000),
        ]
    )


def test_import_timestamp_rule_reads_magnitudes() -> None:
    sec, ms, us = 1_700_000_000, 1_700_000_000_123, 1_700_000_000_123_456
    assert import_timestamp(sec) == "2023-11-14T22:13:20+00:00"
    assert import_timestamp(str(ms)) == "2023-11-14T22:13:20.123000+00:00"
    assert import_timestamp(us) == "2023-11-14T22:13:20.123456+00:00"
    assert import_timestamp("2024-01-01T00:00:00Z") == "2024-01-01T00:00:00Z"
    event = revalidate(
        {"event": "e", "distinct_id": "d", "timestamp": sec, IMPORT_MARKER: "f.jsonl"},
        project_id=1,
        dead_letter_id=1,
        received_at_us=T0 + 10**12,
        max_event=10_000,
    )
    assert event.timestamp == sec * 1_000_000


def test_import_leaves_one_file_per_day_and_bucket(tmp_path: Path) -> None:
    """Chunks of an export not sorted by time each touch every partition; the import's closing
    compaction leaves one file per (day, bucket) with every row."""
    from eventlens.storage.event_table import EventTable

    s = settings_at(tmp_path / "data", buckets=4)
    day = 86_400_000_000
    lines = [
        {
            "event": "e",
            "distinct_id": f"d{i % 13}",
            "timestamp": (T0 + (i % 3) * day + i * 1000) // 1000,
        }
        for i in range(120)
    ]
    f = tmp_path / "u.jsonl"
    f.write_bytes(b"\n".join(orjson.dumps(x) for x in lines))
    result = import_file(s, 1, f, chunk_rows=10)  # 12 chunks, each over all 3 days
    assert result.imported == 120
    files = EventTable.open_or_create(s.event_table_dir(1)).snapshot().files
    partitions = [(x.day, x.bucket) for x in files]
    assert len(partitions) == len(set(partitions)) and sum(x.rows for x in files) == 120

"""Bulk import: the three formats give the same table as ProjectWriter.apply on the same events;
invalid rows are dead-lettered; chunking and interrupted imports change nothing."""

from __future__ import annotations

import datetime
import json
import uuid as uuid_mod
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eventlens.capture.model import CapturedEvent
from eventlens.config import Settings
from eventlens.errors import InvalidInput, NotFound
from eventlens.ingest import bulk_import
from eventlens.ingest.bulk_import import import_file
from eventlens.ingest.project_writer import ProjectWriter
from eventlens.storage import deadletters, uuid_runs
from eventlens.storage.event_table import EventTable
from tests.storage.support import ev, records, settings_at, table_rows


def _make_events() -> list[CapturedEvent]:
    out = [
        ev("view", f"anon{i % 4}", i * 3_600_000_000 + 17, {"i": i, "s": 'x,"y"'})
        for i in range(12)
    ]
    out.insert(
        3, ev("$identify", "user0", 40, {"$anon_distinct_id": "anon0", "$set": {"plan": "pro"}})
    )
    out.insert(7, ev("$create_alias", "anon1", 50, {"alias": "anon2"}))
    out.insert(9, ev("signup", "anon3", 60, {"$set_once": {"first": 1}, "$set": {"k": [1, 2]}}))
    out.append(out[0])  # a duplicate uuid
    return out


_EVENTS = _make_events()


def _events() -> list[CapturedEvent]:
    return list(_EVENTS)


BAD: list[tuple[dict[str, Any], str]] = [  # (row, reason)
    (
        {"uuid": "not-a-uuid", "event": "e", "distinct_id": "a", "timestamp": 1},
        "uuid is not a valid UUID",
    ),
    ({"event": "", "distinct_id": "a", "timestamp": 1}, "event is missing or empty"),
    (
        {"event": "e", "distinct_id": "a", "timestamp": "yesterday"},
        "timestamp is missing or not ISO 8601 / epoch",
    ),
    (
        {"event": "e", "distinct_id": "a", "timestamp": 1, "properties": "[1]"},
        "properties is not a JSON object",
    ),
    (
        {
            "event": "e",
            "distinct_id": "a",
            "timestamp": 1,
            "properties": '{"x": "%s"}' % ("y" * 1_100_000),
        },
        "event is larger than 1048576 bytes",
    ),
]


def _iso(us: int) -> str:
    return datetime.datetime.fromtimestamp(us / 1e6, datetime.UTC).isoformat()


def _rows(events: list[CapturedEvent], text_props: bool) -> list[dict[str, Any]]:
    rows = []
    for e in events:
        props = dict(e.properties)
        top_set = props.pop("$set", None)  # exercise the top-level $set column
        rows.append(
            {
                "uuid": e.uuid,
                "event": e.event,
                "distinct_id": e.distinct_id,
                "timestamp": e.timestamp,
                "properties": json.dumps(props) if text_props else props,
                "$set": (json.dumps(top_set) if text_props else top_set) if top_set else None,
            }
        )
    return rows


def _write(fmt: str, path: Path, events: list[CapturedEvent]) -> Path:
    if fmt == "jsonl":
        f = path / "events.jsonl"
        lines = [
            orjson.dumps({k: v for k, v in r.items() if v is not None})
            for r in _rows(events, False)
        ]
        lines += [orjson.dumps(b) for b, _ in BAD] + [b"{not json", b""]
        f.write_bytes(b"\n".join(lines) + b"\n")
        return f
    rows = _rows(events, True)
    for r in rows:
        r["timestamp"] = _iso(r["timestamp"])
    bad = [{**{k: None for k in rows[0]}, **b, "properties": b.get("properties")} for b, _ in BAD]
    for b in bad:
        b["timestamp"] = None if b["timestamp"] is None else str(b["timestamp"])
    table = pa.Table.from_pylist(rows + bad)
    if fmt == "csv":
        import pyarrow.csv as pcsv

        f = path / "events.csv"
        pcsv.write_csv(table, f)
        return f
    f = path / "events.parquet"
    pq.write_table(table, f)
    return f


def _comparable(settings: Settings) -> list[tuple[Any, ...]]:
    return [
        (
            r["uuid"],
            r["event"],
            r["distinct_id"],
            r["person_id"],
            r["timestamp"],
            r["properties"],
            r["person_properties"],
            r["day"],
            r["bucket"],
        )
        for r in table_rows(settings)
    ]


@pytest.fixture
def expected(tmp_path: Path) -> list[tuple[Any, ...]]:
    s = settings_at(tmp_path / "apply")
    w = ProjectWriter(s, 1)
    w.apply(records(_events()))
    w.close()
    return _comparable(s)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_each_format_gives_the_same_table_as_apply(
    tmp_path: Path, fmt: str, expected: list[tuple[Any, ...]]
) -> None:
    s = settings_at(tmp_path / "data")
    f = _write(fmt, tmp_path, _events())
    seen: list[int] = []
    result = import_file(s, 1, f, progress=seen.append)
    extra_bad = 1 if fmt == "jsonl" else 0
    assert (result.imported, result.duplicates, result.invalid) == (
        len(expected),
        1,
        len(BAD) + extra_bad,
    )
    assert sum(seen) == len(_events()) + len(BAD) + extra_bad
    assert _comparable(s) == expected
    reasons = sorted(d.reason for d in deadletters.list_(s, 1))
    assert reasons == sorted([r for _, r in BAD] + ["row is not a JSON object"] * extra_bad)
    # Re-importing a copy (another import id) stores nothing twice.
    copy = tmp_path / f"copy{f.suffix}"
    copy.write_bytes(f.read_bytes())
    again = import_file(s, 1, copy)
    assert again.imported == 0 and again.duplicates == len(expected) + 1
    assert _comparable(s) == expected


def test_small_chunks_give_the_same_table(tmp_path: Path, expected: list[tuple[Any, ...]]) -> None:
    s = settings_at(tmp_path / "data")
    import_file(s, 1, _write("jsonl", tmp_path, _events()), chunk_rows=4)
    assert _comparable(s) == expected


def test_interrupted_import_resumes_without_loss_or_duplicates(
    tmp_path: Path, expected: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    s = settings_at(tmp_path / "data")
    f = _write("jsonl", tmp_path, _events())
    original = EventTable.append
    calls = {"n": 0}

    def append_then_die(self: EventTable, *args: Any, **kwargs: Any) -> int:
        version = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:  # table committed, state not: the crash window
            raise KeyboardInterrupt
        return version

    monkeypatch.setattr(EventTable, "append", append_then_die)
    with pytest.raises(KeyboardInterrupt):
        import_file(s, 1, f, chunk_rows=4)
    monkeypatch.setattr(EventTable, "append", original)
    import_file(s, 1, f, chunk_rows=4)
    assert _comparable(s) == expected
    assert deadletters.count(s, 1) == len(BAD) + 1


def test_bad_files_raise_typed_errors(tmp_path: Path) -> None:
    s = settings_at(tmp_path / "data")
    with pytest.raises(NotFound):
        import_file(s, 1, tmp_path / "missing.csv")
    (tmp_path / "x.xml").write_text("<a/>")
    with pytest.raises(InvalidInput, match="unsupported import file type"):
        import_file(s, 1, tmp_path / "x.xml")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(InvalidInput, match="cannot read"):
        import_file(s, 1, tmp_path / "broken.parquet")
    assert bulk_import.count_rows(tmp_path / "x.xml") is None


def test_import_waits_for_consumer_recovery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eventlens.errors import Unavailable
    from eventlens.ingest import project_writer

    s = settings_at(tmp_path / "data")
    writer = ProjectWriter(s, 1)
    recs = records([ev("view", "a", 1)])

    def boom(name: str) -> None:
        if name == "after_table_commit":
            raise RuntimeError("crash")

    monkeypatch.setattr(project_writer, "checkpoint", boom)
    with pytest.raises(RuntimeError):
        writer.apply(recs)
    monkeypatch.setattr(project_writer, "checkpoint", lambda name: None)
    f = _write("jsonl", tmp_path, _events())
    with pytest.raises(Unavailable, match="recovering"):
        import_file(s, 1, f)
    writer.apply(recs)  # the consumer's restart repairs the state
    writer.close()
    assert import_file(s, 1, f).imported == len(_EVENTS) - 1


def test_import_through_uuid_runs_dedupes_against_later_capture(
    tmp_path: Path, expected: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunks of 4 rows go to the numpy runs (threshold 2); one state commit per 3 chunks.
    monkeypatch.setattr(uuid_runs, "RUN_MIN_KEYS", 2)
    monkeypatch.setattr(uuid_runs, "MERGE_FANOUT", 2)
    monkeypatch.setattr(bulk_import, "CHUNKS_PER_COMMIT", 3)
    s = settings_at(tmp_path / "data")
    import_file(s, 1, _write("parquet", tmp_path, _events()), chunk_rows=4)
    assert _comparable(s) == expected
    # The consumer's small batches (SQLite path) see the uuids the import put in runs.
    w = ProjectWriter(s, 1)
    w.apply(records(_events()))
    w.close()
    assert _comparable(s) == expected


_CLAMP_ROWS: list[tuple[Any, str | None]] = [  # (timestamp in the file, clamped)
    ("0001-01-01T00:00:00Z", "past"),
    ("1969-12-31T23:59:59Z", "past"),
    ("9999-12-31T23:59:59Z", "future"),
    ("2999-06-01T00:00:00+00:00", "future"),
    (-5000, "past"),  # epoch seconds
    ("2024-03-01T12:00:00Z", None),
    ("1970-01-01T00:00:00Z", None),
]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet-native"])
def test_implausible_timestamps_are_clamped_like_capture(tmp_path: Path, fmt: str) -> None:
    """Capture's policy (docs/capture.md): before 1970 or more than 23 h after the import's
    start -> the start time, with the markers and the file's original value."""
    s = settings_at(tmp_path / "data")
    rows = [
        {"uuid": str(uuid_mod.UUID(int=i + 1)), "event": "e", "distinct_id": "d", "timestamp": ts}
        for i, (ts, _) in enumerate(_CLAMP_ROWS)
    ]
    if fmt == "jsonl":
        f = tmp_path / "t.jsonl"
        f.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    else:
        # A real TIMESTAMP column: no text to keep, the ISO form of the value is the original.
        rows = [r for r, (ts, _) in zip(rows, _CLAMP_ROWS, strict=True) if isinstance(ts, str)]
        for r in rows:
            r["timestamp"] = datetime.datetime.fromisoformat(r["timestamp"])
        f = tmp_path / "t.parquet"
        pq.write_table(pa.Table.from_pylist(rows), f)
    before = int(datetime.datetime.now(datetime.UTC).timestamp() * 1e6)
    result = import_file(s, 1, f)
    after = int(datetime.datetime.now(datetime.UTC).timestamp() * 1e6)
    assert result.imported == len(rows) and result.invalid == 0
    want = {str(uuid_mod.UUID(int=i + 1)): (ts, c) for i, (ts, c) in enumerate(_CLAMP_ROWS)}
    for row in table_rows(s):
        ts, clamped = want[row["uuid"]]
        props = row["properties"]
        if clamped is None:
            assert "$eventlens_timestamp_clamped" not in props
            continue
        stored = row["timestamp"]
        epoch = datetime.datetime(1970, 1, 1, tzinfo=stored.tzinfo)
        assert before <= (stored - epoch) // datetime.timedelta(microseconds=1) <= after
        assert props["$eventlens_timestamp_clamped"] == clamped
        original = props["$eventlens_original_timestamp"]
        if fmt == "jsonl":
            assert original == str(ts)
        else:
            parsed = datetime.datetime.fromisoformat(original)
            assert parsed == datetime.datetime.fromisoformat(ts)

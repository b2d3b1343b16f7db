"""Same seed, same bytes; exact sizes; chunking in bounded memory."""

from __future__ import annotations

import hashlib
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventlens.errors import InvalidInput
from eventlens.generate import GENERATED_SCHEMA, generate, parse_count, write_file


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_same_seed_same_bytes_different_seed_different(tmp_path: Path, suffix: str) -> None:
    a, b, c = (tmp_path / f"{name}{suffix}" for name in "abc")
    write_file(a, 30_000, seed=7, chunk_size=11_000)
    write_file(b, 30_000, seed=7, chunk_size=11_000)
    write_file(c, 30_000, seed=8, chunk_size=11_000)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_parquet_has_schema_and_one_row_group_per_chunk(tmp_path: Path) -> None:
    path = tmp_path / "e.parquet"
    assert write_file(path, 25_000, seed=1, chunk_size=10_000) == 25_000
    f = pq.ParquetFile(path)
    assert f.schema_arrow == GENERATED_SCHEMA
    assert [f.metadata.row_group(i).num_rows for i in range(f.num_row_groups)] == [
        10_000,
        10_000,
        5_000,
    ]
    table = f.read()
    uuids = table.column("uuid").to_pylist()
    assert len(set(uuids)) == len(uuids)
    assert all(uuid.UUID(u).version == 7 for u in uuids[:1000])


def test_jsonl_lines_match_parquet_rows(tmp_path: Path) -> None:
    import orjson

    write_file(tmp_path / "e.parquet", 2_000, seed=3)
    write_file(tmp_path / "e.jsonl", 2_000, seed=3)
    rows = pq.read_table(tmp_path / "e.parquet").to_pylist()
    lines = (tmp_path / "e.jsonl").read_bytes().splitlines()
    assert len(lines) == len(rows) == 2_000
    for row, line in zip(rows[::97], lines[::97], strict=True):
        obj = orjson.loads(line)
        assert obj["uuid"] == row["uuid"] and obj["distinct_id"] == row["distinct_id"]
        assert obj["properties"] == orjson.loads(row["properties"])
        assert datetime.fromisoformat(obj["timestamp"]) == row["timestamp"]


@settings(max_examples=15, deadline=None)
@given(n=st.integers(0, 12_000), chunk=st.integers(40, 5_000), seed=st.integers(0, 2**32))
def test_sizes_are_exact_and_batches_bounded(n: int, chunk: int, seed: int) -> None:
    sizes = [len(b) for b in generate(n, seed=seed, chunk_size=chunk)]
    assert sum(sizes) == n
    assert all(0 < s <= chunk for s in sizes)
    assert len(sizes) == -(-n // chunk)


def test_memory_does_not_grow_with_the_number_of_events() -> None:
    def peak(n: int) -> int:
        tracemalloc.start()
        try:
            arrow_peak = 0
            for batch in generate(n, seed=5, chunk_size=10_000):
                arrow_peak = max(arrow_peak, pa.total_allocated_bytes())
                del batch
            return tracemalloc.get_traced_memory()[1] + arrow_peak
        finally:
            tracemalloc.stop()

    small, large = peak(20_000), peak(200_000)
    assert large < 1.5 * small, (small, large)


def test_window_and_end_now() -> None:
    end = datetime(2025, 6, 1, tzinfo=UTC)
    t = pa.Table.from_batches(list(generate(5_000, seed=2, end=end, days=14)))
    ts = t.column("timestamp").to_pylist()
    assert min(ts) >= end - timedelta(days=14) and max(ts) < end
    now = datetime.now(UTC)
    t = pa.Table.from_batches(list(generate(2_000, end=now, days=3)))
    assert max(t.column("timestamp").to_pylist()) < now


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_events": -1}, "n_events"),
        ({"n_events": 10, "days": 0}, "days"),
        ({"n_events": 10, "seed": -2}, "seed"),
        ({"n_events": 10, "chunk_size": 0}, "chunk_size"),
        ({"n_events": 10, "chunk_size": 2_000_001}, "chunk_size"),
        ({"n_events": 10, "end": datetime(2025, 1, 1)}, "end"),
    ],
)
def test_bad_arguments_are_typed_errors(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        list(generate(**kwargs))  # type: ignore[arg-type]
    assert err.value.field == field


def test_unknown_output_suffix(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="output format"):
        write_file(tmp_path / "e.csv", 10)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("text", "value"), [("10000", 10_000), ("10k", 10_000), ("1M", 1_000_000), ("2.5m", 2_500_000)]
)
def test_parse_count(text: str, value: int) -> None:
    assert parse_count(text) == value


@pytest.mark.parametrize("text", ["", "ten", "1.5", "-1", "1e3", "5x"])
def test_parse_count_rejects(text: str) -> None:
    with pytest.raises(InvalidInput, match="event count"):
        parse_count(text)


def test_same_bytes_in_another_process(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    here, there = tmp_path / "here.parquet", tmp_path / "there.parquet"
    write_file(here, 20_000, seed=4, chunk_size=7_000)
    code = (
        "from eventlens.generate import write_file;"
        f"write_file({str(there)!r}, 20_000, seed=4, chunk_size=7_000)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    assert _digest(here) == _digest(there)

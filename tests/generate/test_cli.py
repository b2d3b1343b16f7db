"""`eventlens generate` from the command line."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from eventlens.cli.main import app

runner = CliRunner()


def test_generate_writes_the_requested_count(tmp_path: Path) -> None:
    out = tmp_path / "e.jsonl"
    result = runner.invoke(app, ["generate", "--events", "3k", "--seed", "9", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(out.read_bytes().splitlines()) == 3_000
    assert "3,000 events" in result.output and "events/s" in result.output


def test_generate_parquet_with_end_now(tmp_path: Path) -> None:
    out = tmp_path / "e.parquet"
    result = runner.invoke(
        app, ["generate", "--events", "2000", "--days", "2", "--end", "now", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert pq.ParquetFile(out).metadata.num_rows == 2_000


def test_generate_rejects_bad_input_with_exit_2(tmp_path: Path) -> None:
    for args, message in (
        (["--events", "lots", "--out", str(tmp_path / "e.parquet")], "event count"),
        (["--events", "10", "--out", str(tmp_path / "e.csv")], "output format"),
        (["--events", "10", "--end", "yesterday", "--out", str(tmp_path / "e.jsonl")], "--end"),
        (["--events", "10", "--days", "0", "--out", str(tmp_path / "e.jsonl")], "days"),
    ):
        result = runner.invoke(app, ["generate", *args])
        assert result.exit_code == 2, result.output
        assert message in result.output
    assert not list(tmp_path.iterdir())

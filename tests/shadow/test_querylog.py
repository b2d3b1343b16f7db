"""The production query log: one line per query, bounded by rotation, read back strictly."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventlens.config import Settings
from eventlens.errors import InvalidInput
from eventlens.query.querylog import QueryLog, computed, read_log
from eventlens.query.warmup import recent_queries
from eventlens.shadow.replay import replay_log


def _entry(i: int) -> dict[str, object]:
    return {"time": "2026-11-01T00:00:00+00:00", "project": 1, "query": {"i": i}, "data_version": i}


def test_rotation_keeps_one_backup_and_bounds_the_size(tmp_path: Path) -> None:
    path = tmp_path / "query-log.jsonl"
    log = QueryLog(path, max_bytes=1000)
    for i in range(100):
        log.append(_entry(i))
    log.close()
    backup = path.with_name(path.name + ".1")
    assert path.stat().st_size <= 1000 and backup.stat().st_size <= 1000
    current = [e["data_version"] for _, e in read_log(path)]
    older = [e["data_version"] for _, e in read_log(backup)]
    assert current[-1] == 99 and older[-1] == current[0] - 1  # no line lost at the seam


def test_bad_lines_are_named_by_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"time": "t", "project": 1, "query": {}, "data_version": 0}\n\n{"time": 1}\n')
    with pytest.raises(InvalidInput, match=r"log.jsonl:3: a query log line needs"):
        list(read_log(path))
    path.write_text("not json\n")
    with pytest.raises(InvalidInput, match=r"log.jsonl:1: not JSON"):
        list(read_log(path))
    with pytest.raises(InvalidInput, match="cannot read query log"):
        list(read_log(tmp_path / "missing.jsonl"))


def test_cached_answers_are_logged_marked_and_skipped_by_warm_up_and_replay(
    tmp_path: Path,
) -> None:
    path = tmp_path / "query-log.jsonl"
    log = QueryLog(path)
    log.append(_entry(1))  # the computation
    for result in ("hit", "coalesced", "stale"):
        log.append({**_entry(1), "cached": result})
    log.close()
    entries = [e for _, e in read_log(path)]
    assert [computed(e) for e in entries] == [True, False, False, False]
    assert recent_queries(path) == {1: [_entry(1)]}
    # Skipped before anything is read: the project has no data at all here.
    cached_only = tmp_path / "cached.jsonl"
    cached_only.write_text("".join(line + "\n" for line in path.read_text().splitlines()[1:]))
    settings = Settings().with_data_dir(tmp_path / "data")
    report = replay_log(settings, cached_only, primary=None, candidate="reference")
    assert report["replayed"] == 0 and report["outcomes"] == {}

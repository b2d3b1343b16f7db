"""`eventlens bench query` on a tiny generated table: every hand-written DuckDB and chdb peer
query returns the parallel engine's numbers (the harness's equality check is what makes the
benchmark's ratios meaningful), the parallel engine equals the reference on the benchmark mix,
the chdb copy is reused on the next run, and the report plots to a PNG."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from eventlens.bench.chdb_peer import ChdbPeer
from eventlens.bench.plot import plot_report
from eventlens.bench.query import NOW, agrees, run_bench
from eventlens.bench.query_data import load_bench_table, query_mix
from eventlens.query import normalise, parse_query
from eventlens.query.parallel import ParallelEngine

EVENTS = 4000


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("bench")
    engines = ["parallel", "duckdb", "chdb", "reference"]
    return run_bench(EVENTS, root, engines, runs=1, progress=lambda _: None) | {"_root": root}


def test_every_peer_agrees_with_the_parallel_engine(report: dict[str, Any]) -> None:
    rows = report["results"]
    assert {r["query"] for r in rows} == set(query_mix())
    compared = [r for r in rows if r.get("expressible", True)]
    assert all(r["equal_to_parallel"] for r in compared), [
        (r["engine"], r["query"]) for r in compared if not r["equal_to_parallel"]
    ]
    chdb = [r for r in compared if r["engine"] == "chdb"]
    assert {r["query"] for r in chdb} == set(query_mix())  # chdb expresses every query of the mix
    assert sum(r["engine"] == "duckdb" for r in compared) == len(query_mix())
    assert all(r["first_ms"] > 0 and r["median_ms"] > 0 for r in compared)


def test_report_has_load_floor_ratios_and_rss(report: dict[str, Any]) -> None:
    load = report["peer_load"]["chdb"]
    assert load["rows"] == EVENTS and load["bytes_on_disk"] > 0 and load["load_s"] > 0
    assert set(report["floor"]) == set(query_mix())
    assert all(f["rows"] > 0 and f["ms"] >= 0 for f in report["floor"].values())
    assert set(report["ratios"]["funnel"]) == {"duckdb", "chdb", "reference"}
    assert set(report["engine_rss"]) == {"parallel", "duckdb", "chdb", "reference"}
    assert report["peak_rss_mb"] > 0
    timed = [r for r in report["results"] if "median_ms" in r]
    # Per cell: process CPU seconds and the load average of every timed run.
    assert all(len(r["cpu_s"]) == len(r["load_1m"]) == r["runs"] for r in timed)
    assert all(r["median_cpu_ms"] >= 0 and r["mean_load_1m"] >= 0 for r in timed)


def test_chdb_copy_is_reused_and_a_wrong_answer_is_caught(report: dict[str, Any]) -> None:
    root: Path = report["_root"]
    snapshot = load_bench_table(root / f"bench-{EVENTS}", EVENTS).snapshot()
    peer = ChdbPeer(snapshot, root / f"bench-{EVENTS}.chdb")
    try:
        assert peer.load_info["reused"] is True
        answer = peer.run("lifecycle")
    finally:
        peer.close()
    nq = normalise(parse_query(query_mix()["lifecycle"]), timezone="UTC", week_start=0, now=NOW)
    ours = ParallelEngine().run(nq, snapshot)
    assert agrees("lifecycle", answer, ours) is True
    wrong = copy.deepcopy(answer)
    day = next(i for i, x in enumerate(wrong["new"]) if x)
    wrong["new"][day] -= 1
    assert agrees("lifecycle", wrong, ours) is False


def test_plot_writes_a_png(report: dict[str, Any], tmp_path: Path) -> None:
    out = plot_report(report, tmp_path / "plots" / "mix.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 1000

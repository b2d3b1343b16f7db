"""`eventlens bench query` on a tiny generated table: every hand-written DuckDB peer query
returns the parallel engine's numbers (the harness's equality check is what makes the benchmark's
ratios meaningful), and the parallel engine equals the reference on the benchmark mix."""

from __future__ import annotations

from pathlib import Path

from eventlens.bench.query import run_bench


def test_peers_agree_on_the_benchmark_mix(tmp_path: Path) -> None:
    report = run_bench(
        4000, tmp_path, ["parallel", "duckdb", "reference"], runs=1, progress=lambda _: None
    )
    rows = report["results"]
    assert {r["query"] for r in rows} >= {"trends_breakdown", "funnel", "retention", "lifecycle"}
    compared = [r for r in rows if r.get("expressible", True)]
    assert all(r["equal_to_parallel"] for r in compared), [
        (r["engine"], r["query"]) for r in compared if not r["equal_to_parallel"]
    ]
    assert sum(r["engine"] == "duckdb" for r in compared) >= 5

"""`bench query --api`: the mix through a real `eventlens serve` on loopback agrees with the
in-process engine on every query, with the server's CPU in each cell and the request path's
fixed costs reported."""

from __future__ import annotations

from pathlib import Path

from eventlens.bench.query import run_bench

# Two of the mix keep the test cheap: a trends breakdown (null and other rows) and a funnel.
QUERIES = ["trends_breakdown", "funnel"]


def test_the_api_mode_times_a_real_server_and_agrees(tmp_path: Path) -> None:
    report = run_bench(
        3000,
        tmp_path / "bench",
        ["parallel"],
        runs=1,
        progress=lambda _: None,
        queries=QUERIES,
        api=True,
    )
    api = [r for r in report["results"] if r["engine"] == "api"]
    assert {r["query"] for r in api} == set(QUERIES)
    assert all(r["equal_to_parallel"] for r in api), [
        r["query"] for r in api if not r["equal_to_parallel"]
    ]
    # A request costs the server CPU too: the cell's CPU is at least the server's share > 0.
    assert sum(sum(r["cpu_s"]) for r in api) > 0
    assert report["api"]["cold_first_ms"] > 0
    assert set(report["api"]["timings"]) == set(QUERIES)
    costs = report["request_costs"]
    assert set(costs["plan_ms"]) == set(QUERIES)
    empty = costs["empty_query"]
    assert 0 <= empty["engine_ms"] <= empty["wall_ms"]

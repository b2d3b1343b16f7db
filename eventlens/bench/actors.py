"""`eventlens bench actors`: how long the persons behind one number take (benchmark, never a
timed test). On the query benchmark's data (`bench-N/`, query_data.load_bench_table), for the
mix's funnel and trends breakdown: the insight itself, then the actors of a funnel step, a
drop-off, a funnel breakdown value and a trends point, on the parallel engine (resident
buckets warm after its first run) and, up to 1M events, the first point on the reference
engine. Each actors
list is checked equal between the engines and its length against the number shown.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eventlens.bench.query_data import load_bench_table, query_mix
from eventlens.generate.shape import DEFAULT_END
from eventlens.query import normalise, parse_query
from eventlens.query.model import InsightActorsQuery
from eventlens.query.parallel import ParallelEngine
from eventlens.query.reference import ReferenceEngine
from eventlens.query.semantics.actors import resolve

REFERENCE_MAX_EVENTS = 1_000_000


def _points(mix: dict[str, Any], results: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, insight name, selector) of the points timed."""
    funnel_bd = results["funnel_breakdown"]
    value = funnel_bd[0][0]["breakdown_value"] if funnel_bd else None
    trends = results["trends_breakdown"]
    dau = next(r for r in trends if r["series_index"] == 1)
    return [
        ("funnel step 2", "funnel", {"funnelStep": 2}),
        ("funnel step 3", "funnel", {"funnelStep": 3}),
        ("funnel drop-off before 2", "funnel", {"funnelStep": -2}),
        (
            "funnel breakdown step 2",
            "funnel_breakdown",
            {"funnelStep": 2, "funnelStepBreakdown": value},
        ),
        (
            "trends dau point",
            "trends_breakdown",
            {"series": 1, "breakdown": dau["breakdown_value"], "day": dau["days"][-2]},
        ),
    ]


def run_actors_bench(
    size: int, data_dir: Path, runs: int = 5, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    """Time the points of `_points` (`runs` timed runs after one warm-up per engine); returns
    one row per point: `total`, `shown`, the parallel engine's min / median ms (and the
    reference's single run up to REFERENCE_MAX_EVENTS), and the insight's own median ms."""
    table = load_bench_table(data_dir / f"bench-{size}", size)
    snapshot = table.snapshot()
    events = sum(f.rows for f in snapshot.files)
    progress(f"data: {events:,} events, {len(snapshot.files)} files")
    mix = query_mix(DEFAULT_END)
    names = ("funnel", "funnel_breakdown", "trends_breakdown")
    nqs = {
        n: normalise(parse_query(mix[n]), timezone="UTC", week_start=0, now=DEFAULT_END)
        for n in names
    }
    parallel = ParallelEngine("local")
    results: dict[str, Any] = {}
    insight_ms: dict[str, float] = {}
    for n in names:
        results[n] = parallel.run(nqs[n], snapshot)  # the first run makes the buckets resident
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            parallel.run(nqs[n], snapshot)
            times.append((time.perf_counter() - t0) * 1000)
        insight_ms[n] = statistics.median(times)
    rows: list[dict[str, Any]] = []
    for label, name, selector in _points(mix, results):
        sel = InsightActorsQuery.model_validate({"source": mix[name], **selector})
        point = resolve(nqs[name], sel, results[name])
        ids = parallel.actors(point.query, snapshot, point.cell)  # warm-up
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            again = parallel.actors(point.query, snapshot, point.cell)
            times.append((time.perf_counter() - t0) * 1000)
        assert again == ids
        row: dict[str, Any] = {
            "point": label,
            "total": len(ids),
            "shown": point.shown,
            "parallel_min_ms": round(min(times), 1),
            "parallel_median_ms": round(statistics.median(times), 1),
            "insight_median_ms": round(insight_ms[name], 1),
        }
        # The reference reads every event into Python per call (85 s at 1M here): once, for
        # the first point, as the equality check.
        if events <= REFERENCE_MAX_EVENTS and not rows:
            t0 = time.perf_counter()
            want = ReferenceEngine().actors(point.query, snapshot, point.cell)
            row["reference_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            row["equal_to_reference"] = want == ids
        rows.append(row)
        progress(
            f"{label:28} {row['total']:>8,} persons (shown {row['shown']:,.0f})  parallel "
            f"median {row['parallel_median_ms']:.1f} ms (insight {row['insight_median_ms']:.1f} ms)"
            + (f", reference {row['reference_ms']:.0f} ms" if "reference_ms" in row else "")
        )
    return {"events": events, "runs": runs, "results": rows}

"""`eventlens bench query`: the insight query mix (benchmark.md) on generated data, per engine.

Engines: `parallel` (EventLens), `reference` (the single-threaded oracle), `duckdb` (hand-written
SQL over the same Parquet files). One warm-up, then `runs` timed runs per (engine, query);
min / median / p99 (max when runs < 100) and peak RSS. Every peer's numbers are checked against
the parallel engine's; a query a peer cannot express is reported as such, not hidden.
"""

from __future__ import annotations

import platform
import resource
import statistics
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from eventlens.bench.query_data import load_bench_table, query_mix, query_range
from eventlens.generate.shape import DEFAULT_END
from eventlens.query import normalise, parse_query
from eventlens.query.parallel import ParallelEngine
from eventlens.query.reference import ReferenceEngine
from eventlens.storage.event_table import Snapshot

DAY_US = 86_400_000_000
NOW = DEFAULT_END


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _files_sql(snapshot: Snapshot) -> str:
    return "read_parquet([" + ", ".join(f"'{f.path}'" for f in snapshot.files) + "])"


class DuckDBPeer:
    """Hand-written SQL for the mix (UTC, Sunday weeks). Returns comparable numbers."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.con = duckdb.connect()
        self.src = _files_sql(snapshot)
        dr = query_range()
        self.lo = _us(datetime.fromisoformat(dr["date_from"]).replace(tzinfo=UTC))
        self.hi = _us(datetime.fromisoformat(dr["date_to"]).replace(tzinfo=UTC)) + DAY_US

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(sql).fetchall()

    def run(self, name: str) -> Any:
        fn: Callable[[], Any] | None = getattr(self, f"q_{name}", None)
        return None if fn is None else fn()

    def q_trends_breakdown(self) -> Any:
        rows = self._rows(
            f"""SELECT (epoch_us(timestamp) - {self.lo}) // {DAY_US} AS d,
                   json_extract_string(properties, '$."$browser"') AS b,
                   count(*), count(DISTINCT person_id)
            FROM {self.src}
            WHERE event = '$pageview' AND epoch_us(timestamp) >= {self.lo}
              AND epoch_us(timestamp) < {self.hi}
            GROUP BY ALL"""
        )
        return {(int(d), b): (c, u) for d, b, c, u in rows}

    def q_trends_sum_filter(self) -> Any:
        # Week buckets start on Sunday; the first bucket starts at the week holding date_from.
        first = _week_start(self.lo)
        rows = self._rows(
            f"""SELECT (epoch_us(timestamp) - {first}) // {7 * DAY_US} AS w,
                   sum(TRY_CAST(json_extract_string(properties, '$.revenue') AS DOUBLE))
            FROM {self.src}
            WHERE event = 'purchase' AND epoch_us(timestamp) >= {first}
              AND epoch_us(timestamp) < {self.hi}
              AND json_extract_string(properties, '$.country') IN ('US', 'DE', 'GB')
            GROUP BY ALL"""
        )
        return {int(w): float(s or 0.0) for w, s in rows}

    def q_funnel(self) -> Any:
        window = 7 * DAY_US
        rows = self._rows(
            f"""WITH e AS (
                  SELECT person_id AS p, epoch_us(timestamp) AS t, event FROM {self.src}
                  WHERE epoch_us(timestamp) >= {self.lo} AND epoch_us(timestamp) < {self.hi}
                    AND event IN ('$pageview', 'signup', 'purchase')),
                a AS (SELECT p, t FROM e WHERE event = '$pageview'),
                s AS (SELECT p, t FROM e WHERE event = 'signup'),
                u AS (SELECT p, t FROM e WHERE event = 'purchase'),
                a1 AS (SELECT a.p, a.t AS t0, s.t AS t1
                       FROM a ASOF LEFT JOIN s ON a.p = s.p AND s.t >= a.t),
                a2 AS (SELECT a1.p, a1.t0, a1.t1, u.t AS t2
                       FROM a1 ASOF LEFT JOIN u ON a1.p = u.p AND u.t >= a1.t1),
                lv AS (SELECT p, max(CASE WHEN t1 IS NOT NULL AND t1 - t0 <= {window} THEN
                         CASE WHEN t2 IS NOT NULL AND t2 - t0 <= {window} THEN 3 ELSE 2 END
                         ELSE 1 END) AS level FROM a2 GROUP BY p)
            SELECT level, count(*) FROM lv GROUP BY level"""
        )
        by_level = dict(rows)
        return [sum(c for lvl, c in by_level.items() if lvl > s) for s in range(3)]

    def q_retention(self) -> Any:
        last = _week_start(self.hi - 1)
        first = last - 7 * 7 * DAY_US
        end = last + 7 * DAY_US
        rows = self._rows(
            f"""WITH pk AS (
                  SELECT DISTINCT person_id AS p, (epoch_us(timestamp) - {first}) // {7 * DAY_US}
                    AS k FROM {self.src}
                  WHERE event = '$pageview' AND epoch_us(timestamp) >= {first}
                    AND epoch_us(timestamp) < {end})
            SELECT c.k, r.k - c.k, count(*) FROM pk c JOIN pk r ON c.p = r.p AND r.k >= c.k
            GROUP BY ALL"""
        )
        return {(int(c), int(k)): n for c, k, n in rows}

    def q_stickiness(self) -> Any:
        rows = self._rows(
            f"""SELECT n, count(*) FROM (
                  SELECT person_id, count(DISTINCT (epoch_us(timestamp) - {self.lo}) // {DAY_US})
                    AS n FROM {self.src}
                  WHERE event = '$pageview' AND epoch_us(timestamp) >= {self.lo}
                    AND epoch_us(timestamp) < {self.hi}
                  GROUP BY person_id) GROUP BY n"""
        )
        return dict(rows)


def _us(dt: datetime) -> int:
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _week_start(us: int) -> int:
    day = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
    d = day.date() - timedelta(days=(day.weekday() + 1) % 7)  # Sunday
    return _us(datetime(d.year, d.month, d.day, tzinfo=UTC))


def agrees(name: str, peer: Any, ours: Any) -> bool | None:
    """Does a peer's answer equal the parallel engine's? None: the peer cannot express it."""
    if peer is None:
        return None
    if name == "trends_breakdown":
        for row in ours:
            value = row["breakdown_value"]
            if value.startswith("$$_posthog"):
                continue
            col = 0 if row["math"] == "total" else 1
            for d, x in enumerate(row["data"]):
                if peer.get((d, value), (0, 0))[col] != x:
                    return False
        return True
    if name == "trends_sum_filter":
        return all(
            abs(peer.get(w, 0.0) - x) <= 1e-6 * max(1.0, abs(x))
            for w, x in enumerate(ours[0]["data"])
        )
    if name == "funnel":
        return bool(peer == [s["count"] for s in ours])
    if name == "retention":
        return all(
            peer.get((c, k), 0) == v["count"]
            for c, row in enumerate(ours)
            for k, v in enumerate(row["values"])
        )
    if name == "stickiness":
        return all(peer.get(n + 1, 0) == x for n, x in enumerate(ours[0]["data"]))
    return None


def _runner(
    engine: str,
    name: str,
    nq: Any,
    snapshot: Snapshot,
    parallel: ParallelEngine,
    reference: ReferenceEngine,
    duck: DuckDBPeer | None,
) -> Callable[[], Any]:
    if engine == "parallel":
        return lambda: parallel.run(nq, snapshot)
    if engine == "reference":
        return lambda: reference.run(nq, snapshot)
    return lambda: duck.run(name) if duck is not None else None


def same(a: Any, b: Any, rel: float = 1e-9) -> bool:
    """Equal JSON results, numbers within `rel` relative (the engines' agreement rule)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], rel) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, rel) for x, y in zip(a, b, strict=True))
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        return abs(a - b) <= rel * max(abs(a), abs(b)) or a == b
    return bool(a == b)


def _stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p99 = float(np.percentile(ordered, 99)) if len(ordered) >= 100 else ordered[-1]
    return {
        "min_ms": ordered[0] * 1000,
        "median_ms": statistics.median(ordered) * 1000,
        "p99_ms": p99 * 1000,
    }


def run_bench(
    size: int,
    data_dir: Path,
    engines: list[str],
    runs: int = 7,
    reference_runs: int | None = None,
    progress: Callable[[str], None] = print,
    queries: list[str] | None = None,
) -> dict[str, Any]:
    """Load (or reuse) the data, then time every (engine, query) (`queries`: a subset of the
    mix by name). Returns the full report."""
    started = time.perf_counter()
    table = load_bench_table(data_dir / f"bench-{size}", size)
    snapshot = table.snapshot()
    load_s = time.perf_counter() - started
    progress(f"data: {size:,} events, {len(snapshot.files)} files, ready in {load_s:.1f} s")
    parallel = ParallelEngine()
    reference = ReferenceEngine()
    duck = DuckDBPeer(snapshot) if "duckdb" in engines else None
    results: list[dict[str, Any]] = []
    for name, query in query_mix().items():
        if queries and name not in queries:
            continue
        nq = normalise(parse_query(query), timezone="UTC", week_start=0, now=NOW)
        ours = parallel.run(nq, snapshot)
        for engine in engines:
            fn = _runner(engine, name, nq, snapshot, parallel, reference, duck)
            answer = fn()  # warm-up
            if engine == "duckdb" and answer is None:
                results.append({"engine": engine, "query": name, "expressible": False})
                progress(f"{name:18s} {engine:9s} not expressed in hand-written SQL")
                continue
            equal = (
                True
                if engine == "parallel"
                else (agrees(name, answer, ours) if engine == "duckdb" else same(answer, ours))
            )
            n = reference_runs if engine == "reference" and reference_runs else runs
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            row = {
                "engine": engine,
                "query": name,
                "runs": n,
                "equal_to_parallel": equal,
                "times_s": times,
                **_stats(times),
            }
            results.append(row)
            progress(
                f"{name:18s} {engine:9s} median {row['median_ms']:9.1f} ms  "
                f"min {row['min_ms']:9.1f}  p99 {row['p99_ms']:9.1f}  equal={equal}"
            )
    return {
        "size": size,
        "files": len(snapshot.files),
        "load_s": load_s,
        "peak_rss_mb": _peak_rss_mb(),
        "machine": {
            "cores": __import__("os").cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "commit": _commit(),
        "results": results,
    }


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False, timeout=5
        )
        return out.stdout.strip()
    except OSError:
        return ""

"""`eventlens bench query`: the insight query mix (benchmark.md) on generated data, per engine.

Engines: `parallel` (EventLens), `reference` (the single-threaded oracle; 10m and below only),
`duckdb` (hand-written SQL over the same Parquet files), `chdb` (hand-written ClickHouse SQL on
the same events loaded into a MergeTree table, `eventlens.bench.chdb_peer`). One warm-up round (its
time is kept as `first_ms`), then `runs` timed rounds, engines interleaved (`method.schedule`:
every engine runs query q before any runs q + 1, the order rotated per round), with the process
CPU seconds and the 1-minute load average recorded per run; min / median / p99 (max
when runs < 100), peak RSS, the floor (a numpy sum over as many timestamps as the query's read
range holds) and the parallel engine's ratio to each peer. Every peer's numbers are checked
against the parallel engine's; a query a peer cannot express is reported as such, not hidden.
"""

from __future__ import annotations

import gc
import os
import platform
import resource
import statistics
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from eventlens.bench.bounds import DAY_US, query_bounds, retention_bounds, week_start
from eventlens.bench.chdb_peer import (
    LIFECYCLE_STATUSES,
    NULL_BREAKDOWN,
    PATHS_STEPS,
    SESSION_GAP_US,
    ChdbPeer,
)
from eventlens.bench.method import BreakdownCounts, Cell, breakdown_mismatches, schedule
from eventlens.bench.method import _cpu_s as method_cpu
from eventlens.bench.query_data import (
    bench_cohorts,
    cohort_window,
    load_bench_table,
    load_import_table,
    query_mix,
)
from eventlens.generate.shape import DEFAULT_END
from eventlens.query import normalise, parse_query
from eventlens.query.parallel import ParallelEngine, resident_cache
from eventlens.query.reference import ReferenceEngine
from eventlens.storage.event_table import Snapshot

NOW = DEFAULT_END
# "ray": the parallel engine on the Ray executor (bucket-owner actors, deploy-cluster.md).
# "api": the parallel engine through a real `eventlens serve` on loopback (--api, bench/api.py).
ENGINES = ("parallel", "api", "duckdb", "chdb", "reference", "ray")
PEERS = ("duckdb", "chdb", "reference")
REFERENCE_MAX_EVENTS = 10_000_000  # benchmark.md: the reference engine runs at 1m and 10m only
OTHER_BREAKDOWN = "$$_posthog_breakdown_other_$$"
BREAKDOWN_LIMIT = 25  # the mix's trends breakdown leaves breakdown_limit at its default


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _files_sql(snapshot: Snapshot) -> str:
    return "read_parquet([" + ", ".join(f"'{f.path}'" for f in snapshot.files) + "])"


class DuckDBPeer:
    """Hand-written SQL for the mix (UTC, Sunday weeks). Returns comparable numbers."""

    def __init__(self, snapshot: Snapshot, end: datetime | None = None) -> None:
        self.con = duckdb.connect()
        self.src = _files_sql(snapshot)
        self.lo, self.hi = query_bounds(end)
        self.cohort_lo, self.cohort_hi = cohort_window(end)

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(sql).fetchall()

    def q_trends_cohort(self) -> Any:
        """Per day: pageviews and distinct persons of the persons with >= 2 purchases in the
        cohort's window: {day: (events, persons)}."""
        rows = self._rows(
            f"""WITH m AS (SELECT person_id FROM {self.src} WHERE event = 'purchase'
                  AND epoch_us(timestamp) >= {self.cohort_lo}
                  AND epoch_us(timestamp) < {self.cohort_hi}
                GROUP BY person_id HAVING count(*) >= 2)
            SELECT (epoch_us(timestamp) - {self.lo}) // {DAY_US} AS d, count(*),
                   count(DISTINCT person_id)
            FROM {self.src} WHERE event = '$pageview' AND epoch_us(timestamp) >= {self.lo}
              AND epoch_us(timestamp) < {self.hi} AND person_id IN (SELECT person_id FROM m)
            GROUP BY ALL"""
        )
        return {int(d): (int(c), int(u)) for d, c, u in rows}

    def run(self, name: str) -> Any:
        fn: Callable[[], Any] | None = getattr(self, f"q_{name}", None)
        return None if fn is None else fn()

    def q_trends_breakdown(self) -> Any:
        """As `ChdbPeer.q_trends_breakdown`: a `BreakdownCounts`."""
        where = f"""event = '$pageview' AND epoch_us(timestamp) >= {self.lo}
              AND epoch_us(timestamp) < {self.hi}"""
        b = """nullif(json_extract_string(properties, '$."$browser"'), '')"""
        day = f"(epoch_us(timestamp) - {self.lo}) // {DAY_US}"
        rows = self._rows(
            f"""SELECT {day} AS d, {b} AS b, count(*), count(DISTINCT person_id)
            FROM {self.src} WHERE {where} GROUP BY ALL"""
        )
        totals = self._rows(
            f"SELECT {b} AS b, count(*), count(DISTINCT person_id) FROM {self.src} "
            f"WHERE {where} GROUP BY ALL"
        )

        def other_persons(values: set[str | None]) -> dict[int, int]:
            named = sorted(v for v in values if v is not None)
            got = self.con.execute(
                f"""SELECT d, count(DISTINCT p) FROM (SELECT {day} AS d, {b} AS b,
                       person_id AS p FROM {self.src} WHERE {where})
                WHERE list_contains(?, b) OR (? AND b IS NULL) GROUP BY d""",
                [named, None in values],
            ).fetchall()
            return {int(d): int(n) for d, n in got}

        return BreakdownCounts(
            {(int(d), v): (int(c), int(u)) for d, v, c, u in rows},
            {v: (int(c), int(u)) for v, c, u in totals},
            other_persons,
        )

    def q_trends_sum_filter(self) -> Any:
        # Week buckets start on Sunday; the first bucket starts at the week holding date_from.
        first = week_start(self.lo)
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

    def _funnel_levels(self, extra: str = "") -> str:
        """CTEs e (the funnel's events, plus `extra` columns) and lv (p, level 1-3)."""
        window = 7 * DAY_US
        return f"""WITH e AS (
                  SELECT person_id AS p, epoch_us(timestamp) AS t, event{extra} FROM {self.src}
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
                         ELSE 1 END) AS level FROM a2 GROUP BY p)"""

    def q_funnel(self) -> Any:
        rows = self._rows(self._funnel_levels() + " SELECT level, count(*) FROM lv GROUP BY level")
        by_level = dict(rows)
        return [sum(c for lvl, c in by_level.items() if lvl > s) for s in range(3)]

    def q_funnel_breakdown(self) -> Any:
        # First touch: the value on the person's earliest funnel event (any step) having one.
        browser = """, json_extract_string(properties, '$."$browser"') AS b"""
        rows = self._rows(
            self._funnel_levels(browser)
            + """, fb AS (SELECT p, arg_min(b, t) FILTER (WHERE b IS NOT NULL AND b <> '') AS b
                          FROM e GROUP BY p)
            SELECT fb.b, lv.level, count(*) FROM lv JOIN fb USING (p) GROUP BY ALL"""
        )
        out: dict[str, list[int]] = {}
        for b, level, n in rows:
            counts = out.setdefault(b or NULL_BREAKDOWN, [0, 0, 0])
            for s in range(level):
                counts[s] += n
        return out

    def q_retention(self) -> Any:
        first, end = retention_bounds(self.hi)
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

    def q_lifecycle(self) -> Any:
        # Bit b of m = active on day b of [lo - 1 day, hi) (bit 0: the day before the range, read
        # to classify the first day); f = day of the first-ever $pageview (all data).
        origin = self.lo - DAY_US
        days = (self.hi - self.lo) // DAY_US
        rows = self._rows(
            f"""WITH pp AS (
                  SELECT (min(epoch_us(timestamp)) - {origin}) // {DAY_US} AS f,
                    bit_or(CASE WHEN epoch_us(timestamp) >= {origin} THEN
                      (1::UBIGINT) << ((epoch_us(timestamp) - {origin}) // {DAY_US})
                      ELSE 0::UBIGINT END) AS m
                  FROM {self.src}
                  WHERE event = '$pageview' AND epoch_us(timestamp) < {self.hi}
                  GROUP BY person_id HAVING m <> 0)
            SELECT b, CASE WHEN (m >> b) & 1 = 0 THEN 'dormant' WHEN f = b THEN 'new'
                           WHEN (m >> (b - 1)) & 1 = 1 THEN 'returning' ELSE 'resurrecting' END,
                   count(*)
            FROM pp, range(1, {days + 1}) r(b)
            WHERE (m >> b) & 1 = 1 OR (m >> (b - 1)) & 1 = 1
            GROUP BY ALL"""
        )
        out = {s: [0] * days for s in LIFECYCLE_STATUSES}
        for b, status, n in rows:
            out[status][b - 1] += -n if status == "dormant" else n
        return out

    def q_paths(self) -> Any:
        """{(step, source url, target url): distinct persons}: window functions per person
        in (ts, uuid) order: a session starts after a gap of more than 30 minutes, repeats
        collapse, the first PATHS_STEPS nodes of each session make its edges."""
        url = """json_extract_string(properties, '$."$current_url"')"""
        rows = self._rows(
            f"""WITH ev AS (
              SELECT person_id, epoch_us(timestamp) AS t, uuid,
                     coalesce(nullif(regexp_replace({url}, '/+$', ''), ''), '/') AS u
              FROM {self.src}
              WHERE event = '$pageview' AND epoch_us(timestamp) >= {self.lo}
                AND epoch_us(timestamp) < {self.hi} AND {url} <> ''),
            s AS (
              SELECT *, CASE WHEN t - lag(t) OVER w <= {SESSION_GAP_US} THEN 0 ELSE 1 END AS new,
                     lag(u) OVER w AS prev_u
              FROM ev WINDOW w AS (PARTITION BY person_id ORDER BY t, uuid)),
            n AS (
              SELECT person_id, t, uuid, u, new,
                     sum(new) OVER (PARTITION BY person_id ORDER BY t, uuid) AS sid
              FROM s WHERE new = 1 OR prev_u <> u),
            k AS (
              SELECT person_id, sid, u,
                     row_number() OVER (PARTITION BY person_id, sid ORDER BY t, uuid) AS k
              FROM n),
            e AS (
              SELECT person_id, k, u AS src,
                     lead(u) OVER (PARTITION BY person_id, sid ORDER BY k) AS tgt
              FROM k WHERE k <= {PATHS_STEPS})
            SELECT k, src, tgt, count(DISTINCT person_id) FROM e WHERE tgt IS NOT NULL
            GROUP BY ALL"""
        )
        return {(int(k), str(a), str(b)): int(c) for k, a, b, c in rows}


PATHS_EDGES = 50  # the mix's paths query: edgeLimit at its default


def paths_top(edges: dict[tuple[int, str, str], int]) -> list[tuple[str, str, int]]:
    """A peer's {(step, source, target): persons} as the answer's first edges: (source key,
    target key, persons) by persons descending, then source, then target."""
    rows = [(f"{k}_{s}", f"{k + 1}_{t}", n) for (k, s, t), n in edges.items()]
    rows.sort(key=lambda r: (-r[2], r[0], r[1]))
    return rows[:PATHS_EDGES]


def agrees(name: str, peer: Any, ours: Any) -> bool | None:
    """Does a peer's answer (the `DuckDBPeer` / `ChdbPeer` shapes) equal the parallel engine's
    result JSON for query `name`? None: the peer cannot express it (no answer)."""
    if peer is None:
        return None
    if name == "trends_breakdown":
        # Every cell, the ranked order, null and other (method.breakdown_mismatches).
        return not breakdown_mismatches(peer, ours, BREAKDOWN_LIMIT)
    if name == "trends_sum_filter":
        return all(
            abs(peer.get(w, 0.0) - x) <= 1e-6 * max(1.0, abs(x))
            for w, x in enumerate(ours[0]["data"])
        )
    if name == "trends_cohort":
        days = len(ours[0]["data"])
        return all(
            peer.get(d, (0, 0)) == (ours[0]["data"][d], ours[1]["data"][d]) for d in range(days)
        ) and all(0 <= d < days for d in peer)
    if name == "funnel":
        return bool(peer == [s["count"] for s in ours])
    if name == "funnel_breakdown":
        theirs = {v: list(c) for v, c in peer.items()}
        mine = {steps[0]["breakdown_value"]: [s["count"] for s in steps] for steps in ours}
        if OTHER_BREAKDOWN in mine:  # values past breakdown_limit are merged by the engine
            other = [0] * len(mine[OTHER_BREAKDOWN])
            for v in [v for v in theirs if v not in mine]:
                other = [a + b for a, b in zip(other, theirs.pop(v), strict=True)]
            theirs[OTHER_BREAKDOWN] = other
        return theirs == mine
    if name == "retention":
        return all(
            peer.get((c, k), 0) == v["count"]
            for c, row in enumerate(ours)
            for k, v in enumerate(row["values"])
        ) and all(
            n == 0 or (c < len(ours) and k < len(ours[c]["values"])) for (c, k), n in peer.items()
        )
    if name == "stickiness":
        return all(peer.get(n + 1, 0) == x for n, x in enumerate(ours[0]["data"]))
    if name == "lifecycle":
        return all(peer.get(row["status"]) == row["data"] for row in ours) and len(ours) == len(
            LIFECYCLE_STATUSES
        )
    if name == "paths":
        return paths_top(peer) == [(e["source"], e["target"], e["value"]) for e in ours]
    return None


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


def floor_ms(rows: int, repeats: int = 5) -> float:
    """The floor for a query reading `rows` rows: the best of `repeats` numpy sums over `rows`
    int64 timestamps already in memory (ms). What no engine can beat on this machine."""
    data = np.arange(max(rows, 1), dtype=np.int64)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        data.sum()
        best = min(best, time.perf_counter() - t0)
    return best * 1000


class _Peers:
    """The engines' runners, opened lazily per engine section and closed after it."""

    def __init__(self, snapshot: Snapshot, chdb_path: Path, end: datetime | None = None) -> None:
        self.snapshot = snapshot
        self.chdb_path = chdb_path
        self.end = end
        self.parallel = ParallelEngine("local")
        self.reference = ReferenceEngine()
        self.ray_workers = 2
        self.ray: Any = None  # the RayExecutor while the "ray" section runs
        self.ray_report: dict[str, Any] = {}
        self.duck: DuckDBPeer | None = None
        self.chdb: ChdbPeer | None = None
        self.api: Any = None  # the ApiServer while the "api" engine runs
        self.raw: dict[str, dict[str, Any]] = {}  # the mix's queries as sent to the API
        self.api_timings: dict[str, list[dict[str, float]]] = {}  # server timings per query

    def open(self, engine: str) -> dict[str, Any] | None:
        """Prepare `engine`; its load report (chdb: load time, bytes on disk), if any."""
        if engine == "duckdb":
            self.duck = DuckDBPeer(self.snapshot, self.end)
        if engine == "chdb":
            self.chdb = ChdbPeer(self.snapshot, self.chdb_path, self.end)
            return self.chdb.load_info
        if engine == "ray" and self.ray is None:
            from eventlens.query.parallel.ray_executor import RayExecutor

            t0 = time.perf_counter()
            self.ray = RayExecutor(workers=self.ray_workers, resident_bytes=8 << 30)
            self.ray.start()
            self.ray.workers()  # the owners are up
            self.ray_report["start_s"] = time.perf_counter() - t0
        return None

    def close(self) -> None:
        if self.api is not None:
            self.api.stop()
            self.api = None
        if self.ray is not None:
            # Per owner: its share of the resident bytes (the balance of the map).
            self.ray_report["workers"] = [vars(w) for w in self.ray.workers()]
            self.ray.shutdown()
            self.ray = None
        if self.chdb is not None:
            self.chdb.close()
        self.duck = self.chdb = None

    def runner(self, engine: str, name: str, nq: Any) -> Callable[[], Any]:
        if engine == "parallel":
            return lambda: self.parallel.run(nq, self.snapshot)
        if engine == "reference":
            return lambda: self.reference.run(nq, self.snapshot)
        if engine == "ray":
            ray_engine = ParallelEngine(self.ray)
            return lambda: ray_engine.run(nq, self.snapshot)
        if engine == "api":
            return lambda: self._api_call(name)
        peer: DuckDBPeer | ChdbPeer | None = self.duck if engine == "duckdb" else self.chdb
        assert peer is not None
        return lambda: peer.run(name)

    def _api_call(self, name: str) -> Any:
        body = self.api.query(self.raw[name])
        self.api_timings.setdefault(name, []).append(dict(body.get("timings", {})))
        return body["results"]


def _api_table_root(data_dir: Path, table: Any, size: int, data: Path | None) -> Path:
    """The data directory the API server serves: the import's own (project 1), or for the
    generator's table a directory whose project 1 table is a link to it."""
    from eventlens.config import Settings

    if data is not None:
        return data_dir / f"import-{data.stem}"
    root = data_dir / f"api-{size}"
    link = Settings().with_data_dir(root).event_table_dir(1)
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path(str(table.path)).resolve(), target_is_directory=True)
    return root


def request_costs(peers: _Peers, normalised: dict[str, Any], repeats: int = 15) -> dict[str, Any]:
    """The fixed costs around the engine, measured: planning a query of the mix on the pinned
    snapshot (the planner's per-snapshot memo makes repeats cheap; the first plan of a new
    snapshot is reported apart), and, through the API, a query that reads nothing (an event no
    row has): auth, parse, normalise, pin, plan, serialise and HTTP, next to its engine time."""
    from eventlens.query.parallel.planner import plan_query

    out: dict[str, Any] = {"plan_ms": {}, "plan_first_ms": {}}
    for name, nq in normalised.items():
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            plan_query(nq, peers.snapshot)
            times.append((time.perf_counter() - t0) * 1000)
        out["plan_ms"][name] = statistics.median(times)
        # A new version's first plan: the same files in a new Snapshot (no memo yet).
        fresh = Snapshot(peers.snapshot.version, peers.snapshot.buckets, peers.snapshot.files)
        t0 = time.perf_counter()
        plan_query(nq, fresh)
        out["plan_first_ms"][name] = (time.perf_counter() - t0) * 1000
    if peers.api is not None:
        empty = dict(next(iter(peers.raw.values())))
        empty = {"kind": "TrendsQuery", "series": [{"event": "no such event"}]} | {
            k: v for k, v in empty.items() if k == "dateRange"
        }
        walls, engine = [], []
        cpu0 = method_cpu() + peers.api.server_cpu_s()
        for _ in range(repeats):
            t0 = time.perf_counter()
            body = peers.api.query(empty)
            walls.append((time.perf_counter() - t0) * 1000)
            engine.append(float(body.get("timings", {}).get("execute_ms", 0.0)))
        cpu = method_cpu() + peers.api.server_cpu_s() - cpu0
        out["empty_query"] = {
            # CPU per request (client and server): what the path costs whatever the load.
            "cpu_ms": cpu * 1000 / repeats,
            "wall_ms": statistics.median(walls),
            "engine_ms": statistics.median(engine),
            "fixed_ms": statistics.median(w - e for w, e in zip(walls, engine, strict=True)),
            "load_1m": os.getloadavg()[0],
        }
    return out


def _interleaved(
    peers: _Peers,
    engines: list[str],
    normalised: dict[str, Any],
    ours: dict[str, Any],
    runs: int,
    reference_runs: int | None,
    progress: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Round 0 (warm-up, its time kept as `first_ms`, the answers checked) then `runs` timed
    rounds in `method.schedule` order, so a burst of load lands on every engine alike. The
    reference engine stops after `reference_runs` rounds when given."""
    names = list(normalised)
    cells = {(e, q): Cell() for e in engines for q in names}
    if peers.api is not None:  # a request costs the client and the server
        api = peers.api
        for q in names:
            if ("api", q) in cells:
                cells[("api", q)].cpu_source = lambda: method_cpu() + api.server_cpu_s()
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for r, name, engine in schedule(engines, names, runs + 1):
        if engine == "reference" and reference_runs and r > reference_runs:
            continue
        fn = peers.runner(engine, name, normalised[name])
        if r == 0:
            t0 = time.perf_counter()
            answer = fn()
            row: dict[str, Any] = {"engine": engine, "query": name, "expressible": True}
            row["first_ms"] = (time.perf_counter() - t0) * 1000
            if engine in ("duckdb", "chdb") and answer is None:
                row["expressible"] = False
            elif engine in ("reference", "ray", "api"):
                row["equal_to_parallel"] = same(answer, ours[name])
            elif engine != "parallel":
                row["equal_to_parallel"] = agrees(name, answer, ours[name])
            else:
                row["equal_to_parallel"] = True
            first[(engine, name)] = row
        elif first[(engine, name)]["expressible"]:
            cells[(engine, name)].run(fn)
    out = []
    for (engine, name), cell in cells.items():
        row = first[(engine, name)]
        if row["expressible"] and cell.times_s:
            row.update(
                runs=len(cell.times_s),
                times_s=cell.times_s,
                cpu_s=cell.cpu_s,
                load_1m=cell.load_1m,
                median_cpu_ms=statistics.median(cell.cpu_s) * 1000,
                mean_load_1m=statistics.fmean(cell.load_1m),
                **_stats(cell.times_s),
            )
        out.append(row)
        progress(_line(row))
    return out


def _ratios(results: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per query and peer: parallel median / peer median and parallel p99 / peer p99 (> 1: the
    peer is faster)."""
    timed = {(r["engine"], r["query"]): r for r in results if "median_ms" in r}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (engine, name), row in timed.items():
        ours = timed.get(("parallel", name))
        if engine == "parallel" or ours is None:
            continue
        out.setdefault(name, {})[engine] = {
            "median": ours["median_ms"] / row["median_ms"],
            "p99": ours["p99_ms"] / row["p99_ms"],
        }
    return out


def run_bench(
    size: int,
    data_dir: Path,
    engines: list[str],
    runs: int = 7,
    reference_runs: int | None = None,
    progress: Callable[[str], None] = print,
    queries: list[str] | None = None,
    data: Path | None = None,
    ray_workers: int = 2,
    api: bool = False,
) -> dict[str, Any]:
    """Load (or reuse) the data under `data_dir` (`bench-N/`, chdb's copy in `bench-N.chdb/`),
    then time every (engine, query) (`queries`: a subset of the mix by name), interleaved.
    The reference engine is skipped (and said so) above 10m events. Returns the full report:
    `results` (one row per engine and query: `runs`, `first_ms`, `times_s`, `min_ms`,
    `median_ms`, `p99_ms`, `equal_to_parallel`, or `expressible: false` / `skipped`),
    `ratios`, `floor`, `peer_load`, `engine_rss`, `peak_rss_mb`, machine and commit.

    `data`: benchmark on this Parquet / JSON-lines file instead of the generator's data,
    imported with `eventlens import` (into `import-<name>/` under `data_dir`, reused); the mix
    then covers the last 30 days before the day after its last event, and `size` is unused.

    `api`: also engine "api" (bench/api.py), the parallel engine through a real server on
    loopback, interleaved with the others; the report adds `api` (its start, the cold first
    query sent right after the start, the warm-up's duration, the server's timings per query)
    and `request_costs` (planning per snapshot, the request path's fixed cost)."""
    started = time.perf_counter()
    peers_ray: _Peers | None = None
    if "ray" in engines:
        # Ray first, while this process is small and idle: its local start-up waits a bounded
        # time for its own servers, which a loaded machine can exceed.
        peers_ray = _Peers(Snapshot(0, 1, []), data_dir, None)
        peers_ray.ray_workers = ray_workers
        peers_ray.open("ray")
        progress(f"ray: {ray_workers} bucket owners up in {peers_ray.ray_report['start_s']:.1f} s")
        started = time.perf_counter()
    end: datetime | None = None
    if data is not None:
        table, end = load_import_table(data_dir / f"import-{data.stem}", data)
        chdb_path = data_dir / f"import-{data.stem}.chdb"
    else:
        table = load_bench_table(data_dir / f"bench-{size}", size)
        chdb_path = data_dir / f"bench-{size}.chdb"
    snapshot = table.snapshot()
    size = sum(f.rows for f in snapshot.files)
    load_s = time.perf_counter() - started
    progress(f"data: {size:,} events, {len(snapshot.files)} files, ready in {load_s:.1f} s")
    peers = _Peers(snapshot, chdb_path, end)
    peers.ray_workers = ray_workers
    api_report: dict[str, Any] = {}
    if peers_ray is not None:
        peers.ray, peers.ray_report = peers_ray.ray, peers_ray.ray_report
    now = NOW if end is None else end
    mix = {k: v for k, v in query_mix(now).items() if not queries or k in queries}
    peers.raw = mix
    if api:
        from eventlens.bench.api import ApiServer

        root = _api_table_root(data_dir, table, size, data)
        peers.api = ApiServer(root)
        first = next(iter(mix))
        try:
            peers.api.start()
            t0 = time.perf_counter()
            peers.api.query(mix[first])  # right after the start: the warm-up has just begun
        except BaseException:
            peers.close()  # never leave the server running
            raise
        api_report = {
            "start_s": peers.api.started_s,
            "cold_first_query": first,
            "cold_first_ms": (time.perf_counter() - t0) * 1000,
            "cold_load_1m": os.getloadavg()[0],
        }
        progress(
            f"api: server up in {api_report['start_s']:.1f} s; first query ({first}) right "
            f"after start {api_report['cold_first_ms']:.0f} ms"
        )
        api_report["warm_wait_s"] = peers.api.wait_warm(600)
        progress(f"api: warm-up logged after {api_report['warm_wait_s']:.1f} s more")
    normalised = {
        k: normalise(
            parse_query(q), timezone="UTC", week_start=0, now=now, cohorts=bench_cohorts(now)
        )
        for k, q in mix.items()
    }
    ours: dict[str, Any] = {}
    floor: dict[str, dict[str, float]] = {}
    # As `eventlens serve` does at startup: what exists now (modules, the loaded peers) is
    # frozen out of the cyclic GC, so a full collection does not land inside a timed query.
    gc.collect()
    gc.freeze()
    cold_ms: dict[str, float] = {}
    for name, nq in normalised.items():
        # The parallel engine's first run of each query, in mix order: the first one reads and
        # sorts every bucket into memory, later ones decode the properties they add.
        t0 = time.perf_counter()
        ours[name], explain = peers.parallel.explain(nq, snapshot)
        cold_ms[name] = (time.perf_counter() - t0) * 1000
        progress(f"{name:18s} parallel  first run (cold resident buckets) {cold_ms[name]:9.1f} ms")
        rows = int(explain.to_dict()["rows_kept"])
        floor[name] = {"rows": rows, "ms": floor_ms(rows)}
    results: list[dict[str, Any]] = []
    peer_load: dict[str, Any] = {}
    engine_rss: dict[str, dict[str, float]] = {}
    active: list[str] = []
    for engine in engines:
        if engine == "reference" and size > REFERENCE_MAX_EVENTS:
            progress("reference: skipped above 10m events (benchmark.md)")
            results += [{"engine": engine, "query": k, "skipped": "size > 10m"} for k in mix]
            continue
        rss_before = _peak_rss_mb()
        info = peers.open(engine)
        engine_rss[engine] = {"peak_rss_growth_mb_on_open": _peak_rss_mb() - rss_before}
        if info is not None:
            peer_load[engine] = info
            progress(
                f"{engine}: {info['rows']:,} rows, loaded in {info['load_s']:.1f} s"
                f"{' (reused)' if info['reused'] else ''}, "
                f"{info['bytes_on_disk'] / 1e6:.1f} MB on disk"
            )
        active.append(engine)
    if api:
        active.insert(1 if "parallel" in active else 0, "api")
    costs: dict[str, Any] = {}
    try:
        results += _interleaved(peers, active, normalised, ours, runs, reference_runs, progress)
        costs = request_costs(peers, normalised)
        if api:
            api_report["timings"] = peers.api_timings
            progress(
                "request path: plan per snapshot "
                + ", ".join(f"{k} {v:.2f} ms" for k, v in costs["plan_ms"].items())
            )
            e = costs["empty_query"]
            progress(
                f"request path: empty query {e['wall_ms']:.1f} ms through the API, engine "
                f"{e['engine_ms']:.1f} ms, fixed {e['fixed_ms']:.1f} ms, CPU {e['cpu_ms']:.1f} "
                f"ms per request (load {e['load_1m']:.1f}); first plan of a new snapshot "
                + ", ".join(f"{k} {v:.1f} ms" for k, v in costs["plan_first_ms"].items())
            )
    finally:
        peers.close()
    ratios = _ratios(results)
    for name, by_peer in ratios.items():
        shown = "  ".join(
            f"{p} x{r['median']:.3g} (p99 x{r['p99']:.3g})" for p, r in by_peer.items()
        )
        progress(
            f"{name:18s} parallel/peer  {shown}  floor {floor[name]['ms']:.1f} ms "
            f"({floor[name]['rows']:,} rows)"
        )
    return {
        "size": size,
        "data": None if data is None else str(data),
        "files": len(snapshot.files),
        "rows": sum(f.rows for f in snapshot.files),
        "parquet_bytes": sum(f.size_bytes for f in snapshot.files),
        "load_s": load_s,
        "peak_rss_mb": _peak_rss_mb(),
        "engine_rss": engine_rss,
        "peer_load": peer_load,
        "floor": floor,
        "parallel_cold_ms": cold_ms,
        "resident_mb": resident_cache.CACHE.nbytes / 2**20,
        "ray": peers.ray_report,
        "api": api_report,
        "request_costs": costs,
        "ratios": ratios,
        "machine": {
            "cores": os.cpu_count(),
            "ram_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "versions": _versions(),
        "commit": _commit(),
        "results": results,
    }


def _line(row: dict[str, Any]) -> str:
    head = f"{row['query']:18s} {row['engine']:9s}"
    if not row.get("expressible", True):
        return f"{head} not expressed in hand-written SQL"
    return (
        f"{head} median {row['median_ms']:9.1f} ms  min {row['min_ms']:9.1f}  "
        f"p99 {row['p99_ms']:9.1f}  first {row['first_ms']:9.1f}  "
        f"cpu {row['median_cpu_ms']:8.1f} ms  load {row['mean_load_1m']:4.1f}  "
        f"equal={row['equal_to_parallel']}"
    )


def _versions() -> dict[str, str]:
    out = {}
    for name in ("eventlens", "duckdb", "chdb", "numpy", "pyarrow", "deltalake"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = ""
    return out


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False, timeout=5
        )
        return out.stdout.strip()
    except OSError:
        return ""

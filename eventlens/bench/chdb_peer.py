"""The chdb (embedded ClickHouse) peer of `eventlens bench query`.

The bench table's Parquet files are loaded once into a persistent chdb session directory next to
the bench table (`<bench>/bench-N.chdb/`), as a MergeTree table ordered by (person_id, timestamp)
(benchmark.md), and reused by later runs while it holds the same number of rows. Every query of
the mix is hand-written ClickHouse SQL and returns the same shapes as `DuckDBPeer` (so one
`agrees()` checks both). ClickHouse runs with its default threads (all cores), as a peer should.

Formulation choices (measured on the 10M bench table, 2 cores): `$browser` / `country` /
`revenue` are read with `extract()` regexes, which beat `JSONExtract*` on this MergeTree
(facts.md; `simpleJSONExtract*` misses `"k": v` with a space); funnels use `windowFunnel` over
integer microseconds; retention, stickiness and lifecycle are one pass per person building a
bitmask of active periods (3-4.5x faster than `retention()`, facts.md).
"""

from __future__ import annotations

import importlib
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from eventlens.bench.bounds import DAY_US, WEEK_US, query_bounds, retention_bounds, week_start
from eventlens.bench.method import BreakdownCounts
from eventlens.bench.query_data import cohort_window
from eventlens.storage.event_table import Snapshot

NULL_BREAKDOWN = "$$_posthog_breakdown_null_$$"
FUNNEL_STEPS = ("$pageview", "signup", "purchase")
FUNNEL_WINDOW_US = 7 * DAY_US
RETENTION_INTERVALS = 8
LIFECYCLE_STATUSES = ("new", "returning", "resurrecting", "dormant")
PATHS_STEPS = 5  # the mix's paths query (stepLimit at its default)
SESSION_GAP_US = 30 * 60 * 1_000_000

_SCHEMA = """(
    uuid UUID,
    event LowCardinality(String),
    distinct_id String,
    person_id UUID,
    timestamp DateTime64(6, 'UTC'),
    properties String,
    person_properties String
) ENGINE = MergeTree ORDER BY (person_id, timestamp)"""


def _prop(key: str) -> str:
    """SQL for a JSON string property of `properties` by regex ('' when missing). `[$]` keeps
    the `$` literal without SQL/regex escaping; ` *` tolerates a space after the colon."""
    return f'extract(properties, \'"{key.replace("$", "[$]")}": *"([^"]*)"\')'


def _sql_str(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ChdbPeer:
    """Hand-written ClickHouse SQL for the mix on a persistent chdb MergeTree copy of `snapshot`.

    `path` is the session directory (created, or reused when its table holds the snapshot's row
    count; otherwise rebuilt). `load_info` says how the data got there: `load_s` (seconds the
    load took when it was done, also when reused), `reused`, `rows`, `bytes_on_disk` (active
    MergeTree parts: the directory also holds the parts merged away by the load's OPTIMIZE
    until ClickHouse's background cleanup drops them), `path`. Raises RuntimeError if the
    loaded row count differs from the snapshot's. Call `close()` when done: chdb allows one
    open session per process.
    """

    def __init__(self, snapshot: Snapshot, path: Path, end: datetime | None = None) -> None:
        # Imported here: a large native library. Typed as Any: chdb's functions carry no hints.
        chdb_session: Any = importlib.import_module("chdb.session")

        self.lo, self.hi = query_bounds(end)
        self.end = end
        rows = sum(f.rows for f in snapshot.files)
        path.mkdir(parents=True, exist_ok=True)
        self.session: Any = chdb_session.Session(str(path))
        self.session.query(f"CREATE TABLE IF NOT EXISTS events {_SCHEMA}")
        meta = path / "eventlens-load.json"
        held = int(self._one("SELECT count() FROM events"))
        if held == rows and meta.exists():
            load_s, reused = float(json.loads(meta.read_text())["load_s"]), True
        else:
            load_s, reused = self._load(snapshot), False
            held = int(self._one("SELECT count() FROM events"))
            if held != rows:
                raise RuntimeError(f"chdb holds {held} rows after loading {rows} from {path}")
            meta.write_text(json.dumps({"load_s": load_s, "rows": rows}))
        self.load_info: dict[str, Any] = {
            "load_s": load_s,
            "reused": reused,
            "rows": rows,
            "bytes_on_disk": int(
                self._one(
                    "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = "
                    "currentDatabase() AND table = 'events' AND active"
                )
            ),
            "path": str(path),
        }

    def _load(self, snapshot: Snapshot) -> float:
        started = time.perf_counter()
        self.session.query("TRUNCATE TABLE events")
        if snapshot.files:
            # One INSERT over a glob of the table's data files, restricted to the snapshot's
            # own (a compacted table still has removed files on disk); ClickHouse prunes by
            # _path before reading, and reads the files in parallel. The glob names the
            # partition folders: `**` would also match the Delta log's checkpoint Parquet,
            # which chdb 4.4 then fails on ("Size of filter doesn't match size of column").
            root = Path(snapshot.files[0].path).parent.parent.parent
            glob = str(root) + "/day=*/bucket=*/*.parquet"
            wanted = ", ".join(_sql_str(f.path) for f in snapshot.files)
            self.session.query(
                "INSERT INTO events SELECT uuid, event, distinct_id, person_id, timestamp, "
                f"properties, person_properties FROM file({_sql_str(glob)}, "
                f"Parquet) WHERE _path IN ({wanted})"
            )
            self.session.query("OPTIMIZE TABLE events FINAL")
        return time.perf_counter() - started

    def close(self) -> None:
        """Close the chdb session (the data stays on disk for the next run)."""
        self.session.close()

    def _one(self, sql: str) -> Any:
        return self._rows(sql)[0][0]

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        table = self.session.query(sql, "ArrowTable")
        cols = [c.to_pylist() for c in table.columns]
        return list(zip(*cols, strict=True)) if cols else []

    def run(self, name: str) -> Any:
        """The answer to query `name` of the mix (shapes as `DuckDBPeer`), or None if unknown."""
        fn = getattr(self, f"q_{name}", None)
        return None if fn is None else fn()

    def _in_range(self) -> str:
        return (
            f"timestamp >= fromUnixTimestamp64Micro({self.lo}, 'UTC') "
            f"AND timestamp < fromUnixTimestamp64Micro({self.hi}, 'UTC')"
        )

    def _index(self, origin: int, width: int) -> str:
        return f"intDiv(toUnixTimestamp64Micro(timestamp) - {origin}, {width})"

    def q_trends_breakdown(self) -> Any:
        """Per (day, value) and per value over the range: events and distinct persons; the
        persons of the folded values per day on demand (`BreakdownCounts`)."""
        where = f"event = '$pageview' AND {self._in_range()}"
        b = f"nullIf({_prop('$browser')}, '')"
        rows = self._rows(
            f"""SELECT {self._index(self.lo, DAY_US)} AS d, {b} AS b, count(), uniqExact(person_id)
            FROM events WHERE {where} GROUP BY d, b"""
        )
        totals = self._rows(
            f"SELECT {b} AS b, count(), uniqExact(person_id) FROM events WHERE {where} GROUP BY b"
        )

        def other_persons(values: set[str | None]) -> dict[int, int]:
            named = [v for v in values if v is not None]
            cond = " OR ".join(
                ([f"b IN ({', '.join(_sql_str(v) for v in named)})"] if named else [])
                + (["b IS NULL"] if None in values else [])
            )
            got = self._rows(
                f"""SELECT d, uniqExact(p) FROM (SELECT {self._index(self.lo, DAY_US)} AS d,
                       {b} AS b, person_id AS p FROM events WHERE {where})
                WHERE {cond or "false"} GROUP BY d"""
            )
            return {int(d): int(n) for d, n in got}

        return BreakdownCounts(
            {(int(d), v): (int(c), int(u)) for d, v, c, u in rows},
            {v: (int(c), int(u)) for v, c, u in totals},
            other_persons,
        )

    def q_trends_cohort(self) -> Any:
        """As `DuckDBPeer.q_trends_cohort`: {day: (pageviews, persons)} of the cohort."""
        lo, hi = cohort_window(self.end)
        rows = self._rows(
            f"""SELECT {self._index(self.lo, DAY_US)} AS d, count(), uniqExact(person_id)
            FROM events
            WHERE event = '$pageview' AND {self._in_range()}
              AND person_id IN (
                SELECT person_id FROM events WHERE event = 'purchase'
                  AND timestamp >= fromUnixTimestamp64Micro({lo}, 'UTC')
                  AND timestamp < fromUnixTimestamp64Micro({hi}, 'UTC')
                GROUP BY person_id HAVING count() >= 2)
            GROUP BY d"""
        )
        return {int(d): (int(c), int(u)) for d, c, u in rows}

    def q_trends_sum_filter(self) -> Any:
        first = week_start(self.lo)
        rows = self._rows(
            f"""SELECT {self._index(first, WEEK_US)} AS w,
                   sum(toFloat64OrNull(extract(properties, '"revenue": *"?([-+0-9.eE]+)')))
            FROM events
            WHERE event = 'purchase'
              AND timestamp >= fromUnixTimestamp64Micro({first}, 'UTC')
              AND timestamp < fromUnixTimestamp64Micro({self.hi}, 'UTC')
              AND {_prop("country")} IN ('US', 'DE', 'GB')
            GROUP BY w"""
        )
        return {int(w): float(s or 0.0) for w, s in rows}

    def _funnel_conditions(self) -> str:
        return ", ".join(f"event = {_sql_str(e)}" for e in FUNNEL_STEPS)

    def _funnel_events(self) -> str:
        names = ", ".join(_sql_str(e) for e in FUNNEL_STEPS)
        return f"event IN ({names}) AND {self._in_range()}"

    def q_funnel(self) -> Any:
        rows = self._rows(
            f"""SELECT level, count() FROM (
                  SELECT windowFunnel({FUNNEL_WINDOW_US})(
                    toUInt64(toUnixTimestamp64Micro(timestamp)), {self._funnel_conditions()})
                    AS level
                  FROM events WHERE {self._funnel_events()} GROUP BY person_id)
            GROUP BY level"""
        )
        by_level = dict(rows)
        return [sum(c for lvl, c in by_level.items() if lvl > s) for s in range(3)]

    def q_funnel_breakdown(self) -> Any:
        # First touch: the value on the person's earliest funnel event (any step) having one.
        rows = self._rows(
            f"""SELECT b, level, count() FROM (
                  SELECT windowFunnel({FUNNEL_WINDOW_US})(
                      toUInt64(toUnixTimestamp64Micro(timestamp)), {self._funnel_conditions()})
                      AS level,
                    argMinIf(v, timestamp, v != '') AS b
                  FROM (SELECT person_id, timestamp, event, {_prop("$browser")} AS v FROM events
                        WHERE {self._funnel_events()})
                  GROUP BY person_id)
            WHERE level > 0 GROUP BY b, level"""
        )
        out: dict[str, list[int]] = {}
        for b, level, n in rows:
            counts = out.setdefault(b or NULL_BREAKDOWN, [0] * len(FUNNEL_STEPS))
            for s in range(level):
                counts[s] += n
        return out

    def q_retention(self) -> Any:
        first, end = retention_bounds(self.hi, RETENTION_INTERVALS)
        n = RETENTION_INTERVALS
        rows = self._rows(
            f"""WITH masks AS (
                  SELECT m, count() AS persons FROM (
                    SELECT groupBitOr(bitShiftLeft(toUInt16(1), {self._index(first, WEEK_US)}))
                      AS m
                    FROM events
                    WHERE event = '$pageview'
                      AND timestamp >= fromUnixTimestamp64Micro({first}, 'UTC')
                      AND timestamp < fromUnixTimestamp64Micro({end}, 'UTC')
                    GROUP BY person_id)
                  GROUP BY m)
            SELECT c, k, sum(persons) FROM masks
            ARRAY JOIN range({n}) AS c
            ARRAY JOIN range({n}) AS k
            WHERE c + k < {n} AND bitTest(m, c) AND bitTest(m, c + k)
            GROUP BY c, k"""
        )
        return {(int(c), int(k)): int(x) for c, k, x in rows}

    def q_stickiness(self) -> Any:
        rows = self._rows(
            f"""SELECT bitCount(m) AS n, count() FROM (
                  SELECT groupBitOr(bitShiftLeft(toUInt64(1), {self._index(self.lo, DAY_US)}))
                    AS m
                  FROM events WHERE event = '$pageview' AND {self._in_range()}
                  GROUP BY person_id)
            GROUP BY n"""
        )
        return {int(n): int(c) for n, c in rows}

    def q_lifecycle(self) -> Any:
        # Bit b of the mask = active on day b of [lo - 1 day, hi); bit 0 is the day before the
        # range, read only to classify the first day. `f` is the day of the person's first-ever
        # $pageview (all data, not just the range), negative when before that.
        origin = self.lo - DAY_US
        days = (self.hi - self.lo) // DAY_US
        day = f"greatest({self._index(origin, DAY_US)}, 0)"  # shifts must not be negative
        rows = self._rows(
            f"""SELECT b, multiIf(NOT bitTest(m, b), 'dormant', f = b, 'new',
                                  bitTest(m, b - 1), 'returning', 'resurrecting') AS status,
                       count()
            FROM (
              SELECT intDiv(toUnixTimestamp64Micro(min(timestamp)) - {origin}, {DAY_US}) AS f,
                     groupBitOrIf(bitShiftLeft(toUInt64(1), {day}),
                                  timestamp >= fromUnixTimestamp64Micro({origin}, 'UTC')) AS m
              FROM events
              WHERE event = '$pageview' AND timestamp < fromUnixTimestamp64Micro({self.hi}, 'UTC')
              GROUP BY person_id
              HAVING m != 0)
            ARRAY JOIN range(1, {days + 1}) AS b
            WHERE bitTest(m, b) OR bitTest(m, b - 1)
            GROUP BY b, status"""
        )
        out = {s: [0] * days for s in LIFECYCLE_STATUSES}
        for b, status, n in rows:
            out[status][b - 1] += -n if status == "dormant" else n
        return out

    def q_paths(self) -> Any:
        """{(step, source url, target url): distinct persons}. One array per person of
        (µs, url, uuid) sorted as the engines order events, split into sessions where more than
        30 minutes pass (`arraySplit`), repeats dropped (`arrayFilter` against the element
        before), the first PATHS_STEPS nodes kept; edges by `ARRAY JOIN` over the steps."""
        url = _prop("$current_url")
        rows = self._rows(
            f"""SELECT k, nodes[k].2 AS src, nodes[k + 1].2 AS tgt, uniqExact(person_id)
            FROM (
              SELECT person_id,
                     arraySlice(arrayFilter((x, i) -> i = 1 OR x.2 != s[i - 1].2, s,
                                            arrayEnumerate(s)), 1, {PATHS_STEPS}) AS nodes
              FROM (
                SELECT person_id,
                       arraySort(x -> (x.1, x.3), groupArray((toUnixTimestamp64Micro(timestamp),
                                 if(u0 = '', '/', u0), toString(uuid)))) AS evs
                FROM (SELECT person_id, timestamp, uuid,
                             replaceRegexpOne({url}, '/+$', '') AS u0, {url} AS raw
                      FROM events WHERE event = '$pageview' AND {self._in_range()})
                WHERE raw != ''
                GROUP BY person_id)
              ARRAY JOIN arraySplit((x, g) -> g, evs,
                   arrayMap(i -> i = 1 OR evs[i].1 - evs[i - 1].1 > {SESSION_GAP_US},
                            arrayEnumerate(evs))) AS s)
            ARRAY JOIN arrayEnumerate(arrayPopBack(nodes)) AS k
            GROUP BY k, src, tgt"""
        )
        return {(int(k), str(a), str(b)): int(n) for k, a, b, n in rows}

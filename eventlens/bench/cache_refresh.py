"""What a refresh after a commit costs with the result cache, against computing from scratch
(docs/adr/0008-result-cache.md "Measured"). Not the issue's `eventlens bench dashboard`: one
process, the benchmark query mix, one table.

    python -m eventlens.bench.cache_refresh [N_EVENTS] [NEW_EVENTS] [FOLLOW]

For each query of the mix: compute it cold (full), serve it again (hit), then three times: commit
NEW_EVENTS events and refresh it (blocking: incremental, reusing the partials of sub-tasks whose
files did not change), once with the new events inside the query's range ("live": the last day
of the range, random persons) and once after the range ("later": a fixed past range while
ingest goes on). Prints medians and the ratios refresh / full, measured in the same run.
With FOLLOW=1 (third argument) a CommitFollower extends the resident buckets after each commit
before the refresh is timed (as `query_follow_commits` does in a server).
"""

from __future__ import annotations

import functools
import random
import statistics
import sys
import tempfile
import time
import uuid as uuidlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from eventlens.bench.query_data import load_bench_table, query_mix, query_range
from eventlens.cache import (
    CachedAnswer,
    Counting,
    MemoryBackend,
    MemoryPartials,
    Mode,
    Request,
    ResultCache,
)
from eventlens.config import Settings
from eventlens.query import normalise, parse_query
from eventlens.query.deadline import Deadline
from eventlens.query.follow import CommitFollower
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.parallel import ParallelEngine, partials
from eventlens.storage import tables
from eventlens.storage.event_table import EventTable, Snapshot
from eventlens.storage.schema import EVENT_SCHEMA, PERSON_NAMESPACE


def _new_events(n: int, day: datetime, seed: int) -> pa.Table:
    rng = random.Random(seed)
    rows: dict[str, list[Any]] = {name: [] for name in EVENT_SCHEMA.names}
    for _ in range(n):
        d = f"user-{rng.randrange(100_000)}"
        rows["uuid"].append(str(uuidlib.UUID(int=rng.getrandbits(128), version=4)))
        rows["event"].append(rng.choice(("$pageview", "$pageview", "signup", "purchase")))
        rows["distinct_id"].append(d)
        rows["person_id"].append(str(uuidlib.uuid5(PERSON_NAMESPACE, f"bench:{d}")))
        rows["timestamp"].append(day + timedelta(seconds=rng.randrange(86_000)))
        rows["properties"].append('{"$browser": "Chrome", "revenue": 3}')
        rows["person_properties"].append("{}")
    return pa.Table.from_pydict(rows, schema=EVENT_SCHEMA)


def _serve(
    cache: ResultCache, nq: NormalisedQuery, pin: Callable[[], Snapshot], mode: Mode
) -> tuple[float, float, Any]:
    """(wall seconds, process CPU seconds, Served) of one request over the snapshot `pin()`
    returns. CPU time is the figure to compare on a shared machine: wall time there is mostly
    waiting for a core."""
    snapshot = pin()
    engine = ParallelEngine("local")

    def compute(store: Counting) -> tuple[CachedAnswer, dict[str, Any] | None]:
        with partials.using(store):
            result = engine.run(nq, snapshot)
        answer = CachedAnswer(result, snapshot.version, "parallel", nq.kind, "", time.time(), 0)
        return answer, None

    started = time.perf_counter()
    cpu = time.process_time()
    served = cache.serve(Request("k", 1, snapshot.version, mode, compute, Deadline(600)))
    return time.perf_counter() - started, time.process_time() - cpu, served


def measure(n_events: int, new_events: int, follow: bool = False) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="eventlens-cache-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        follower = CommitFollower(settings, interval=0.05) if follow else None
        project = 0
        base = load_bench_table(Path(tmp) / "base", n_events)
        last_day = datetime.fromisoformat(query_range()["date_to"]).replace(tzinfo=UTC)
        for name, query in query_mix().items():
            nq = normalise(parse_query(query), timezone="UTC", now=datetime.now(UTC))
            for where, day in (("live", last_day), ("later", last_day + timedelta(days=2))):
                project += 1
                table = EventTable.open_or_create(settings.event_table_dir(project), buckets=16)
                if not table.snapshot().files:
                    table.append(base.snapshot().read(list(EVENT_SCHEMA.names)), log_offset=None)
                cache = ResultCache(MemoryBackend(1 << 30), MemoryPartials(1 << 30))
                # As the query service pins: the process's shared table (the follower's too).
                pin = functools.partial(tables.snapshot, settings, project)
                _serve(cache, nq, pin, Mode.FORCE_BLOCKING)  # warm the resident buckets
                fulls = [_serve(cache, nq, pin, Mode.FORCE_BLOCKING) for _ in range(3)]
                full = statistics.median(f[0] for f in fulls)
                full_cpu = statistics.median(f[1] for f in fulls)
                hit, _, served = _serve(cache, nq, pin, Mode.BLOCKING)
                assert served.result == "hit"
                refreshes, refresh_cpus, reused, computed, deltas = [], [], 0, 0, 0
                for i in range(3):
                    if follower is not None:
                        follower.touch(project, table.version())
                        warmed = follower.warmed
                    table.append(_new_events(new_events, day, seed=i), log_offset=None)
                    while follower is not None and follower.warmed == warmed:
                        time.sleep(0.01)
                    seconds, cpu, served = _serve(cache, nq, pin, Mode.BLOCKING)
                    refreshes.append(seconds)
                    refresh_cpus.append(cpu)
                    reused, computed, deltas = served.reused, served.computed, served.delta
                refresh = statistics.median(refreshes)
                refresh_cpu = statistics.median(refresh_cpus)
                rows.append(
                    {
                        "query": name,
                        "new_events": where,
                        "full_ms": round(full * 1000, 1),
                        "hit_ms": round(hit * 1000, 3),
                        "refresh_ms": round(refresh * 1000, 1),
                        "refresh_over_full": round(refresh / full, 3),
                        "full_cpu_ms": round(full_cpu * 1000, 1),
                        "refresh_cpu_ms": round(refresh_cpu * 1000, 1),
                        "cpu_refresh_over_full": round(refresh_cpu / full_cpu, 3),
                        "subtasks_reused": reused,
                        "subtasks_computed": computed,
                        "subtasks_delta": deltas,
                    }
                )
                print(rows[-1], flush=True)
        if follower is not None:
            follower.close()
    return rows


if __name__ == "__main__":
    measure(
        int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000,
        int(sys.argv[2]) if len(sys.argv) > 2 else 1000,
        follow=len(sys.argv) > 3 and sys.argv[3] == "1",
    )

"""`eventlens shadow bench`: what shadow mode at 100% sampling costs the primary.

Loads generated events into a scratch data directory, then runs the same query mix through two
QueryServices, one without shadow mode and one shadowing every query, alternating between them
block by block (the whole mix, then a drain) so that machine noise hits both alike. Queries
arrive at a fixed pace (`interval_ms` between starts; 0 = back to back) from one client.
Reports p50/p99 of the primary's total latency for both and the overhead in percent.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from eventlens.config import Settings
from eventlens.projects.store import SqliteMetadataStore
from eventlens.query.service import QueryService
from eventlens.shadow.wiring import build_query_service, shadow_of

END = datetime(2026, 11, 21, tzinfo=UTC)
_RANGE = {"date_from": "2026-11-01", "date_to": "2026-11-20"}
_PV = {"kind": "EventsNode", "event": "$pageview"}
_STATS = {"p50": 50, "p90": 90, "p95": 95, "p99": 99}
QUERIES: list[dict[str, Any]] = [
    {"kind": "TrendsQuery", "series": [_PV], "interval": "day", "dateRange": _RANGE},
    {"kind": "TrendsQuery", "series": [{**_PV, "math": "dau"}], "dateRange": _RANGE},
    {
        "kind": "FunnelsQuery",
        "series": [
            {"kind": "EventsNode", "event": "signup"},
            {"kind": "EventsNode", "event": "activated"},
        ],
        "dateRange": _RANGE,
    },
    {"kind": "StickinessQuery", "series": [_PV], "dateRange": _RANGE},
]


def run_bench(
    *,
    events: int = 20_000,
    rounds: int = 30,
    candidate: str = "reference",
    primary: str = "reference",
    interval_ms: float = 0.0,
    workers: int = 1,
) -> dict[str, Any]:
    """Run the benchmark (see the module docstring); returns the numbers as a dict."""
    from eventlens.generate.writer import write_file
    from eventlens.ingest.bulk_import import import_file

    with tempfile.TemporaryDirectory(prefix="eventlens-shadow-bench-") as tmp:
        data_dir = Path(tmp)
        settings = replace(Settings().with_data_dir(data_dir), query_log=False)
        metadata = SqliteMetadataStore(settings.meta_db)
        project = metadata.create_project("bench").project
        source = data_dir / "events.parquet"
        write_file(source, events, seed=11, end=END, days=21)
        import_file(settings, project.id, source)
        plain = QueryService(settings, metadata)
        # candidate "none": an A/A run (both sides without shadow mode) for the noise floor.
        shadowed = build_query_service(
            replace(
                settings,
                shadow_primary=primary,
                shadow_candidate="" if candidate == "none" else candidate,
                shadow_sample=1.0,
                shadow_workers=workers,
            ),
            metadata,
        )
        runner = shadow_of(shadowed)
        times: dict[str, list[float]] = {"off": [], "on": []}
        for service in (plain, shadowed):  # warm up: imports, page cache
            for q in QUERIES:
                service.run_sync(project.id, q, engine=primary)
        if runner is not None:
            runner.drain(600)
        for _ in range(rounds):
            # Blocks of the whole mix, off then on, each followed by a drain: a candidate left
            # running must not land on the other block's queries.
            for label, service in (("off", plain), ("on", shadowed)):
                for q in QUERIES:
                    started = time.perf_counter()
                    service.run_sync(project.id, q, engine=primary)
                    took = time.perf_counter() - started
                    times[label].append(took * 1000.0)
                    time.sleep(max(0.0, interval_ms / 1000.0 - took))
                if runner is not None:
                    runner.drain(600)
        outcomes: dict[str, int] = {}
        if runner is not None:
            runner.drain(600)
            for row in runner.store.comparisons():
                outcomes[row["outcome"]] = outcomes.get(row["outcome"], 0) + row["n"]
            runner.store.close()
        metadata.close()

    def pct(label: str, q: float) -> float:
        return round(float(np.percentile(np.array(times[label]), q)), 3)

    out: dict[str, Any] = {
        "events": events,
        "queries_per_side": len(times["on"]),
        "primary": primary,
        "candidate": candidate,
        "interval_ms": interval_ms,
        "shadow_workers": workers,
        "off_ms": {q: pct("off", v) for q, v in _STATS.items()},
        "on_ms": {q: pct("on", v) for q, v in _STATS.items()},
        "outcomes": outcomes,
    }
    for stat in _STATS:
        off, on = out["off_ms"][stat], out["on_ms"][stat]
        out[f"overhead_{stat}_pct"] = round(100.0 * (on - off) / off, 2) if off else None
    return out

"""`eventlens bench import`: bulk import vs sending the same events through HTTP.

storage.md item 10 asks import to be >= 10x faster than "sending the same events through HTTP".
Both readings are measured in one run on the same generated events:
- the real posthog-python SDK (what a user would script to replay a file; posthog is a test
  extra, so this bench needs `pip install -e .[test]`), against a real durable server;
- the capture benchmark's ceiling (many client processes) is `eventlens bench capture`.
Each path ends only when every event is in the event table.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq

from eventlens.bench.capture import BenchServer
from eventlens.config import Settings
from eventlens.generate import write_file
from eventlens.ingest.bulk_import import import_file
from eventlens.projects.store import SqliteMetadataStore


def _wait_stored(server: BenchServer, n: int, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while server.stored_events() < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {server.stored_events()} of {n} events stored")
        time.sleep(0.1)


def run_import_bench(
    n_events: int, sdk_threads: int = 2, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Import `n_events` generated events, then send the same ones with posthog-python;
    returns {"events", "import_s", "import_eps", "sdk_s", "sdk_eps", "ratio"} (events/s)."""
    from posthog import Posthog  # a test extra: the SDK users already have

    root = Path(tempfile.mkdtemp(prefix="eventlens-bench-import-"))
    try:
        source = root / "events.parquet"
        write_file(source, n_events, seed=42)
        settings = Settings().with_data_dir(root / "import")
        store = SqliteMetadataStore(settings.meta_db)
        project = store.create_project("import").project
        store.close()
        t0 = time.perf_counter()
        result = import_file(settings, project.id, source)
        import_s = time.perf_counter() - t0
        say(f"import: {result.imported:,} events in {import_s:.2f} s")

        server = BenchServer(True, root)
        server.start()
        try:
            rows = pq.read_table(source).to_pylist()
            client = Posthog(
                server.token,
                host=f"http://127.0.0.1:{server.port}",
                max_queue_size=len(rows) + 1,
                thread=sdk_threads,
            )
            t0 = time.perf_counter()
            for r in rows:
                client.capture(
                    r["event"],
                    distinct_id=r["distinct_id"],
                    properties=orjson.loads(r["properties"]),
                    timestamp=r["timestamp"],
                    uuid=r["uuid"],
                )
            client.flush()
            client.shutdown()
            _wait_stored(server, len(rows))
            sdk_s = time.perf_counter() - t0
        finally:
            server.stop()
        say(f"posthog-python ({sdk_threads} threads): {len(rows):,} events in {sdk_s:.2f} s")
        report = {
            "events": n_events,
            "import_s": import_s,
            "import_eps": n_events / import_s,
            "sdk_s": sdk_s,
            "sdk_eps": n_events / sdk_s,
        }
        report["ratio"] = report["import_eps"] / report["sdk_eps"]
        say(f"import / posthog-python events/s: {report['ratio']:.1f}x")
        return report
    finally:
        shutil.rmtree(root, ignore_errors=True)

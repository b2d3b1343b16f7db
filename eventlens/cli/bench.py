"""`eventlens bench ...`: benchmarks are commands, never timed tests (benchmark.md).

`bench_app` is the group; each benchmark adds a command to it (`capture` here, `query` later).
"""

from __future__ import annotations

from pathlib import Path

import orjson
import typer
from rich.console import Console
from rich.table import Table

from eventlens.cli.common import console, fail

bench_app = typer.Typer(help="Benchmarks (capture throughput, queries).", no_args_is_help=True)


@bench_app.command("import")
def import_(
    events: str = typer.Option("200k", "--events", help="Events to generate (10k, 1m, ...)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the report here."),
) -> None:
    """Bulk import vs the same events sent by posthog-python, both until stored."""
    from eventlens.bench.importer import run_import_bench
    from eventlens.errors import EventLensError
    from eventlens.generate import parse_count

    try:
        n = parse_count(events)
    except EventLensError as exc:
        fail(exc)
    report = run_import_bench(n, say=console.print)
    if json_out is not None:
        json_out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))


@bench_app.command("capture")
def capture(
    seconds: float = typer.Option(10.0, "--seconds", help="Measured seconds per run."),
    clients: int = typer.Option(8, "--clients", help="Client processes sending concurrently."),
    batch: list[int] = typer.Option(
        [100, 1], "--batch", help="Events per request; repeat for several (default 100 and 1)."
    ),
    fsync: str = typer.Option("both", "--fsync", help="both, on (durable) or off."),
    warmup: float = typer.Option(2.0, "--warmup", help="Unmeasured seconds before each run."),
    rounds: int = typer.Option(
        1, "--rounds", help="Repeat every (fsync, batch) run this often, alternating; medians."
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write the full report here."),
) -> None:
    """Capture events/s and ack latency (p50/p99) against a real server, fsync on vs off."""
    from eventlens.bench.capture import run_capture_bench

    modes = {"both": (True, False), "on": (True,), "off": (False,)}.get(fsync.lower())
    if modes is None:
        fail(f"--fsync must be both, on or off, not {fsync!r}")
    if seconds <= 0 or clients < 1 or warmup < 0 or rounds < 1 or any(b < 1 for b in batch):
        fail("--seconds must be > 0, --clients and --rounds >= 1, --warmup >= 0, --batch >= 1")
    report = run_capture_bench(
        seconds=seconds,
        clients=clients,
        batches=tuple(batch),
        fsync_modes=modes,
        warmup=warmup,
        rounds=rounds,
        say=console.print,
    )
    table = Table(title=f"capture, {clients} client processes, {seconds:g} s per run")
    columns = "fsync batch events/s requests/s p50_ms p99_ms max_ms errors server_CPU consumer_CPU"
    for col in (columns + " clients_CPU events/CPU-s load").split():
        table.add_column(col.replace("_", " "), justify="right")
    for server in report["servers"]:
        for r in server["runs"]:
            table.add_row(
                "on" if r["fsync"] else "off",
                str(r["batch"]),
                f"{r['events_per_s']:,.0f}",
                f"{r['requests_per_s']:,.0f}",
                f"{r['p50_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
                f"{r['max_ms']:.1f}",
                str(r["errors"]),
                f"{r['server_cpu_s'] / r['wall_s'] * 100:.0f}%",
                f"{r['consumer_cpu_s'] / r['wall_s'] * 100:.0f}%",
                f"{r['client_cpu_s'] / r['wall_s'] * 100:.0f}%",
                f"{r['events_per_cpu_s']:,.0f}",
                f"{r['load_1m']:.1f}",
            )
    # Wide enough for every column even when stdout is not a terminal (Rich assumes 80).
    Console(width=max(console.width, 170)).print(table)
    if rounds > 1:
        for m in report["summary"]:
            console.print(
                f"median of {m['runs']}: fsync={'on' if m['fsync'] else 'off'} "
                f"batch={m['batch']}: {m['events_per_s']:,.0f} events/s, "
                f"p50 {m['p50_ms']:.1f} ms, p99 {m['p99_ms']:.1f} ms"
            )
    for b, ratio in report["ratios"].items():
        console.print(f"durable / non-durable events/s at batch {b}: {ratio:.2f}")
    missing = [s for s in report["servers"] if not s["verified"]]
    if json_out is not None:
        json_out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        console.print(f"report written to {json_out}")
    if missing:
        fail("the table does not hold every acknowledged event (see above)", code=1)


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")

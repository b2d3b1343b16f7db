"""`eventlens bench ...`: benchmarks are commands, never timed tests (benchmark.md).

`bench_app` is the group; every benchmark is a command of it, all in this module: `import`,
`capture`, `query` and `plot`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import typer
from rich.console import Console
from rich.table import Table

from eventlens.cli import errors as exits
from eventlens.cli.common import DataDirOption, console, fail, settings_for
from eventlens.errors import Unavailable


@contextmanager
def bench_extra(command: str) -> Iterator[None]:
    """Turn a missing optional package (chdb, matplotlib, posthog: the `bench` extra, imported
    only inside these commands) into Unavailable naming the install, instead of a traceback."""
    try:
        yield
    except ModuleNotFoundError as exc:
        raise Unavailable(
            f"`eventlens bench {command}` needs {exc.name or 'a package'}, from the bench extra: "
            "pip install 'eventlens[bench]' (or -r requirements.lock)"
        ) from exc


bench_app = typer.Typer(help="Benchmarks (capture throughput, queries).", no_args_is_help=True)


@bench_app.command("import")
def import_(
    events: str = typer.Option("200k", "--events", help="Events to generate (10k, 1m, ...)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the report here."),
) -> None:
    """Bulk import vs the same events sent by posthog-python, both until stored."""
    from eventlens.bench.importer import run_import_bench
    from eventlens.generate import parse_count

    n = parse_count(events)
    with bench_extra("import"):
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
        fail("the table does not hold every acknowledged event (see above)", code=exits.NO)


@bench_app.command("query")
def bench_query(
    size: str = typer.Option("1m", "--size", help="Events: 1m, 10m, 100m (or any count)."),
    engines: str = typer.Option(
        "parallel,duckdb,chdb,reference",
        "--engines",
        help="Comma-separated: parallel,duckdb,chdb,reference (reference is skipped above 10m).",
    ),
    runs: int = typer.Option(7, "--runs", help="Timed runs per (engine, query) after a warm-up."),
    reference_runs: int | None = typer.Option(
        None, "--reference-runs", help="Fewer runs for the (slow) reference engine."
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write every run here."),
    plot_out: Path | None = typer.Option(
        None, "--plot", help="Write a PNG of median time per query and engine (log scale)."
    ),
    queries: str = typer.Option("", "--queries", help="Comma-separated subset of the mix."),
    data: Path | None = typer.Option(
        None,
        "--data",
        help="Benchmark on this Parquet / JSON-lines file (imported with `eventlens import`) "
        "instead of generated data; the mix covers its last 30 days.",
    ),
    executor: str = typer.Option(
        "local",
        "--executor",
        help="ray: also time the parallel engine on the Ray executor (engine 'ray'; a local "
        "Ray instance, the 'cluster' extra), against the local executor in the same run.",
    ),
    ray_workers: int = typer.Option(2, "--ray-workers", help="Bucket-owner actors for 'ray'."),
    api: bool = typer.Option(
        False,
        "--api",
        help="Also time engine 'api': the parallel engine through a real `eventlens serve` on "
        "loopback (HTTP, auth, parse, plan, engine, JSON), interleaved with the others.",
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Time the benchmark.md query mix: parallel vs reference, DuckDB SQL, chdb SQL (and the
    parallel engine on Ray with --executor ray)."""
    from eventlens.bench.query import ENGINES, run_bench
    from eventlens.bench.query_data import query_mix
    from eventlens.generate import parse_count

    n = parse_count(size)
    names = [e.strip() for e in engines.split(",") if e.strip()]
    if executor not in ("local", "ray"):
        fail(f"unknown executor {executor!r} (use local or ray)")
    if executor == "ray" and "ray" not in names:
        names.append("ray")
    if ray_workers < 1:
        fail("--ray-workers must be >= 1")
    unknown = set(names) - set(ENGINES)
    if unknown or not names:
        fail(f"unknown engine(s) {', '.join(sorted(unknown))} (use {', '.join(ENGINES)})")
    if runs < 1 or (reference_runs is not None and reference_runs < 1):
        fail("--runs and --reference-runs must be >= 1")
    subset = [q.strip() for q in queries.split(",") if q.strip()] or None
    bad = set(subset or []) - set(query_mix())
    if bad:
        fail(f"unknown query(ies) {', '.join(sorted(bad))} (use {', '.join(query_mix())})")
    root = settings_for(data_dir).data_dir / "bench"
    with bench_extra("query"):
        report = run_bench(
            n,
            root,
            names,
            runs,
            reference_runs,
            lambda line: console.print(line, soft_wrap=True),
            subset,
            data,
            ray_workers,
            api,
        )
    console.print(f"peak RSS {report['peak_rss_mb']:.0f} MB")
    if json_out is not None:
        json_out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    if plot_out is not None:
        from eventlens.bench.plot import plot_report

        with bench_extra("query --plot"):
            console.print(f"plot: {plot_report(report, plot_out)}")


@bench_app.command("actors")
def bench_actors(
    size: str = typer.Option("1m", "--size", help="Events: 1m, 10m (or any count)."),
    runs: int = typer.Option(5, "--runs", help="Timed runs per point after a warm-up."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the report here."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Time the persons behind funnel steps and a trends point (parallel vs reference)."""
    from eventlens.bench.actors import run_actors_bench
    from eventlens.generate import parse_count

    if runs < 1:
        fail("--runs must be >= 1")
    root = settings_for(data_dir).data_dir / "bench"
    report = run_actors_bench(
        parse_count(size), root, runs, lambda line: console.print(line, soft_wrap=True)
    )
    if json_out is not None:
        json_out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))


@bench_app.command("plot")
def bench_plot(
    report_json: Path = typer.Argument(..., metavar="REPORT.json", help="A `bench query` JSON."),
    out: Path = typer.Argument(..., metavar="OUT.png", help="Where to write the PNG."),
) -> None:
    """Plot a `bench query --json` report: median time per query and engine, log scale."""
    from eventlens.bench.plot import plot_report

    try:
        report = orjson.loads(report_json.read_bytes())
        with bench_extra("plot"):
            plot_report(report, out)
    except (OSError, orjson.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
        fail(f"cannot plot {report_json}: {exc}")
    console.print(f"plot: {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")

"""`eventlens explain --project ID FILE.json [--executor local|inline] [--json] [--data-dir D]`.

Runs the query once on the parallel engine against the project's latest data version and prints
the plan with what happened (EXPLAIN ANALYZE): files pruned and kept, sub-tasks, rows scanned,
per-sub-task read/compute time, merge time. `--json` prints `ExplainReport.to_dict()` (the same
object the API can return for `?explain=1`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from eventlens.cli.common import DataDirOption, console, fail, print_json, settings_for
from eventlens.cli.query import read_request
from eventlens.errors import EventLensError, NotFound
from eventlens.projects.store import SqliteMetadataStore


def explain_local(
    project_id: int, query: Any, data_dir: Path | None, executor: str = "local"
) -> dict[str, Any]:
    """Plan and run `query` on the project's latest snapshot; the report as a dict (result
    under "results"). Raises NotFound for an unknown project or one without events."""
    from eventlens.query import normalise, parse_query
    from eventlens.query.parallel import ParallelEngine
    from eventlens.storage import tables

    settings = settings_for(data_dir)
    store = SqliteMetadataStore(settings.meta_db)
    try:
        project = store.get_project(project_id)
    finally:
        store.close()
    table = tables.open_table(settings, project_id)
    if table is None:
        path = settings.event_table_dir(project_id)
        raise NotFound(f"project {project_id} has no event table yet at {path}")
    snapshot = table.snapshot()
    nq = normalise(
        parse_query(query),
        timezone=project.timezone,
        week_start=project.week_start,
        now=datetime.now(UTC),
    )
    result, report = ParallelEngine(executor).explain(nq, snapshot)
    return {**report.to_dict(), "results": result}


def _print(report: dict[str, Any]) -> None:
    t = report["timings_ms"]
    console.print(
        f"[bold]{report['kind']}[/bold] · kernel {report['kernel']} · data version "
        f"{report['version']} · executor {report['executor']} · passes {report['passes']}"
    )
    console.print(
        f"files: {report['files_kept']} kept, {report['files_pruned']} pruned of "
        f"{report['files_total']} · rows in kept files {report['rows_kept']:,} of "
        f"{report['rows_total']:,} · rows scanned {report['rows_scanned']:,}"
    )
    lo, hi = report["read_range_us"]
    console.print(
        f"read range (µs): [{lo}, {hi}) · events {report['events'] or 'all'} · properties "
        f"{', '.join(report['properties']) or '-'}"
    )
    table = Table(title="sub-tasks")
    columns = ("#", "buckets", "files", "rows in files", "source", "rows read", "read ms")
    for col in (*columns, "compute ms"):
        table.add_column(col, justify="right")
    for run in report["subtask_runs"]:
        buckets = run["buckets"]
        shown = ",".join(map(str, buckets[:6])) + ("..." if len(buckets) > 6 else "")
        table.add_row(
            str(run["index"]),
            shown,
            str(run["files"]),
            f"{run['rows_in_files']:,}",
            run.get("source", "parquet"),
            f"{run['rows_scanned']:,}",
            f"{run['read_ms']:.1f}",
            f"{run['compute_ms']:.1f}",
        )
    console.print(table)
    console.print(
        f"plan {t['plan']:.1f} ms · execute {t['execute']:.1f} ms · merge {t['merge']:.1f} ms · "
        f"finish {t['finish']:.1f} ms · total {t['total']:.1f} ms"
    )


def explain(
    source: str = typer.Argument(..., metavar="FILE.json|-", help="Query JSON file, or - (stdin)."),
    project: int = typer.Option(..., "--project", help="Project id."),
    executor: str = typer.Option("local", "--executor", help="local (default) or inline."),
    as_json: bool = typer.Option(False, "--json", help="Print the report (and results) as JSON."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Show how the parallel engine runs a query: pruning, sub-tasks, rows, timings."""
    try:
        body = read_request(source)
        report = explain_local(project, body["query"], data_dir, executor)
    except EventLensError as exc:
        fail(f"{exc.message} (field: {exc.field})" if exc.field else exc.message)
    if as_json:
        print_json(report)
    else:
        _print(report)


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)
    _register_bench(app)


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
    data_dir: Path | None = DataDirOption,
) -> None:
    """Time the benchmark.md query mix: parallel vs reference, DuckDB SQL, chdb SQL."""
    import orjson

    from eventlens.bench.query import ENGINES, run_bench
    from eventlens.bench.query_data import query_mix
    from eventlens.generate import parse_count

    try:
        n = parse_count(size)
    except EventLensError as exc:
        fail(exc)
    names = [e.strip() for e in engines.split(",") if e.strip()]
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
    report = run_bench(
        n,
        root,
        names,
        runs,
        reference_runs,
        lambda line: console.print(line, soft_wrap=True),
        subset,
    )
    console.print(f"peak RSS {report['peak_rss_mb']:.0f} MB")
    if json_out is not None:
        json_out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    if plot_out is not None:
        from eventlens.bench.plot import plot_report

        console.print(f"plot: {plot_report(report, plot_out)}")


def bench_plot(
    report_json: Path = typer.Argument(..., metavar="REPORT.json", help="A `bench query` JSON."),
    out: Path = typer.Argument(..., metavar="OUT.png", help="Where to write the PNG."),
) -> None:
    """Plot a `bench query --json` report: median time per query and engine, log scale."""
    import orjson

    from eventlens.bench.plot import plot_report

    try:
        report = orjson.loads(report_json.read_bytes())
        plot_report(report, out)
    except (OSError, orjson.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
        fail(f"cannot plot {report_json}: {exc}")
    console.print(f"plot: {out}")


def _register_bench(app: typer.Typer) -> None:
    # `bench` is the generator engineer's group (eventlens/cli/bench.py); add `query` and
    # `plot` to it unless it already has them.
    from eventlens.cli.bench import bench_app

    present = {c.name for c in bench_app.registered_commands}
    if "query" not in present:
        bench_app.command("query")(bench_query)
    if "plot" not in present:
        bench_app.command("plot")(bench_plot)

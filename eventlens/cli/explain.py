"""`eventlens explain --project ID FILE.json [--executor local|inline|ray] [--json] [--data-dir D]`.

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

from eventlens.cli.common import DataDirOption, console, print_json, settings_for
from eventlens.cli.query import read_request
from eventlens.errors import NotFound
from eventlens.projects.store import SqliteMetadataStore


def explain_local(
    project_id: int, query: Any, data_dir: Path | None, executor: str = "local"
) -> dict[str, Any]:
    """Plan and run `query` on the project's latest snapshot; the report as a dict (result
    under "results"). Raises NotFound for an unknown project or one without events."""
    from eventlens.projects.cohorts import CohortStore
    from eventlens.query import parse_query
    from eventlens.query.in_project import normalise_in_project
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
        path = settings.event_table_location(project_id)
        raise NotFound(f"project {project_id} has no event table yet at {path}")
    snapshot = table.snapshot()
    nq = normalise_in_project(
        parse_query(query), project, CohortStore(settings.meta_db), datetime.now(UTC)
    )
    if executor == "ray":
        from eventlens.query.parallel import use_executor

        use_executor(
            "ray",
            address=settings.ray_address,
            workers=settings.ray_workers,
            resident_bytes=settings.ray_worker_resident_mb * 2**20,
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
    columns = ("#", "buckets", "files", "rows in files", "source", "worker", "rows read", "read ms")
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
            run.get("worker", ""),
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
    executor: str = typer.Option(
        "local",
        "--executor",
        help="local (default), inline, or ray (EVENTLENS_RAY_ADDRESS, or a local Ray).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report (and results) as JSON."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Show how the parallel engine runs a query: pruning, sub-tasks, rows, timings."""
    body = read_request(source)
    report = explain_local(project, body["query"], data_dir, executor)
    if as_json:
        print_json(report)
    else:
        _print(report)


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)

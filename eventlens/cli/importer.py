"""`eventlens import FILE --project ID`: bulk-load an event export into a project's table."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from eventlens.cli.common import DataDirOption, console, print_json, settings_for
from eventlens.cli.errors import fail
from eventlens.errors import InvalidInput, NotFound
from eventlens.ingest.bulk_import import ImportResult, count_rows, import_file
from eventlens.projects.store import SqliteMetadataStore
from eventlens.storage import format as data_format


def import_command(
    file: Path = typer.Argument(..., help="Export to load: .parquet, .csv, .jsonl or .ndjson."),
    project: int = typer.Option(
        ..., "--project", help="Project id (see `eventlens project list`)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print {imported, duplicates, invalid}."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Import events (capture shape: uuid, event, distinct_id, timestamp, properties) with the
    same person resolution and dedupe as capture; invalid rows go to the dead-letter store
    and make the command exit 2 (invalid input) after the valid rows are stored."""
    settings = settings_for(data_dir)
    data_format.ensure_current(settings.data_dir)  # never write tables of another format
    store = SqliteMetadataStore(settings.meta_db)
    try:
        if all(p.id != project for p in store.list_projects()):
            raise NotFound(f"no project with id {project}")
    finally:
        store.close()
    started = time.perf_counter()
    columns = [
        TextColumn("[bold]importing[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, disable=as_json) as bar:
        task = bar.add_task(file.name, total=count_rows(file), rate="")

        def advance(n: int) -> None:
            done = bar.tasks[0].completed + n
            rate = done / max(time.perf_counter() - started, 1e-9)
            bar.update(task, advance=n, rate=f"{rate:,.0f} events/s")

        result = import_file(settings, project, file, progress=advance)
    elapsed = time.perf_counter() - started
    if as_json:
        print_json(
            {
                "imported": result.imported,
                "duplicates": result.duplicates,
                "invalid": result.invalid,
                "reasons": result.reasons,
                "rejected_sample": [
                    {"row": r.row, "reason": r.reason, "payload": r.payload} for r in result.sample
                ],
                "seconds": round(elapsed, 3),
            }
        )
    else:
        total = result.imported + result.duplicates + result.invalid
        console.print(
            f"imported {result.imported:,} events ({result.duplicates:,} duplicates skipped, "
            f"{result.invalid:,} invalid -> `eventlens deadletter list`) in {elapsed:.1f}s "
            f"({total / max(elapsed, 1e-9):,.0f} rows/s)"
        )
    if result.invalid:
        fail(InvalidInput(rejected_message(result, project)))


def rejected_message(result: ImportResult, project: int) -> str:
    """What was rejected: the count, the count per reason and the first rows as stored."""
    reasons = "; ".join(f"{n:,} {reason}" for reason, n in sorted(result.reasons.items()))
    lines = [
        f"{result.invalid:,} rows rejected ({reasons}); they are dead letters: "
        f"`eventlens deadletter list --project {project}`, fix the rule or the file, then "
        "`eventlens deadletter replay` (or re-import the fixed file)"
    ]
    for r in result.sample:
        shown = orjson.dumps(r.payload).decode()
        shown = shown if len(shown) <= 200 else shown[:197] + "..."
        lines.append(f"  row {r.row}: {r.reason}: {shown}")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)

"""`eventlens cohort create|list|upload`: the cohort API's service, on a data directory."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import orjson
import typer

from eventlens.cli.common import DataDirOption, fail, print_json, settings_for
from eventlens.projects.cohorts import CohortStore
from eventlens.projects.store import SqliteMetadataStore
from eventlens.query.cohort_service import MAX_CSV_BYTES, CohortService
from eventlens.storage import tables

cohort_app = typer.Typer(help="Create, list and fill cohorts.", no_args_is_help=True)


def _run(data_dir: Path | None, project_id: int, fn: Any) -> Any:
    settings = settings_for(data_dir)
    meta = SqliteMetadataStore(settings.meta_db)
    store = CohortStore(settings.meta_db)
    try:
        project = meta.get_project(project_id)  # NotFound -> its exit code
        pin = functools.partial(tables.snapshot, settings)
        return fn(CohortService(store, settings.state_db, pin), project)
    finally:
        store.close()
        meta.close()


@cohort_app.command("create")
def create(
    project_id: int = typer.Argument(..., help="Project id."),
    name: str = typer.Argument(..., help="The cohort's name."),
    filters: str | None = typer.Option(
        None, "--filters", help='Dynamic: PostHog cohort JSON {"properties": {"type": ...}}.'
    ),
    distinct_ids: str | None = typer.Option(
        None, "--distinct-ids", help="Static: comma-separated distinct ids."
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Create a dynamic cohort (--filters) or a static one (--distinct-ids; may be empty, then
    `eventlens cohort upload`); prints it as JSON (static: with unknown ids)."""
    if (filters is None) == (distinct_ids is None):
        fail("give --filters (dynamic) or --distinct-ids (static)")
    body: dict[str, Any] = {"name": name}
    if filters is not None:
        try:
            body["filters"] = orjson.loads(filters)
        except orjson.JSONDecodeError as exc:
            fail(f"--filters is not JSON: {exc}")
    else:
        assert distinct_ids is not None
        body["is_static"] = True
        body["distinct_ids"] = [d.strip() for d in distinct_ids.split(",") if d.strip()]
    print_json(_run(data_dir, project_id, lambda svc, p: svc.create(p, body)))


@cohort_app.command("list")
def list_cohorts(
    project_id: int = typer.Argument(..., help="Project id."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """The project's cohorts with their counts, as JSON."""
    print_json({"results": _run(data_dir, project_id, lambda svc, p: svc.list_cohorts(p))})


@cohort_app.command("upload")
def upload(
    project_id: int = typer.Argument(..., help="Project id."),
    cohort_id: int = typer.Argument(..., help="A static cohort's id."),
    csv_file: Path = typer.Argument(..., help="CSV: one distinct id per line, header optional."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Add a CSV's distinct ids to a static cohort: prints {added, unknown, sample_unknown}."""
    if not csv_file.is_file():
        fail(f"{csv_file}: no such file")
    if csv_file.stat().st_size > MAX_CSV_BYTES:
        fail(f"{csv_file}: a cohort CSV is at most {MAX_CSV_BYTES} bytes")
    body = csv_file.read_bytes()
    print_json(_run(data_dir, project_id, lambda svc, p: svc.upload(p, cohort_id, body)))


def register(app: typer.Typer) -> None:
    app.add_typer(cohort_app, name="cohort")

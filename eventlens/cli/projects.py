"""`eventlens project create|list`."""

from __future__ import annotations

from pathlib import Path

import typer

from eventlens.cli.common import DataDirOption, console, fail, print_json, settings_for
from eventlens.projects.store import SqliteMetadataStore
from eventlens.storage import format as data_format

project_app = typer.Typer(help="Create and list projects.", no_args_is_help=True)


@project_app.command("create")
def create(
    name: str,
    timezone: str = typer.Option("UTC", "--timezone", help="IANA timezone of the project."),
    week_start: str = typer.Option("sunday", "--week-start", help="sunday or monday."),
    as_json: bool = typer.Option(False, "--json", help="Print {id, token, api_key} as JSON."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Create a project; prints its id, public token (for SDKs) and secret API key (once)."""
    if week_start.lower() not in ("sunday", "monday"):
        fail(f"--week-start must be sunday or monday, not {week_start!r}")
    settings = settings_for(data_dir)
    data_format.ensure_current(settings.data_dir)  # records a new directory's format
    store = SqliteMetadataStore(settings.meta_db)
    try:
        created = store.create_project(name, timezone, 1 if week_start.lower() == "monday" else 0)
    finally:
        store.close()
    p = created.project
    if as_json:
        print_json(
            {
                "id": p.id,
                "token": p.token,
                "api_key": created.api_key,
                "name": p.name,
                "timezone": p.timezone,
            }
        )
        return
    console.print(f"Project [bold]{p.name}[/bold] created (timezone {p.timezone})")
    console.print(f"  id:      {p.id}")
    console.print(f"  token:   {p.token}   (public: put it in your SDK)")
    console.print(f"  api key: {created.api_key}   (secret: shown once, used to read)")


@project_app.command("list")
def list_(
    as_json: bool = typer.Option(False, "--json"), data_dir: Path | None = DataDirOption
) -> None:
    """List projects (id, name, timezone, token)."""
    store = SqliteMetadataStore(settings_for(data_dir).meta_db)
    projects = store.list_projects()
    store.close()
    if as_json:
        print_json(
            [
                {"id": p.id, "name": p.name, "timezone": p.timezone, "token": p.token}
                for p in projects
            ]
        )
        return
    for p in projects:
        console.print(f"{p.id}\t{p.name}\t{p.timezone}\t{p.token}")


def register(app: typer.Typer) -> None:
    app.add_typer(project_app, name="project")

"""`eventlens project create|list`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import typer

from eventlens.accounts.store import AccountStore
from eventlens.cli.common import DataDirOption, console, fail, print_json, settings_for
from eventlens.errors import InvalidQuery
from eventlens.projects.store import SqliteMetadataStore
from eventlens.query.posthog_fields import (
    parse_path_cleaning_filters,
    parse_test_account_filters,
)
from eventlens.storage import format as data_format

project_app = typer.Typer(help="Create and list projects.", no_args_is_help=True)


def _filters(text: str) -> list[Any]:
    """--test-account-filters JSON, validated as a query's properties are."""
    try:
        return parse_test_account_filters(orjson.loads(text))
    except orjson.JSONDecodeError as exc:
        fail(f"--test-account-filters is not JSON: {exc}")
    except InvalidQuery as exc:
        fail(f"--test-account-filters: {exc.message}")
    raise AssertionError("unreachable")


@project_app.command("create")
def create(
    name: str,
    timezone: str = typer.Option("UTC", "--timezone", help="IANA timezone of the project."),
    week_start: str = typer.Option("sunday", "--week-start", help="sunday or monday."),
    test_account_filters: str = typer.Option(
        "[]",
        "--test-account-filters",
        help="JSON list of property filters applied by filterTestAccounts: true (PostHog's).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print {id, token, api_key} as JSON."),
    org: int | None = typer.Option(None, "--org", help="Owning organisation (default: 1)."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Create a project; prints its id, public token (for SDKs) and secret API key (once)."""
    if week_start.lower() not in ("sunday", "monday"):
        fail(f"--week-start must be sunday or monday, not {week_start!r}")
    filters = _filters(test_account_filters)
    settings = settings_for(data_dir)
    data_format.ensure_current(settings.data_dir)  # records a new directory's format
    store = SqliteMetadataStore(settings.meta_db)
    accounts = AccountStore(settings.meta_db)
    try:
        if org is not None:
            accounts.org_name(org)  # NotFound before a project is made
        created = store.create_project(name, timezone, 1 if week_start.lower() == "monday" else 0)
        if org is not None:
            accounts.assign_project(created.project.id, org)
        p = store.set_test_account_filters(created.project.id, filters) if filters else None
    finally:
        accounts.close()
        store.close()
    p = p or created.project
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
                {
                    "id": p.id,
                    "name": p.name,
                    "timezone": p.timezone,
                    "token": p.token,
                    "test_account_filters": p.test_account_filters,
                    "path_cleaning_filters": p.path_cleaning_filters,
                }
                for p in projects
            ]
        )
        return
    for p in projects:
        console.print(f"{p.id}\t{p.name}\t{p.timezone}\t{p.token}")


@project_app.command("set-test-account-filters")
def set_test_account_filters(
    project_id: int,
    filters: str = typer.Argument(..., help='JSON list, e.g. \'[{"key": "email", ...}]\'.'),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Replace the project's test-account filters (PostHog's): the property filters a query
    with filterTestAccounts: true is also filtered by. `[]` clears them."""
    parsed = _filters(filters)
    store = SqliteMetadataStore(settings_for(data_dir).meta_db)
    try:
        p = store.set_test_account_filters(project_id, parsed)
    finally:
        store.close()
    print_json({"id": p.id, "test_account_filters": p.test_account_filters})


@project_app.command("set-path-cleaning")
def set_path_cleaning(
    project_id: int,
    filters: str = typer.Argument(
        ..., help='JSON list, e.g. \'[{"alias": "/user/:id", "regex": "/user/\\\\d+"}]\'.'
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Replace the project's path cleaning rules (PostHog's): each rule replaces every RE2
    match of `regex` in a path node's name by `alias`, in order, in paths queries with
    pathReplacements: true (before the query's own rules). `[]` clears them."""
    try:
        parsed = parse_path_cleaning_filters(orjson.loads(filters))
    except orjson.JSONDecodeError as exc:
        fail(f"path cleaning rules are not JSON: {exc}")
    except InvalidQuery as exc:
        fail(exc.message)
    store = SqliteMetadataStore(settings_for(data_dir).meta_db)
    try:
        p = store.set_path_cleaning_filters(project_id, parsed)
    finally:
        store.close()
    print_json({"id": p.id, "path_cleaning_filters": p.path_cleaning_filters})


@project_app.command("rotate-key")
def rotate_key(project_id: int, data_dir: Path | None = DataDirOption) -> None:
    """Replace the project's secret key (legacy); the old one stops working. Prints the new."""
    store = SqliteMetadataStore(settings_for(data_dir).meta_db)
    try:
        key = store.rotate_api_key(project_id)
    finally:
        store.close()
    console.print(key, soft_wrap=True, highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(project_app, name="project")

"""The `eventlens` command. Each command group lives in its own module and registers itself."""

from __future__ import annotations

import typer

from eventlens.cli import (
    backup,
    bench,
    cohorts,
    deadletter,
    demo,
    explain,
    generate,
    importer,
    loadtest,
    projects,
    query,
    serve,
    shadow,
    slo,
    status,
    users,
)
from eventlens.cli.errors import ErrorMappingGroup

app = typer.Typer(
    name="eventlens",
    help="Self-hosted product analytics: capture, store and query product events.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=ErrorMappingGroup,  # every command's errors -> documented exit codes (cli/errors.py)
)

for module in (
    serve,
    projects,
    query,
    status,
    generate,
    importer,
    deadletter,
    demo,
    bench,
    explain,
    shadow,
    loadtest,
    slo,
    backup,
    users,
    cohorts,
):
    module.register(app)


def main() -> None:
    app()

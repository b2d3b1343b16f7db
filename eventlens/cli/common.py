"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import orjson
import typer
from rich.console import Console

from eventlens.config import Settings
from eventlens.errors import EventLensError

console = Console()
err_console = Console(stderr=True)

DataDirOption = typer.Option(
    None,
    "--data-dir",
    envvar="EVENTLENS_DATA_DIR",
    help="Data directory (default ./eventlens-data).",
)


def settings_for(data_dir: Path | None) -> Settings:
    s = Settings()
    return s if data_dir is None else s.with_data_dir(data_dir)


def print_json(obj: Any) -> None:
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode() + "\n")


def fail(exc: EventLensError | str, code: int = 2) -> NoReturn:
    """Print a user error (no traceback) and exit with `code`."""
    msg = exc.message if isinstance(exc, EventLensError) else exc
    err_console.print(f"[red]error:[/red] {msg}")
    raise typer.Exit(code)

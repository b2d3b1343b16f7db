"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console

from eventlens.cli.errors import err_console, fail
from eventlens.config import Settings

__all__ = ["DataDirOption", "console", "err_console", "fail", "print_json", "settings_for"]

console = Console()

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

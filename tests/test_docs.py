"""Docs that cannot drift (Datasette's rule): every setting, CLI command, metric is documented."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer.main

from eventlens.cli.main import app
from eventlens.config import Settings
from eventlens.observability.metrics import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()
ALL_DOCS = "\n".join(
    p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
)


def _commands(cmd: Any, prefix: str = "eventlens") -> list[str]:
    # typer vendors its own click, so test for a group by its `commands` mapping.
    if getattr(cmd, "commands", None):
        out: list[str] = []
        for name, sub in cmd.commands.items():
            out += _commands(sub, f"{prefix} {name}")
        return out
    return [prefix]


def test_every_setting_is_documented() -> None:
    missing = [f.name for f in dataclasses.fields(Settings) if f"`{f.name}`" not in OPERATIONS]
    assert not missing, f"settings missing from docs/operations.md: {missing}"


def test_every_metric_is_documented() -> None:
    names = {m.name for m in REGISTRY.collect()}
    missing = sorted(n for n in names if n not in OPERATIONS)
    assert names and not missing, f"metrics missing from docs/operations.md: {missing}"


def test_every_cli_command_is_documented() -> None:
    commands = _commands(typer.main.get_command(app))
    missing = [c for c in commands if c not in ALL_DOCS]
    assert len(commands) >= 2 and not missing, f"CLI commands missing from docs: {missing}"

"""Every alert has a runbook with the sections on-call needs, and every `eventlens ...`
command a runbook tells them to run exists in the CLI, with the options it names."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main

from eventlens.cli.main import app
from eventlens.observability import rules, slo

RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks"
SECTIONS = (
    "## What users feel",
    "## Confirm it is real",
    "## First safe actions",
    "## Likely causes, most likely first",
    "## Escalate",
)
_COMMAND = re.compile(r"`(eventlens [^`]+)`")


def resolve(words: list[str], root: Any) -> tuple[Any, list[str]]:
    """Walk `eventlens A B ...` down the Click tree: the command reached and the words left.
    Raises LookupError for a word that names no sub-command of a group."""
    cmd = root
    rest = words[1:]
    while getattr(cmd, "commands", None):
        if not rest or rest[0] not in cmd.commands:
            raise LookupError(f"{' '.join(words)!r}: {rest[:1]} is not a command of the group")
        cmd, rest = cmd.commands[rest[0]], rest[1:]
    return cmd, rest


def unknown_options(cmd: Any, rest: list[str]) -> list[str]:
    known = {opt for p in cmd.params for opt in getattr(p, "opts", [])}
    return [w.split("=")[0] for w in rest if w.startswith("--") and w.split("=")[0] not in known]


def test_every_alert_has_a_runbook_with_every_section() -> None:
    for alert in rules.alert_names(slo.load()):
        page = RUNBOOKS / f"{alert}.md"
        assert page.exists(), f"alert {alert} has no runbook {page}"
        text = page.read_text()
        missing = [s for s in SECTIONS if s not in text]
        assert not missing, f"{page.name} lacks {missing}"
    pages = {p.stem for p in RUNBOOKS.glob("*.md")} - {"README"}
    assert pages == set(rules.alert_names(slo.load())), "runbooks of no alert"


def test_every_runbook_command_exists_in_the_cli() -> None:
    root = typer.main.get_command(app)
    seen = 0
    for page in sorted(RUNBOOKS.glob("*.md")):
        for command in _COMMAND.findall(page.read_text()):
            cmd, rest = resolve(shlex.split(command), root)
            assert not unknown_options(cmd, rest), f"{page.name}: {command!r}"
            seen += 1
    assert seen >= 10


def test_the_checker_rejects_what_does_not_exist() -> None:
    root = typer.main.get_command(app)
    with pytest.raises(LookupError):
        resolve(["eventlens", "frobnicate"], root)
    with pytest.raises(LookupError):
        resolve(["eventlens", "deadletter", "purge"], root)
    cmd, rest = resolve(["eventlens", "status", "--project", "3", "--colour"], root)
    assert unknown_options(cmd, rest) == ["--colour"]

"""The dependency sets declared in pyproject.toml, and which import names each one provides."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "eventlens"


def normalise(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(requirements: list[str]) -> set[str]:
    out = set()
    for req in requirements:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
        assert match, f"unparseable requirement in pyproject.toml: {req!r}"
        out.add(normalise(match.group(1)))
    return out


def declared() -> tuple[set[str], dict[str, set[str]]]:
    """(runtime dependencies, {extra: its dependencies}) as normalised distribution names."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {k: _names(v) for k, v in project.get("optional-dependencies", {}).items()}
    return _names(project["dependencies"]), extras


def providers() -> dict[str, set[str]]:
    """Top-level import name -> normalised names of the installed distributions providing it."""
    return {
        module: {normalise(d) for d in dists}
        for module, dists in importlib.metadata.packages_distributions().items()
    }


def modules_of(distributions: set[str]) -> set[str]:
    """The top-level import names the given (installed) distributions provide."""
    return {m for m, dists in providers().items() if dists & distributions}

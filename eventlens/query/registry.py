"""The one registry of engines, by name: what the query service and shadow mode resolve
`engine` / `shadow_candidate` settings and request fields against.

"reference" (the oracle) and "parallel" (the production engine) are always registered. Another
engine plugs in either by `register_engine(engine)` or as a package `eventlens.query.<name>`
that defines `make_engine() -> Engine`, imported on first use of its name. The registry sits
above the engines: engines never import it (tests/test_architecture.py).
"""

from __future__ import annotations

import importlib

from eventlens.errors import InvalidQuery
from eventlens.query.engines import Engine

__all__ = ["engine_names", "get_engine", "register_engine"]

_ENGINES: dict[str, Engine] = {}


def register_engine(engine: Engine) -> None:
    """Add (or replace) an engine under `engine.name`."""
    _register_builtin()
    _ENGINES[engine.name] = engine


def get_engine(name: str = "reference") -> Engine:
    """The engine registered as `name`; InvalidQuery (field "engine") if there is none."""
    _register_builtin()
    if name not in _ENGINES:
        _import_plugin(name)
    try:
        return _ENGINES[name]
    except KeyError:
        raise InvalidQuery(
            f"unknown engine {name!r} (available: {', '.join(sorted(_ENGINES))})", field="engine"
        ) from None


def engine_names() -> list[str]:
    """Names of the registered engines, sorted."""
    _register_builtin()
    return sorted(_ENGINES)


def _register_builtin() -> None:
    # Lazily, so importing eventlens.query does not import every engine.
    if "reference" not in _ENGINES:
        from eventlens.query.reference import ReferenceEngine

        _ENGINES["reference"] = ReferenceEngine()
    if "parallel" not in _ENGINES:
        from eventlens.config import Settings
        from eventlens.query.parallel import ParallelEngine

        _ENGINES["parallel"] = ParallelEngine(min_task_rows=Settings().query_min_task_rows)


def _import_plugin(name: str) -> None:
    """Register `eventlens.query.<name>.make_engine()` if that package exists and has one."""
    if not name.isidentifier():
        return
    try:
        module = importlib.import_module(f"eventlens.query.{name}")
    except ImportError:
        return
    make = getattr(module, "make_engine", None)
    if callable(make):
        engine = make()
        if isinstance(engine, Engine):
            _ENGINES[name] = engine

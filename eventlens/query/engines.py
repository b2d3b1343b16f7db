"""The engine seam: one protocol, one registry. "reference" (the oracle) is always registered."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from eventlens.errors import InvalidQuery
from eventlens.query.normalise import NormalisedQuery


@runtime_checkable
class Engine(Protocol):
    """Runs a normalised query over one pinned snapshot; returns JSON-able results."""

    name: str

    def run(self, query: NormalisedQuery, snapshot: Any) -> Any: ...


_ENGINES: dict[str, Engine] = {}


def register_engine(engine: Engine) -> None:
    """Add (or replace) an engine under `engine.name`."""
    _register_builtin()
    _ENGINES[engine.name] = engine


def get_engine(name: str = "reference") -> Engine:
    """The engine registered as `name`; InvalidQuery (field "engine") if there is none."""
    _register_builtin()
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
        from eventlens.query.parallel import ParallelEngine

        _ENGINES["parallel"] = ParallelEngine()

"""The engine seam: what an engine is, how it is called, and the one registry of engines.

- `Engine`: `run(query, snapshot) -> InsightResult` over one pinned Snapshot (two engines given
  one version see the same data). Engines poll the current deadline (`eventlens.query.deadline`).
- `ExplainingEngine`: the separate capability of explaining a run (EXPLAIN ANALYZE).
- `run_engine`: the one place an engine is called: with the deadline current, and explaining
  when asked. The query service and shadow mode both call engines through it.

Engines implement this module and never import the registry that finds them by name
(`eventlens.query.registry`, a service-level module).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

from eventlens.errors import InvalidQuery
from eventlens.query.deadline import Deadline, using
from eventlens.query.normalise import NormalisedQuery

if TYPE_CHECKING:  # the storage package is imported only by what reads a table
    from eventlens.storage.event_table import Snapshot

# JSON-able result rows (insights.md): series rows, funnel steps (a list per breakdown value),
# retention cohorts, ...
InsightResult: TypeAlias = list[Any]


@runtime_checkable
class Engine(Protocol):
    """Runs a normalised query over one pinned snapshot; returns JSON-able results. Stops at the
    current deadline's next check (`eventlens.query.deadline.check`) with QueryTimeout."""

    name: str

    def run(self, query: NormalisedQuery, snapshot: Snapshot) -> InsightResult: ...


class PlanReport(Protocol):
    """What an explaining engine reports about one run."""

    def to_dict(self) -> dict[str, Any]: ...


@runtime_checkable
class ExplainingEngine(Engine, Protocol):
    """An engine that can also report its plan and where the time went."""

    def explain(
        self, query: NormalisedQuery, snapshot: Snapshot
    ) -> tuple[InsightResult, PlanReport]: ...


@runtime_checkable
class ActorsEngine(Engine, Protocol):
    """An engine that can also list the persons behind one number of an insight: `cell`
    (eventlens.query.semantics.actors) resolved against the answer of `query` (or None for a
    kind whose selector is inside its query, as paths). Returns sorted person ids."""

    def actors(self, query: NormalisedQuery, snapshot: Snapshot, cell: Any) -> list[str]: ...


def run_actors(
    engine: Engine, query: NormalisedQuery, snapshot: Snapshot, cell: Any, deadline: Deadline
) -> list[str]:
    """Sorted person ids of `cell`, computed by `engine` with `deadline` current. InvalidQuery
    (field "engine") for an engine without the actors capability."""
    if not isinstance(engine, ActorsEngine):
        raise InvalidQuery(
            f"engine {engine.name!r} cannot list actors; use 'parallel' or 'reference'",
            field="engine",
        )
    with using(deadline):
        return engine.actors(query, snapshot, cell)


def can_explain(engine: Engine) -> bool:
    """Does `engine` have the explain capability?"""
    return isinstance(engine, ExplainingEngine)


def run_engine(
    engine: Engine,
    query: NormalisedQuery,
    snapshot: Snapshot,
    deadline: Deadline,
    *,
    explain: bool = False,
) -> tuple[InsightResult, dict[str, Any] | None]:
    """(result, explain report as a dict or None): `engine` run with `deadline` current.
    InvalidQuery (field "explain") if `explain` is asked of an engine that cannot explain."""
    with using(deadline):
        if not explain:
            return engine.run(query, snapshot), None
        if not isinstance(engine, ExplainingEngine):
            raise _cannot_explain(engine.name)
        result, report = engine.explain(query, snapshot)
        return result, report.to_dict()


def _cannot_explain(name: str) -> InvalidQuery:
    return InvalidQuery(
        f"engine {name!r} cannot explain its plan; use engine 'parallel'", field="explain"
    )


def check_can_explain(engine: Engine, name: str) -> None:
    """InvalidQuery (field "explain") unless `engine` can explain (checked before queueing)."""
    if not can_explain(engine):
        raise _cannot_explain(name)

"""Observers of the query service: what plugs in around each query (shadow mode today; the
result cache's bookkeeping and tracing next).

The service calls every observer's `query_started` just before the engine runs (in the pool
thread) and `query_finished` right after, with the answer or the error. Observers must be cheap
and must not block: they run on the query's thread. An observer that raises is logged and
skipped; it never fails the query or stops the other observers.

Observers are given to `QueryService(..., observers=[...])` by whoever builds the service (the
composition root); the query package never imports an observer's package.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from eventlens.query.engines import Engine, InsightResult
from eventlens.query.normalise import NormalisedQuery

if TYPE_CHECKING:  # imported only for the types: keep `import eventlens.query` light
    from eventlens.projects.store import Project
    from eventlens.storage.event_table import Snapshot


@dataclass(frozen=True)
class QueryStarted:
    """A query about to run. `query` is the query JSON as received; `now` the instant it was
    normalised against; `engine_name` the name it was asked for by."""

    project: Project
    query: dict[str, Any]
    normalised: NormalisedQuery
    now: datetime
    engine_name: str
    engine: Engine

    @property
    def kind(self) -> str:
        return self.normalised.kind


@dataclass(frozen=True)
class QueryAnswered:
    """The engine's answer: over `snapshot` (the pinned data version) in `execute_s` seconds;
    `timings` are the milliseconds the service reports."""

    snapshot: Snapshot
    result: InsightResult
    execute_s: float
    timings: dict[str, float]


@runtime_checkable
class QueryObserver(Protocol):
    """Called around each query the service runs (see the module docstring)."""

    def query_started(self, query: QueryStarted) -> None: ...

    def query_finished(
        self, query: QueryStarted, answer: QueryAnswered | None, error: BaseException | None
    ) -> None:
        """Exactly one of `answer` and `error` is set (`error`: what the caller will get)."""
        ...

"""The one registry of insight kinds: for each query model, its kind name and where each engine
implements it.

The model (`eventlens.query.model.QUERY_KINDS`) says which kinds exist; this table says, per
kind, which function of the reference engine and which kernel of the parallel engine compute it.
Implementations are named by import path, so this module imports neither engine (an engine
loads only its own column, and only when a query of that kind runs); the table is checked
against the model at import, so a kind without an implementation cannot be added silently.

`InsightKind.narrow` is the one place a query of any kind is seen as its precise type, so the
implementations take `NormalisedQuery[TrendsQuery]` etc. and need no isinstance checks.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, TypeVar, cast

from eventlens.query.model import (
    QUERY_KINDS,
    FunnelsQuery,
    InsightQuery,
    LifecycleQuery,
    PathsQuery,
    RetentionQuery,
    StickinessQuery,
    TrendsQuery,
)
from eventlens.query.normalise import NormalisedQuery

Q = TypeVar("Q", bound=InsightQuery)


@dataclass(frozen=True)
class InsightKind(Generic[Q]):
    """One insight kind. `reference`: "module:function" of the reference engine's
    `run(nq, events) -> result`; `parallel`: "module:attribute" of the parallel engine's Kernel.
    `reference_actors` / `parallel_actors`: where each engine lists the persons behind one
    number of the kind (docs/adr/0016-actors.md): the reference's `f(nq, events, cell) ->
    set[person_id]` and the kernel module's `f(params, frame, cell) -> person codes` of one
    partition (persons never cross partitions, so the union is exact)."""

    name: str
    model: type[Q]
    reference: str
    parallel: str
    reference_actors: str
    parallel_actors: str

    def narrow(self, nq: NormalisedQuery) -> NormalisedQuery[Q]:
        """`nq` typed as a query of this kind; TypeError if it is another kind."""
        if not isinstance(nq.query, self.model):
            raise TypeError(f"a {nq.query.kind} is not a {self.name}")
        return cast("NormalisedQuery[Q]", nq)


def _kind(model: type[Q], module: str, function: str, actors: str) -> InsightKind[Q]:
    name = str(model.model_fields["kind"].default)
    return InsightKind(
        name=name,
        model=model,
        reference=f"eventlens.query.reference.{module}:{function}",
        parallel=f"eventlens.query.parallel.kernels.{module}:KERNEL",
        # One function name in both engines' module of the kind.
        reference_actors=f"eventlens.query.reference.{module}:{actors}",
        parallel_actors=f"eventlens.query.parallel.kernels.{module}:{actors}",
    )


# (model, module, insight function, actors function). A kind without actors of its own cells
# (paths: its selector is inside the PathsQuery) still names its `<kind>_actors(..., cell=None)`.
KINDS: tuple[InsightKind[Any], ...] = (
    _kind(TrendsQuery, "trends", "run_trends", "trends_actors"),
    _kind(FunnelsQuery, "funnels", "run_funnels", "funnel_actors"),
    _kind(RetentionQuery, "retention", "run_retention", "retention_actors"),
    _kind(StickinessQuery, "stickiness", "run_stickiness", "stickiness_actors"),
    _kind(LifecycleQuery, "lifecycle", "run_lifecycle", "lifecycle_actors"),
    _kind(PathsQuery, "paths", "run_paths", "paths_actors"),
)
_BY_NAME: dict[str, InsightKind[Any]] = {k.name: k for k in KINDS}
if {k.name: k.model for k in KINDS} != QUERY_KINDS:
    raise RuntimeError("eventlens.query.kinds.KINDS does not cover the query model's kinds")


def kind(name: str) -> InsightKind[Any]:
    """The kind named `name` ("TrendsQuery", ...); KeyError for an unknown name."""
    return _BY_NAME[name]


def kind_of(nq: NormalisedQuery) -> InsightKind[Any]:
    """The kind of a normalised query."""
    return _BY_NAME[nq.query.kind]


@cache
def load(path: str) -> object:
    """The object at "module:attribute" (imported on first use)."""
    module, _, attribute = path.partition(":")
    return cast(object, getattr(importlib.import_module(module), attribute))

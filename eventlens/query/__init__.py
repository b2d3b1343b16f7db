"""Insight queries: model (parse), normalisation (calendar), engines (run). See insights.md.

parse_query(obj) -> InsightQuery          400-style InvalidQuery naming the field
normalise(query, timezone=, week_start=, now=) -> NormalisedQuery (.fingerprint, .to_json())
get_engine("reference").run(normalised, snapshot) -> JSON-able result
run_engine(engine, normalised, snapshot, deadline) -> (result, explain report or None)

Seams: `Engine` / `ExplainingEngine` (engines.py), `QueryObserver` (observers.py), the one
registry of insight kinds (kinds.py); engines by name in registry.py. The query service is
`eventlens.query.service`.
"""

from eventlens.query.engines import (
    Engine,
    ExplainingEngine,
    InsightResult,
    PlanReport,
    run_engine,
)
from eventlens.query.kinds import KINDS, InsightKind, kind_of
from eventlens.query.model import (
    FunnelsQuery,
    InsightQuery,
    LifecycleQuery,
    PathsQuery,
    RetentionQuery,
    StickinessQuery,
    TrendsQuery,
    parse_query,
)
from eventlens.query.normalise import NormalisedQuery, normalise
from eventlens.query.observers import QueryAnswered, QueryObserver, QueryStarted
from eventlens.query.registry import engine_names, get_engine, register_engine

__all__ = [
    "KINDS",
    "Engine",
    "ExplainingEngine",
    "FunnelsQuery",
    "InsightKind",
    "InsightQuery",
    "InsightResult",
    "LifecycleQuery",
    "NormalisedQuery",
    "PathsQuery",
    "PlanReport",
    "QueryAnswered",
    "QueryObserver",
    "QueryStarted",
    "RetentionQuery",
    "StickinessQuery",
    "TrendsQuery",
    "engine_names",
    "get_engine",
    "kind_of",
    "normalise",
    "parse_query",
    "register_engine",
    "run_engine",
]

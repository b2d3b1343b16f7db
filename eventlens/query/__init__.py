"""Insight queries: model (parse), normalisation (calendar), engines (run). See insights.md.

parse_query(obj) -> InsightQuery          400-style InvalidQuery naming the field
normalise(query, timezone=, week_start=, now=) -> NormalisedQuery (.fingerprint, .to_json())
get_engine("reference").run(normalised, snapshot) -> JSON-able result
"""

from eventlens.query.engines import Engine, engine_names, get_engine, register_engine
from eventlens.query.model import (
    FunnelsQuery,
    InsightQuery,
    LifecycleQuery,
    RetentionQuery,
    StickinessQuery,
    TrendsQuery,
    parse_query,
)
from eventlens.query.normalise import NormalisedQuery, normalise

__all__ = [
    "Engine",
    "FunnelsQuery",
    "InsightQuery",
    "LifecycleQuery",
    "NormalisedQuery",
    "RetentionQuery",
    "StickinessQuery",
    "TrendsQuery",
    "engine_names",
    "get_engine",
    "normalise",
    "parse_query",
    "register_engine",
]

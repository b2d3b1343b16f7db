"""The parallel query engine (issue 4): planner -> executors -> kernels -> merge.

    ParallelEngine().run(normalised_query, snapshot) -> result (== the reference engine's)
    ParallelEngine().explain(normalised_query, snapshot) -> (result, ExplainReport)
    register() adds engine "parallel" to eventlens.query.engines' registry.

Design and measurements: docs/adr/0004-parallel-engine.md.
"""

from __future__ import annotations

from eventlens.query.parallel.engine import ParallelEngine, run_subtask
from eventlens.query.parallel.executors import (
    Executor,
    InlineExecutor,
    LocalExecutor,
    get_executor,
    register_executor,
)
from eventlens.query.parallel.merge import ExplainReport, TaskStats
from eventlens.query.parallel.planner import Plan, SubTask, plan_query


def register() -> None:
    """Register engine "parallel" (keeping the built-in "reference" registered too)."""
    from eventlens.query.engines import engine_names, register_engine

    engine_names()  # the registry registers its built-ins when first used; do that first
    register_engine(ParallelEngine())


__all__ = [
    "Executor",
    "ExplainReport",
    "InlineExecutor",
    "LocalExecutor",
    "ParallelEngine",
    "Plan",
    "SubTask",
    "TaskStats",
    "get_executor",
    "plan_query",
    "register",
    "register_executor",
    "run_subtask",
]

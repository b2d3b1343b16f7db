"""The parallel query engine (issue 4): planner -> executors -> kernels -> merge.

    ParallelEngine().run(normalised_query, snapshot) -> result (== the reference engine's)
    ParallelEngine().explain(normalised_query, snapshot) -> (result, ExplainReport)
    make_engine() is how eventlens.query.registry builds engine "parallel" by name.

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
    use_executor,
)
from eventlens.query.parallel.merge import ExplainReport, TaskStats
from eventlens.query.parallel.planner import Plan, SubTask, plan_query


def make_engine() -> ParallelEngine:
    """A new parallel engine: how `eventlens.query.registry` finds this package by name."""
    return ParallelEngine()


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
    "make_engine",
    "plan_query",
    "register_executor",
    "run_subtask",
    "use_executor",
]

"""Merge: the kernel's exact merge of per-partition partials, timed, plus the explain report
(EXPLAIN ANALYZE: what the plan kept and pruned and where the time went)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from eventlens.query.parallel.kernels import AnyKernel
from eventlens.query.parallel.planner import Plan


@dataclass(frozen=True)
class TaskStats:
    """One executed sub-task: rows the scan returned (after time/event pushdown) and seconds
    spent reading and computing."""

    index: int
    buckets: tuple[int, ...]
    files: int
    rows_in_files: int
    rows_scanned: int
    read_s: float
    compute_s: float
    resident: bool = False  # read from resident bucket columns (else a Parquet scan)
    reused: bool = False  # its partial came from the partial cache (nothing read or computed)
    worker: str = ""  # who ran it (executors.current_worker())
    # Where the rows came from: "resident" (kept in memory), "parquet" (read from the table's
    # storage: local files or object storage) or "memory" (an in-memory table).
    source: str = "parquet"
    # A per-person delta from the sub-task's previous partial (delta.py): `persons` were
    # recomputed, over `rows_scanned` rows (their rows before and after the commit).
    delta: bool = False
    persons: int = 0

    @property
    def seconds(self) -> float:
        return self.read_s + self.compute_s


@dataclass
class ExplainReport:
    """The plan plus what happened: per-phase and per-sub-task timings (seconds)."""

    plan: Plan
    executor: str
    tasks: list[TaskStats] = field(default_factory=list)
    passes: int = 1
    plan_s: float = 0.0
    execute_s: float = 0.0
    merge_s: float = 0.0
    finish_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.plan_s + self.execute_s + self.merge_s + self.finish_s

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (the shape `?explain=1` can return)."""
        out = self.plan.to_dict()
        out.update(
            {
                "executor": self.executor,
                "passes": self.passes,
                "rows_scanned": sum(t.rows_scanned for t in self.tasks),
                "subtasks_reused": sum(1 for t in self.tasks if t.reused),
                "subtasks_computed": sum(1 for t in self.tasks if not t.reused and not t.delta),
                "subtasks_delta": sum(1 for t in self.tasks if t.delta),
                "persons_recomputed": sum(t.persons for t in self.tasks if t.delta),
                "timings_ms": {
                    "plan": round(self.plan_s * 1000, 3),
                    "execute": round(self.execute_s * 1000, 3),
                    "merge": round(self.merge_s * 1000, 3),
                    "finish": round(self.finish_s * 1000, 3),
                    "total": round(self.total_s * 1000, 3),
                },
                "subtask_runs": [
                    {
                        "index": t.index,
                        "buckets": list(t.buckets),
                        "files": t.files,
                        "rows_in_files": t.rows_in_files,
                        "rows_scanned": t.rows_scanned,
                        "source": _source(t),
                        "worker": t.worker,
                        **({"persons": t.persons} if t.delta else {}),
                        "read_ms": round(t.read_s * 1000, 3),
                        "compute_ms": round(t.compute_s * 1000, 3),
                    }
                    for t in self.tasks
                ],
            }
        )
        return out


def _source(t: TaskStats) -> str:
    if t.delta:
        return "delta"
    return "partial-cache" if t.reused else t.source


def merge_partials(kernel: AnyKernel, partials: list[Any]) -> tuple[Any, float]:
    """(merged partial, seconds)."""
    started = time.perf_counter()
    merged = kernel.merge(partials)
    return merged, time.perf_counter() - started

"""Engine "parallel": plan -> executor.map(sub-tasks) -> merge -> finish.

A sub-task is `run_subtask(kind, params, task, resident)`: a pure function of the kernel, its
plan-time parameters and an immutable file list, so any executor may run, retry or (later) cache
it. Resident buckets (resident.py) are the same rows decoded once and kept in memory.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from eventlens.observability import tracing
from eventlens.query import deadline
from eventlens.query.engines import InsightResult
from eventlens.query.kinds import kind as kind_named
from eventlens.query.kinds import load as load_implementation
from eventlens.query.normalise import NormalisedQuery
from eventlens.query.parallel import delta, partials, resident_cache
from eventlens.query.parallel.cohorts import attach, membership
from eventlens.query.parallel.executors import (
    Executor,
    current_worker,
    default_executor,
    get_executor,
)
from eventlens.query.parallel.frame import Frame, load
from eventlens.query.parallel.kernels import KernelParams, kernel_for
from eventlens.query.parallel.merge import ExplainReport, TaskStats, merge_partials
from eventlens.query.parallel.planner import DEFAULT_MIN_TASK_ROWS, Plan, SubTask, plan_query
from eventlens.query.parallel.resident import concat_frames
from eventlens.query.semantics.cohorts import check_resolved, with_cohort_breakdown
from eventlens.query.semantics.compare import with_compare
from eventlens.query.source import EventSource
from eventlens.storage.event_table import Snapshot

# A kernel's partial result: its type differs per kernel (each kernel module's `Partial`).
Partial = Any


def run_subtask(
    kind: str, params: KernelParams, task: SubTask, resident: bool = False
) -> tuple[Partial, TaskStats]:
    """Read the task's partition and run the kernel on it: (partial, stats). `resident`: read
    the task's buckets from the resident cache (resident.py), else scan its Parquet files."""
    kernel = kernel_for(kind)
    started = time.perf_counter()
    source = task.source
    resident = resident and bool(source.buckets)
    origin = "resident" if resident else ("memory" if source.table is not None else "parquet")
    frame = _read_frame(params, task, resident)
    read = time.perf_counter()
    partial = kernel.compute(params, frame)
    done = time.perf_counter()
    stats = TaskStats(
        index=task.index,
        buckets=task.buckets,
        files=len(task.source.paths),
        rows_in_files=task.rows,
        rows_scanned=len(frame) + (len(frame.history) if frame.history is not None else 0),
        read_s=read - started,
        compute_s=done - read,
        resident=resident,
        worker=current_worker(),
        source=origin,
    )
    return partial, stats


def _read_frame(params: KernelParams, task: SubTask, resident: bool) -> Frame:
    """The task's rows as the kernel's LoadSpec asks: from resident buckets, else a scan."""
    source = task.source
    if resident and source.buckets:
        deadline.check()
        frame = concat_frames(
            [resident_cache.CACHE.bucket(paths).frame(params.spec) for paths in source.buckets]
        )
        deadline.check()
    else:
        frame = load(source, params.spec)
    cohorts = getattr(getattr(params, "nq", None), "cohorts", ())
    if cohorts:  # membership masks over this sub-task's persons, before the kernel runs
        attach(frame, membership(cohorts, source, resident))
    return frame


def actors_subtask(
    kind: str, params: KernelParams, cell: Any, task: SubTask, resident: bool = False
) -> pa.Array:
    """The person ids of one sub-task behind `cell`: the kind's actors function (named in
    eventlens.query.kinds) over the task's rows. A person's events all lie in one sub-task, so
    the union over sub-tasks is exact."""
    function = load_implementation(kind_named(kind).parallel_actors)
    if not callable(function):
        raise TypeError(f"{kind_named(kind).parallel_actors} is not a function")
    frame = _read_frame(params, task, resident)
    codes = function(params, frame, cell)
    if frame.person_ids is None or len(codes) == 0:
        return pa.array([], pa.string())
    ids: pa.Array = frame.person_ids.take(pa.array(codes, pa.int64()))
    return ids


def traced_subtask(
    kind: str, params: KernelParams, task: SubTask, resident: bool = False
) -> tuple[Partial, TaskStats]:
    """`run_subtask` under a "query.subtask" span (a child of the span current where the
    executor was called: executors run each task in a copy of the caller's context) with the
    task's bucket(s), rows, source and worker. Plain `run_subtask` when tracing is off."""
    if not tracing.enabled():
        return run_subtask(kind, params, task, resident)
    attributes: tracing.Attributes = {
        "eventlens.subtask.index": task.index,
        "eventlens.bucket": list(task.buckets),  # the person bucket(s) the sub-task covers
        "eventlens.files": len(task.source.paths),
        "eventlens.rows_in_files": task.rows,
        "eventlens.worker": threading.current_thread().name,
    }
    with tracing.span("query.subtask", attributes) as span:
        partial, stats = run_subtask(kind, params, task, resident)
        if span is not None:
            span.set_attributes(
                {
                    "eventlens.rows": stats.rows_scanned,
                    "eventlens.source": "resident" if stats.resident else "storage",
                    "eventlens.read_ms": round(stats.read_s * 1000, 3),
                    "eventlens.compute_ms": round(stats.compute_s * 1000, 3),
                }
            )
        return partial, stats


def _run_tasks(
    executor: Executor,
    plan: Plan,
    params: KernelParams,
    resident: bool,
    store: partials.PartialStore | None,
    rows_of: Callable[[], Mapping[str, int]] | None = None,
) -> list[tuple[Partial, TaskStats]]:
    """Every sub-task's (partial, stats), in plan order. Sub-tasks whose partial `store` holds
    (same kernel, parameters and immutable files) are reused; sub-tasks whose buckets only
    gained files since the partial the store holds for them are brought forward by a per-person
    delta (delta.py; resident buckets only, `rows_of()` gives the snapshot's rows per file);
    the others run on `executor` as a partial of a module-level function (what a distributed
    executor ships) and are stored."""
    text = partials.params_text(params) if store is not None else ""
    keys = [
        None if store is None else partials.task_key(plan.kernel, params, t, text=text)
        for t in plan.tasks
    ]
    found: list[Any] = [None if store is None or k is None else store.get(k) for k in keys]
    deltas: dict[int, TaskStats] = {}
    bases: list[str | None] = [None] * len(plan.tasks)
    if store is not None and resident and rows_of is not None:
        digest = delta.params_digest(text)
        for i, (task, hit) in enumerate(zip(plan.tasks, found, strict=True)):
            if keys[i] is None or not task.source.buckets:
                continue
            base = bases[i] = delta.base_key(plan.kernel, digest, task)
            if hit is None:
                refreshed = _delta_task(plan, params, task, store, base, rows_of)
                if refreshed is not None:
                    found[i], deltas[i] = refreshed
    todo = [t for t, hit in zip(plan.tasks, found, strict=True) if hit is None]
    fn = functools.partial(traced_subtask, plan.kind, params, resident=resident)
    computed = iter(executor.map(fn, todo, None) if todo else [])
    out: list[tuple[Partial, TaskStats]] = []
    for i, (task, key, hit) in enumerate(zip(plan.tasks, keys, found, strict=True)):
        if hit is not None:
            stats = deltas.get(i)
            if stats is not None and store is not None and key is not None:
                store.put(key, hit)
                _put_base(store, bases[i], key, task, chained=True)
            if stats is None:
                stats = TaskStats(
                    task.index,
                    task.buckets,
                    len(task.source.paths),
                    task.rows,
                    0,
                    0,
                    0,
                    reused=True,
                )
            out.append((hit, stats))
            continue
        partial, stats = next(computed)
        if store is not None and key is not None:
            store.put(key, partial)
            _put_base(store, bases[i], key, task, chained=False)
        out.append((partial, stats))
    return out


def _put_base(
    store: partials.PartialStore, base: str | None, key: str, task: SubTask, *, chained: bool
) -> None:
    """Record `key` as the newest partial of its sub-task (what the next delta starts from);
    `chained`: a delta made it (its chain grows), else it was computed from scratch."""
    if base is None:
        return
    chain = 0
    if chained:
        previous = store.get(base)
        chain = (previous.chain + 1) if isinstance(previous, delta.Base) else 1
    store.put(base, delta.Base(key, task.source.buckets, chain))


def _delta_task(
    plan: Plan,
    params: KernelParams,
    task: SubTask,
    store: partials.PartialStore,
    base_key: str,
    rows_of: Callable[[], Mapping[str, int]],
) -> tuple[Partial, TaskStats] | None:
    """(partial, stats) of `task` by a per-person delta from its last stored partial, or None
    (no usable base: the sub-task computes)."""
    if getattr(getattr(params, "nq", None), "cohorts", ()):
        # Cohort masks are attached to whole sub-task frames (_read_frame), not to the delta's
        # per-person frames, and a new event can change a person's membership: recompute.
        return None
    base = store.get(base_key)
    if not isinstance(base, delta.Base) or base.chain >= delta.MAX_CHAIN:
        return None
    new_sets = task.source.buckets
    if len(base.buckets) != len(new_sets):
        return None
    added: list[set[str]] = []
    for old_paths, new_paths in zip(base.buckets, new_sets, strict=True):
        have = set(new_paths)
        if not have.issuperset(old_paths):
            return None  # a file left the bucket (merge, compaction, rewrite): recompute
        added.append(have.difference(old_paths))
    # (Not a reuse of the sub-task's partial: a store that counts reuse offers `peek`.)
    old = getattr(store, "peek", store.get)(base.key)
    if old is None:
        return None
    started = time.perf_counter()
    counts = rows_of()
    touched: list[delta.Touched] = []
    for paths, new_files in zip(new_sets, added, strict=True):
        if not new_files:
            continue
        deadline.check()
        bucket = resident_cache.CACHE.bucket(paths)
        part = delta.restrict(bucket, params.spec, new_files, counts)
        if part is None:
            return None
        touched.append(part)
    read = time.perf_counter()
    kernel = kernel_for(plan.kind)
    partial = delta.refresh(kernel, params, old, touched, concat_frames)
    if partial is None:
        return None
    done = time.perf_counter()
    rows = sum(len(t.old) + len(t.new) for t in touched)
    stats = TaskStats(
        index=task.index,
        buckets=task.buckets,
        files=len(task.source.paths),
        rows_in_files=task.rows,
        rows_scanned=rows,
        read_s=read - started,
        compute_s=done - read,
        resident=True,
        worker=current_worker(),
        source="resident",
        persons=sum(t.persons for t in touched),
        delta=True,
    )
    return partial, stats


class ParallelEngine:
    """Engine "parallel". `executor`: a name ("local", "inline", "ray"), an Executor, or None
    for the process's default (executors.use_executor; "local" unless configured);
    `min_task_rows`: coalesce buckets into sub-tasks of at least this many rows (0: one sub-task
    per bucket)."""

    name = "parallel"

    def __init__(
        self,
        executor: str | Executor | None = None,
        *,
        min_task_rows: int = DEFAULT_MIN_TASK_ROWS,
    ) -> None:
        self.executor = executor
        self.min_task_rows = min_task_rows

    def _executor(self) -> Executor:
        if self.executor is None:
            return get_executor(default_executor())
        return get_executor(self.executor) if isinstance(self.executor, str) else self.executor

    def run(self, query: NormalisedQuery, snapshot: EventSource) -> InsightResult:
        """The insight result (same shape and numbers as the reference engine)."""
        return self.explain(query, snapshot)[0]

    def plan(self, query: NormalisedQuery, snapshot: EventSource) -> Plan:
        # An executor whose workers own buckets (Ray) gets one sub-task per bucket, so each
        # runs where its bucket is resident; coalescing would mix owners.
        owns = getattr(self._executor(), "owns_buckets", False)
        return plan_query(query, snapshot, min_task_rows=0 if owns else self.min_task_rows)

    def actors(self, query: NormalisedQuery, snapshot: EventSource, cell: Any) -> list[str]:
        """Sorted person ids behind `cell` (eventlens.query.semantics.actors) of `query`'s
        answer: every sub-task of the query's plan returns its persons of the cell (the kind's
        actors function, next to its kernel), and the sets are disjoint, so their union is the
        answer. `query` is the period's own query (compare "previous": the previous one's)."""
        plan = self.plan(query, snapshot)
        executor = self._executor()
        rows = sum(n for task in plan.tasks for n in task.source.bucket_rows)
        use_resident = getattr(executor, "fits_resident", resident_cache.CACHE.fits)(rows)
        fn = functools.partial(actors_subtask, plan.kind, plan.params, cell, resident=use_resident)
        with (
            tracing.span("query.actors", {"eventlens.subtasks": len(plan.tasks)}),
            resident_cache.DEMAND.query(),  # the background warm-up waits meanwhile
        ):
            parts = executor.map(fn, list(plan.tasks), None)
        # Arrow sorts strings by their UTF-8 bytes: Python's code point order, in C.
        every = (
            pa.concat_arrays([p.cast(pa.string()) for p in parts])
            if parts
            else pa.array([], pa.string())
        )
        ordered: list[str] = every.take(pc.sort_indices(every)).to_pylist()
        return ordered

    def explain(
        self, query: NormalisedQuery, snapshot: EventSource
    ) -> tuple[InsightResult, ExplainReport]:
        """(result, report): EXPLAIN ANALYZE of one run. Raises QueryTimeout past the current
        deadline (eventlens.query.deadline) and ExecutionError when a sub-task fails twice.
        With compareFilter the previous period is a second run; the report is the first's."""
        reports: list[ExplainReport] = []

        def run(nq: NormalisedQuery) -> InsightResult:
            result, report = self._explain(nq, snapshot)
            reports.append(report)
            return result

        check_resolved(query)
        with resident_cache.DEMAND.query():  # the background warm-up waits meanwhile
            result = with_compare(query, lambda nq: with_cohort_breakdown(nq, run))
        return result, reports[0]

    def _explain(
        self, query: NormalisedQuery, snapshot: EventSource
    ) -> tuple[InsightResult, ExplainReport]:
        with tracing.span("query.plan") as plan_span:
            # The plan and its first pass: the sub-tasks and their merge are its children.
            t0 = time.perf_counter()
            plan = self.plan(query, snapshot)
            executor = self._executor()
            report = ExplainReport(
                plan=plan, executor=executor.name, plan_s=time.perf_counter() - t0
            )
            kernel = kernel_for(plan.kind)
            # All of the plan's buckets resident at once, or none: a plan larger than the budget
            # would evict its own buckets while it runs.
            rows = sum(n for task in plan.tasks for n in task.source.bucket_rows)
            # (An executor with its own workers' caches says whether they fit.)
            use_resident = getattr(executor, "fits_resident", resident_cache.CACHE.fits)(rows)
            if plan_span is not None:
                plan_span.set_attributes(
                    {
                        "eventlens.query.kind": plan.kind,
                        "eventlens.executor": executor.name,
                        "eventlens.subtasks": len(plan.tasks),
                        "eventlens.files_total": plan.files_total,
                        "eventlens.files_kept": plan.files_kept,
                        "eventlens.rows_kept": plan.rows_kept,
                        "eventlens.resident": use_resident,
                        "eventlens.plan_ms": round(report.plan_s * 1000, 3),
                    }
                )

            store = partials.current()
            rows_of = (
                functools.partial(delta.file_rows, snapshot)
                if isinstance(snapshot, Snapshot)
                else None
            )

            def execute(params: KernelParams) -> Partial:
                started = time.perf_counter()
                outputs = _run_tasks(executor, plan, params, use_resident, store, rows_of)
                report.execute_s += time.perf_counter() - started
                report.tasks.extend(stats for _, stats in outputs)
                with tracing.span("query.merge", {"eventlens.partials": len(outputs)}):
                    merged, seconds = merge_partials(kernel, [partial for partial, _ in outputs])
                report.merge_s += seconds
                return merged

            merged = execute(plan.params)
        rerun_s = 0.0

        def rerun(params: KernelParams) -> Partial:
            nonlocal rerun_s
            report.passes += 1
            started = time.perf_counter()
            try:
                with tracing.span("query.pass", {"eventlens.pass": report.passes}):
                    return execute(params)
            finally:
                rerun_s += time.perf_counter() - started

        started = time.perf_counter()
        with tracing.span("query.finish"):
            result = kernel.finish(plan.params, merged, rerun)
        # A second pass (trends "other" folding) is counted as execute + merge, not finish.
        report.finish_s = time.perf_counter() - started - rerun_s
        return result, report

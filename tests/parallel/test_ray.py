"""The Ray executor on a real multi-node Ray cluster (ray.cluster_utils.Cluster: a head and two
worker nodes, one bucket owner each), over local files and moto's S3 server: answers equal
the reference engine's, adding an owner moves only its share of the buckets, a node removed
while a query runs costs nothing but time, and losing every owner is a clear error.

One module, one cluster (module-scoped: starting Ray costs seconds and ~1.8 GiB), shut down
at the end. The tests run in file order and share the executor."""

from __future__ import annotations

import functools
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlens.errors import ExecutionError
from eventlens.observability import metrics
from eventlens.query import normalise, parse_query
from eventlens.query.deadline import Deadline, using
from eventlens.query.parallel import ParallelEngine
from eventlens.query.parallel.engine import run_subtask
from eventlens.query.parallel.ray_executor import RayExecutor, task_key
from eventlens.query.reference import ReferenceEngine
from eventlens.query.testing import event_rows, parse_instant
from eventlens.storage.event_table import EventTable, Snapshot
from tests.parallel import strategies as s
from tests.parallel.ray_slow import slow_on, slowly
from tests.parallel.support import compare_engines
from tests.query.golden.compare import mismatches
from tests.support.s3 import S3, moto_s3

ray = pytest.importorskip("ray")  # the `cluster` extra; scripts/setup installs it
from ray.cluster_utils import Cluster  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OWNER = {"resources": {"eventlens_owner": 0.01}}  # owners only on the worker nodes
STRAGGLE_S = 20.0  # the straggler test's slow owner, per sub-task
DELAY_S = 0.5  # per slowed sub-task of the node-loss test (batches of ~5: seconds per owner)


class RayEnv:
    def __init__(self, cluster: Any, executor: RayExecutor, s3: S3) -> None:
        self.cluster = cluster
        self.executor = executor
        self.s3 = s3


@pytest.fixture(scope="module")
def env() -> Iterator[RayEnv]:
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "PYTHONPATH")}
    os.environ["RAY_AUTH_MODE"] = "disabled"  # facts.md: 2.60 enables token auth by default
    # The workers import the engine (and this module's slowed sub-task) from this checkout.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), saved["PYTHONPATH"]]))
    with moto_s3() as s3:  # before the nodes start: they inherit the AWS_* variables
        cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 1,
                "include_dashboard": False,
                # Notice a removed node within ~2 s, not the default ~30.
                "_system_config": {
                    "health_check_period_ms": 500,
                    "health_check_failure_threshold": 3,
                },
            },
        )
        executor: RayExecutor | None = None
        try:
            for _ in range(2):
                cluster.add_node(num_cpus=1, resources={"eventlens_owner": 1})
            executor = RayExecutor(cluster.address, workers=2, actor_options=OWNER)
            executor.start()
            yield RayEnv(cluster, executor, s3)
        finally:
            if executor is not None:
                executor.shutdown()
            ray.shutdown()
            cluster.shutdown()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


SETTINGS = settings(
    max_examples=int(os.environ.get("EVENTLENS_RAY_EXAMPLES", "6")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
QUERIES = st.one_of(
    s.trends_queries(),
    s.funnels_queries(),
    s.retention_queries(),
    s.stickiness_queries(),
    s.lifecycle_queries(),
)


def test_differential_over_local_files(env: RayEnv) -> None:
    @SETTINGS
    @given(s.event_sets(), QUERIES, st.sampled_from((1, 4)), st.sampled_from((1, 2)))
    def check(events: Any, query: Any, buckets: int, appends: int) -> None:
        compare_engines(
            events, query, buckets=buckets, executor=env.executor, now=s.NOW, appends=appends
        )

    check()


def test_differential_over_s3(env: RayEnv) -> None:
    @SETTINGS
    @given(s.event_sets(), QUERIES, st.sampled_from((1, 4)))
    def check(events: Any, query: Any, buckets: int) -> None:
        compare_engines(
            events,
            query,
            buckets=buckets,
            executor=env.executor,
            now=s.NOW,
            location=lambda _tmp: env.s3.prefix() + "/events",
        )

    check()


def _events(persons: int) -> list[dict[str, Any]]:
    return [
        {
            "event": ("$pageview", "signup", "purchase")[(p + k) % 3],
            "distinct_id": f"d{p}",
            "person_id": s.person_uuid(p),
            "timestamp": f"2024-03-{5 + (p * 7 + k) % 25:02d}T{(p + k) % 24:02d}:00:00Z",
            "properties": {"k": k},
        }
        for p in range(persons)
        for k in range(3)
    ]


QUERY = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}],
    "interval": "day",
    "dateRange": {"date_from": "2024-03-01", "date_to": "2024-04-01"},
}


def _snapshot(location: Any) -> Snapshot:
    table = EventTable.open_or_create(location, buckets=16)
    table.append(event_rows(_events(200)), log_offset=None)
    return table.snapshot()


def _nq(query: dict[str, Any] = QUERY) -> Any:
    return normalise(parse_query(query), timezone="UTC", week_start=0, now=parse_instant(s.NOW))


def test_a_new_owner_takes_only_its_share_and_the_answer_stays_exact(env: RayEnv) -> None:
    snapshot = _snapshot(env.s3.prefix() + "/events")
    engine = ParallelEngine(env.executor)
    plan = engine.plan(_nq(), snapshot)
    keys = [task_key(t) for t in plan.tasks]
    assert len(set(keys)) == len(keys) == 16  # one sub-task per person bucket
    before = env.executor.owners_of(keys)
    env.executor.target = 3
    env.executor.start()
    after = env.executor.owners_of(keys)
    new = set(after.values()) - set(before.values())
    moved = [k for k in keys if before[k] != after[k]]
    assert len(new) == 1 and all(after[k] in new for k in moved)
    assert len(moved) <= 16 * 2 // 3 + 1  # about 1/3 of 16 (binomial; this bound is generous)
    result, report = engine.explain(_nq(), snapshot)
    assert not mismatches(ReferenceEngine().run(_nq(), snapshot), result)
    ran = {stat.index: stat.worker for stat in report.tasks}
    assert ran == {t.index: after[task_key(t)] for t in plan.tasks}  # each ran on its owner
    runs = report.to_dict()["subtask_runs"]
    assert {r["source"] for r in runs} == {"resident"} and {r["worker"] for r in runs} <= set(
        after.values()
    )


class Slowed:
    """The Ray executor with every sub-task DELAY_S slower: a window to lose a node in."""

    name = "ray-slowed"
    owns_buckets = True

    def __init__(self, inner: RayExecutor) -> None:
        self.inner = inner
        self.fits_resident = inner.fits_resident

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], deadline: Any) -> list[Any]:
        return self.inner.map(functools.partial(slowly, DELAY_S, fn), tasks, deadline)


class SlowOn(Slowed):
    """The Ray executor with one owner STRAGGLE_S slower on every sub-task."""

    def __init__(self, inner: RayExecutor, worker: str) -> None:
        super().__init__(inner)
        self.worker = worker

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], deadline: Any) -> list[Any]:
        slowed = functools.partial(slow_on, self.worker, STRAGGLE_S, fn)
        return self.inner.map(slowed, tasks, deadline)


def test_a_straggling_owner_is_overtaken_by_the_next_owners(env: RayEnv) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        snapshot = _snapshot(Path(tmp) / "events")
        nq = _nq()
        engine = ParallelEngine(env.executor)
        engine.run(nq, snapshot)  # every owner up and warm
        ParallelEngine(SlowOn(env.executor, "nobody")).run(nq, snapshot)  # ray_slow imported
        plan = engine.plan(nq, snapshot)
        slow = env.executor.owners_of([task_key(plan.tasks[0])])[task_key(plan.tasks[0])]
        sample = ("eventlens_query_worker_retries_total", {"worker": slow, "reason": "straggler"})
        before = metrics.REGISTRY.get_sample_value(*sample) or 0.0
        started = time.monotonic()
        result, report = ParallelEngine(SlowOn(env.executor, slow)).explain(nq, snapshot)
        seconds = time.monotonic() - started
        assert not mismatches(ReferenceEngine().run(nq, snapshot), result)
        assert seconds < STRAGGLE_S * 0.75, seconds  # answered without waiting for it
        assert slow not in {t.worker for t in report.tasks}
        assert (metrics.REGISTRY.get_sample_value(*sample) or 0.0) > before


def test_a_node_removed_mid_query_is_answered_by_the_others(env: RayEnv) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        snapshot = _snapshot(Path(tmp) / "events")
        nq = _nq()
        expected = ReferenceEngine().run(nq, snapshot)
        statuses = env.executor.workers()
        by_node: dict[str, list[str]] = {}
        for w in statuses:
            by_node.setdefault(w.node, []).append(w.name)
        head = env.cluster.head_node.node_id
        victim = next(n for n in env.cluster.worker_nodes if by_node.get(n.node_id))
        doomed = set(by_node[victim.node_id])
        survivors = {w.name for w in statuses} - doomed
        assert survivors and head not in by_node  # owners live on the two worker nodes only
        out: dict[str, Any] = {}

        def query() -> None:
            started = time.monotonic()
            try:
                with using(Deadline(120)):
                    out["answer"] = ParallelEngine(Slowed(env.executor)).explain(nq, snapshot)
            except BaseException as exc:
                out["error"] = exc
            out["seconds"] = time.monotonic() - started

        runner = threading.Thread(target=query)
        runner.start()
        time.sleep(DELAY_S)  # every owner is inside its batch
        env.cluster.remove_node(victim)
        runner.join(180)
        assert "error" not in out, out.get("error")
        result, report = out["answer"]
        assert not mismatches(expected, result)
        assert {t.worker for t in report.tasks} <= survivors  # the lost node answered nothing
        assert {lost.split(" on ")[0] for lost in env.executor.lost} >= doomed
        print(f"query during a node loss: {out['seconds']:.1f} s")
        assert out["seconds"] < 120


def test_losing_every_owner_is_a_clear_error(env: RayEnv) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        snapshot = _snapshot(Path(tmp) / "events")
        plan = ParallelEngine(env.executor).plan(_nq(), snapshot)
        env.executor.start()  # (replaces the owners lost with the node above)
        names = sorted(env.executor._workers)
        for w in env.executor._workers.values():
            ray.kill(w.handle)
        fn = functools.partial(run_subtask, plan.kind, plan.params, resident=False)
        with pytest.raises(ExecutionError, match="no bucket-owner worker left") as info:
            env.executor.map(fn, plan.tasks, None)
        assert all(name in str(info.value) for name in names)

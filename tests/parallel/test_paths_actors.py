"""The persons behind a paths edge / drop-off: the parallel kernel's `compute_actors` over the
partitions of a real event table (merged with `merge_actors`) equals the reference's
`path_actors` on generated events and selectors."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlens.query import normalise, parse_query
from eventlens.query.kinds import kind_of
from eventlens.query.parallel import ParallelEngine
from eventlens.query.parallel.frame import load
from eventlens.query.parallel.kernels.paths import ACTORS_KERNEL
from eventlens.query.reference.events import load_events
from eventlens.query.reference.paths import path_actors
from eventlens.query.testing import event_rows, parse_instant
from eventlens.storage.event_table import EventTable
from tests.parallel import strategies as s

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def parallel_actors(nq: Any, snapshot: Any) -> list[str]:
    """The actors kernel run over the plan's sub-tasks as the engine runs a kernel."""
    plan = ParallelEngine("inline", min_task_rows=0).plan(nq, snapshot)
    parts = [ACTORS_KERNEL.compute(plan.params, load(t.source, plan.spec)) for t in plan.tasks]
    merged = ACTORS_KERNEL.merge(parts)
    return ACTORS_KERNEL.finish(plan.params, merged, lambda _p: merged)


@SETTINGS
@given(s.path_event_sets(), s.path_actor_queries(), st.sampled_from((1, 4)))
def test_path_actors_parallel_equals_reference(
    events: list[dict[str, Any]], query: dict[str, Any], buckets: int
) -> None:
    nq = normalise(parse_query(query), timezone="UTC", now=parse_instant(s.NOW))
    with tempfile.TemporaryDirectory(prefix="eventlens-pathactors-") as tmp:
        table = EventTable.open_or_create(Path(tmp) / "events", buckets=buckets)
        if events:
            table.append(event_rows(events), log_offset=None)
        snapshot = table.snapshot()
        expected = path_actors(kind_of(nq).narrow(nq), load_events(snapshot.read()))
        got = parallel_actors(nq, snapshot)
    assert got == expected, query

"""Must be true (issue 14): over random event streams appended in random commits, with person
merges, compaction and late events in old days, and random queries of every kind, the answer the
cache serves at each version (computed incrementally from the partials of earlier versions)
equals the reference engine's at that version."""

from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlens.cache import Mode
from eventlens.query import normalise, parse_query
from eventlens.query.reference import ReferenceEngine
from eventlens.query.testing import event_rows, parse_instant
from eventlens.storage.event_table import EventTable
from tests.cache.support import Harness, jsonable
from tests.parallel import strategies as s
from tests.parallel.strategies import person_uuid
from tests.query.golden.compare import mismatches

SETTINGS = settings(
    max_examples=int(os.environ.get("EVENTLENS_CACHE_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
QUERIES = st.one_of(
    s.trends_queries(),
    s.funnels_queries(),
    s.retention_queries(),
    s.stickiness_queries(),
    s.lifecycle_queries(),
    s.paths_queries(),
)


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """Steps: ("append", events) in random splits (each a commit; events span a month, so
    later commits hold late events in old days), ("merge", (old, new)) person merges and
    ("compact", None)."""
    events = draw(s.event_sets())
    cuts = sorted(draw(st.lists(st.integers(0, len(events)), max_size=6)))
    steps: list[tuple[str, Any]] = []
    bounds = [0, *cuts, len(events)]
    for lo, hi in itertools.pairwise(bounds):
        if hi > lo:
            steps.append(("append", events[lo:hi]))
        extra = draw(st.sampled_from(("none", "none", "merge", "compact")))
        if extra == "merge":
            a, b = draw(st.integers(0, 9)), draw(st.integers(0, 9))
            if a != b:
                steps.append(("merge", (person_uuid(a), person_uuid(b))))
        elif extra == "compact":
            steps.append(("compact", None))
    return steps


@SETTINGS
@given(histories(), QUERIES, st.sampled_from((1, 4)), st.sampled_from(s.TIMEZONES))
def test_cached_and_incremental_answers_equal_the_reference_at_every_version(
    steps: list[tuple[str, Any]], query: dict[str, Any], buckets: int, timezone: str
) -> None:
    nq = normalise(parse_query(query), timezone=timezone, week_start=0, now=parse_instant(s.NOW))
    harness = Harness()
    with tempfile.TemporaryDirectory(prefix="eventlens-cache-") as tmp:
        table = EventTable.open_or_create(Path(tmp) / "events", buckets=buckets)
        for kind, arg in steps:
            if kind == "append":
                table.append(event_rows(arg), log_offset=None)
            elif kind == "merge":
                table.rewrite_persons({arg[0]: arg[1]})
            else:
                table.compact(2)
            snapshot = table.snapshot()
            served = harness.serve("k", nq, snapshot, Mode.BLOCKING)
            assert served.answer is not None
            assert served.answer.data_version == snapshot.version
            expected = jsonable(ReferenceEngine().run(nq, snapshot))
            problems = mismatches(expected, served.answer.results)
            assert not problems, f"v{snapshot.version} {served.result}: {problems[:5]}\n{query}"
            # At the same version the next request is a hit with the same answer.
            again = harness.serve("k", nq, snapshot, Mode.BLOCKING)
            assert again.result == "hit" and again.answer == served.answer

"""The funnel views' edges the golden fixtures do not show: the bin-count clamps and their
persons (actors) being a clear 400, not a 500."""

from __future__ import annotations

from typing import Any

import pytest

from eventlens.errors import InvalidQuery
from eventlens.query import normalise, parse_query
from eventlens.query.model import FunnelsQuery, InsightActorsQuery
from eventlens.query.semantics.actors import resolve
from eventlens.query.semantics.funnels import time_to_convert_result
from eventlens.query.testing import parse_instant

STEPS = [{"event": "a"}, {"event": "b"}]


def _query(**ff: Any) -> FunnelsQuery:
    q = parse_query({"kind": "FunnelsQuery", "series": STEPS, "funnelsFilter": ff})
    assert isinstance(q, FunnelsQuery)
    return q


@pytest.mark.parametrize(("bin_count", "bins"), [(-5, 1), (0, 1), (7, 7), (500, 90)])
def test_given_bin_count_is_clamped_to_1_to_90(bin_count: int, bins: int) -> None:
    q = _query(funnelVizType="time_to_convert", binCount=bin_count)
    out = time_to_convert_result(q, [float(t) for t in range(1000)])
    assert len(out["bins"]) == bins + 1
    assert sum(p for _, p in out["bins"]) == 1000


def test_auto_bin_count_is_cube_root_capped_at_60() -> None:
    q = _query(funnelVizType="time_to_convert")
    assert len(time_to_convert_result(q, [1.0] * 27)["bins"]) == 3 + 1  # cbrt(27) = 3 exactly
    assert len(time_to_convert_result(q, [1.0] * 28)["bins"]) == 4 + 1
    assert len(time_to_convert_result(q, [float(t) for t in range(10**6)])["bins"]) == 60 + 1


@pytest.mark.parametrize("view", ["time_to_convert", "trends"])
def test_persons_of_a_view_are_a_400_naming_the_field(view: str) -> None:
    source: dict[str, Any] = {
        "kind": "FunnelsQuery",
        "series": STEPS,
        "funnelsFilter": {"funnelVizType": view},
    }
    nq = normalise(
        parse_query(source), timezone="UTC", week_start=0, now=parse_instant("2024-02-01T00:00:00Z")
    )
    sel = InsightActorsQuery(source=source, funnelStep=1)
    with pytest.raises(InvalidQuery) as err:
        resolve(nq, sel, [])
    assert err.value.field == "source.funnelsFilter.funnelVizType"  # of the actors query
    assert view in str(err.value)


def test_trends_view_over_all_time_starts_at_the_earliest_event_in_both_engines() -> None:
    """`date_from = all`: the parallel planner reads the earliest event for this view too (it
    did only for the bucketed kinds), so both engines give 34 daily buckets, 2024-03-01 on."""
    from tests.parallel import strategies as s
    from tests.parallel.support import compare_engines

    person = s.person_uuid(1)
    events = [
        {"event": "a", "distinct_id": "d1", "person_id": person, "timestamp": ts}
        for ts in ("2024-03-01T10:00:00Z", "2024-03-02T10:00:00Z")
    ] + [{"event": "b", "distinct_id": "d1", "person_id": person, "timestamp": "2024-03-02T10:05Z"}]
    query = {
        "kind": "FunnelsQuery",
        "series": STEPS,
        "dateRange": {"date_from": "all"},
        "interval": "day",
        # 1-hour window: the Mar 1 attempt does not convert, the Mar 2 one does.
        "funnelsFilter": {
            "funnelVizType": "trends",
            "funnelWindowInterval": 1,
            "funnelWindowIntervalUnit": "hour",
        },
    }
    for resident in (False, True):
        result = compare_engines(
            events,
            query,
            buckets=2,
            executor="inline",
            timezone="UTC",
            week_start=0,
            now=s.NOW,
            min_task_rows=0,
            resident=resident,
            appends=1,
        )
        assert result[0]["days"][:2] == ["2024-03-01", "2024-03-02"]
        assert result[0]["data"][:2] == [0.0, 100.0]

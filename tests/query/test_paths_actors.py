"""The persons behind a paths edge or drop-off (pathStartKey / pathEndKey / pathDropoffKey), on a
hand-computed case, in both engines: the reference's `path_actors` and the parallel kernel's
actors functions over a real event table's partitions."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from eventlens.errors import InvalidQuery
from eventlens.query import normalise, parse_query
from eventlens.query.kinds import kind_of
from eventlens.query.reference.events import load_events
from eventlens.query.reference.paths import path_actors
from eventlens.query.testing import event_rows, parse_instant
from eventlens.storage.event_table import EventTable
from tests.parallel.strategies import person_uuid
from tests.parallel.test_paths_actors import parallel_actors

P1, P2, P3 = person_uuid(1), person_uuid(2), person_uuid(3)


def _pv(person: str, ts: str, url: str) -> dict[str, Any]:
    return {
        "uuid": f"{person[:8]}-{ts}",
        "event": "$pageview",
        "distinct_id": person,
        "person_id": person,
        "timestamp": ts,
        "properties": {"$current_url": url},
    }


# p1: two sessions /home -> /pricing; p2: /home -> /pricing -> /signup; p3: /home alone.
EVENTS = [
    _pv(P1, "2024-01-02T10:00:00+00:00", "/home"),
    _pv(P1, "2024-01-02T10:01:00+00:00", "/pricing"),
    _pv(P1, "2024-01-03T10:00:00+00:00", "/home"),
    _pv(P1, "2024-01-03T10:02:00+00:00", "/pricing"),
    _pv(P2, "2024-01-02T10:00:00+00:00", "/home"),
    _pv(P2, "2024-01-02T10:03:00+00:00", "/pricing"),
    _pv(P2, "2024-01-02T10:04:00+00:00", "/signup"),
    _pv(P3, "2024-01-02T10:00:00+00:00", "/home"),
]

CASES = [
    ({"pathStartKey": "1_/home"}, sorted([P1, P2])),  # p3's /home has no edge out
    ({"pathEndKey": "3_/signup"}, [P2]),
    ({"pathStartKey": "1_/home", "pathEndKey": "2_/pricing"}, sorted([P1, P2])),
    ({"pathStartKey": "2_/pricing", "pathEndKey": "3_/signup"}, [P2]),
    ({"pathStartKey": "1_/home", "pathEndKey": "2_/signup"}, []),  # no such edge
    ({"pathDropoffKey": "2_/pricing"}, [P1]),  # p2 goes on
    ({"pathDropoffKey": "1_/home"}, [P3]),  # a one-node path ends where it starts
    ({"pathDropoffKey": "3_/signup"}, [P2]),
    ({"pathStartKey": "1_/home", "pathDropoffKey": "2_/pricing"}, [P1]),  # both must hold
]


def _both(selector: dict[str, Any]) -> tuple[list[str], list[str]]:
    query = {
        "kind": "PathsQuery",
        "dateRange": {"date_from": "2024-01-01", "date_to": "2024-01-05"},
        "pathsFilter": selector,
    }
    nq = normalise(parse_query(query), now=parse_instant("2024-02-01T00:00:00Z"))
    with tempfile.TemporaryDirectory(prefix="eventlens-pathactors-") as tmp:
        table = EventTable.open_or_create(Path(tmp) / "events", buckets=4)
        table.append(event_rows(EVENTS), log_offset=None)
        snapshot = table.snapshot()
        reference = path_actors(kind_of(nq).narrow(nq), load_events(snapshot.read()))
        parallel = parallel_actors(nq, snapshot)
    return reference, parallel


@pytest.mark.parametrize(("selector", "expected"), CASES, ids=[str(c[0]) for c in CASES])
def test_path_actors(selector: dict[str, Any], expected: list[str]) -> None:
    reference, parallel = _both(selector)
    assert reference == expected
    assert parallel == expected


def test_path_actors_need_a_key_and_a_well_formed_one() -> None:
    with pytest.raises(InvalidQuery) as info:
        _both({})
    assert info.value.field == "pathsFilter.pathStartKey"
    with pytest.raises(InvalidQuery) as info:
        _both({"pathDropoffKey": "home"})
    assert info.value.field == "pathsFilter.pathDropoffKey"

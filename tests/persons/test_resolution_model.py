"""Property test: person resolution through the writer (vectorised, batched, SQLite-backed)
equals a tiny sequential dict model of the rules, event by event, before and after the merge
rewrite."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlens.capture.model import CapturedEvent
from eventlens.ingest.project_writer import ProjectWriter
from eventlens.persons.model import LINKED_ID
from eventlens.storage.schema import bucket_of, person_id_for
from tests.storage.support import ev, records, settings_at, table_rows

IDS = ["a", "b", "c", "d", "e"]


class Model:
    def __init__(self) -> None:
        self.did: dict[str, str] = {}
        self.props: dict[str, dict[str, Any]] = {}
        self.ident: dict[str, bool] = {}
        self.override: dict[str, str] = {}

    def ensure(self, d: str) -> str:
        if d not in self.did:
            p = person_id_for(1, d)
            self.did[d], self.props[p], self.ident[p] = p, {}, False
        return self.did[d]

    def join(self, main: str, other: str) -> None:
        m, o = self.did.get(main), self.did.get(other)
        if main == other:
            m = self.ensure(main)
        elif m is None and o is None:
            m = self.ensure(main)
            self.did[other] = m
        elif m is None:
            assert o is not None
            self.did[main] = m = o
        elif o is None:
            self.did[other] = m
        elif m != o and not self.ident[o]:
            for d, p in self.did.items():
                if p == o:
                    self.did[d] = m
            for k, v in self.props.pop(o).items():
                self.props[m].setdefault(k, v)
            for old, new in self.override.items():
                if new == o:
                    self.override[old] = m
            self.override[o] = m
        self.ident[m] = True

    def apply(self, e: CapturedEvent) -> tuple[str, dict[str, Any]]:
        other = {"$identify": "$anon_distinct_id", "$create_alias": "alias"}.get(e.event)
        if other and other in e.properties:
            self.join(e.distinct_id, e.properties[other])
        linked = e.properties.get(LINKED_ID)
        if linked is not None and linked not in (e.distinct_id, e.properties.get(other or "")):
            self.join(e.distinct_id, linked)
        p = self.ensure(e.distinct_id)
        for k, v in e.properties.get("$set_once", {}).items():
            self.props[p].setdefault(k, v)
        self.props[p].update(e.properties.get("$set", {}))
        return p, dict(self.props[p])


@st.composite
def event_lists(draw: st.DrawFn) -> list[CapturedEvent]:
    out = []
    for i in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["view", "view", "$identify", "$create_alias", "$set"]))
        # "p"/"q" only ever appear on plain events (bulk-created persons).
        d = draw(st.sampled_from([*IDS, "p", "q"] if kind in ("view", "$set") else IDS))
        props: dict[str, Any] = {}
        if kind == "$identify":
            props["$anon_distinct_id"] = draw(st.sampled_from(IDS))
        if kind == "$create_alias":
            props["alias"] = draw(st.sampled_from(IDS))
        if d in IDS and draw(st.integers(0, 3)) == 0:  # a Segment call with both ids
            props[LINKED_ID] = draw(st.sampled_from(IDS))
        if draw(st.booleans()):
            props["$set"] = {draw(st.sampled_from("xy")): i}
        if draw(st.booleans()):
            props["$set_once"] = {draw(st.sampled_from("xz")): i}
        out.append(ev(kind, d, i, props))
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=event_lists(), cuts=st.lists(st.integers(0, 25), max_size=3))
def test_writer_matches_sequential_model(events: list[CapturedEvent], cuts: list[int]) -> None:
    model = Model()
    expected = {e.uuid: model.apply(e) for e in events}
    bounds = sorted({0, len(events), *(c for c in cuts if c < len(events))})
    batches = [events[a:b] for a, b in itertools.pairwise(bounds)]
    with tempfile.TemporaryDirectory() as tmp:
        s = settings_at(Path(tmp), buckets=4)
        writer = ProjectWriter(s, 1)
        try:
            for i, batch in enumerate(batches):
                writer.apply(records(batch, start=100 * i))
            rows = table_rows(s)
            got = {r["uuid"]: (r["person_id"], r["person_properties"]) for r in rows}
            assert got == expected
            writer.maintain()
            final = {r["uuid"]: (r["person_id"], r["bucket"]) for r in table_rows(s)}
            for uid, (p, _) in expected.items():
                survivor = model.override.get(p, p)
                assert final[uid] == (survivor, bucket_of(survivor, 4))
        finally:
            writer.close()

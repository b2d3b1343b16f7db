"""Property: for any strings capture can hand over (all of Unicode but lone surrogates, which
JSON/UTF-8 cannot carry: NUL, other control characters, long strings), the consumer applies
every record — none fails, none is quarantined, it never stops — and each project's persons
store agrees exactly with its event table."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlens.capture.model import CapturedEvent
from eventlens.config import Settings
from eventlens.ingest.consumer import Consumer
from eventlens.storage import deadletters
from eventlens.storage.event_table import EventTable
from eventlens.storage.state import connect
from tests.ingest.helpers import plant_records

T0 = 1_700_000_000_000_000
CHARS = st.characters(blacklist_categories=["Cs"])
TEXT = st.one_of(
    st.text(CHARS, min_size=1, max_size=30),
    st.sampled_from(["p", "p\x00", "p\x00q", "\x00", "\x00\x00", "\x01\x1f\x7f", "a"]),
    st.text(CHARS, min_size=150, max_size=200),  # capture cuts distinct ids at 200
)


@st.composite
def logs(draw: st.DrawFn) -> list[tuple[int, list[CapturedEvent]]]:
    out = []
    for r in range(draw(st.integers(1, 5))):
        events = []
        for i in range(draw(st.integers(1, 6))):
            kind = draw(st.sampled_from(["plain", "plain", "$identify", "$create_alias"]))
            props: dict[str, Any] = {draw(TEXT): draw(TEXT)}
            name = draw(TEXT) if kind == "plain" else kind
            if kind == "$identify":
                props["$anon_distinct_id"] = draw(TEXT)
            elif kind == "$create_alias":
                props["alias"] = draw(TEXT)
            if draw(st.booleans()):
                props["$set"] = {draw(TEXT): draw(TEXT)}
            events.append(
                CapturedEvent(str(uuid.uuid4()), name, draw(TEXT), T0 + 10 * r + i, props)
            )
        out.append((draw(st.sampled_from([1, 2])), events))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=logs())
def test_consumer_applies_any_strings_exactly(
    records: list[tuple[int, list[CapturedEvent]]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        s = Settings().with_data_dir(Path(tmp))
        plant_records(s, T0, *records)
        consumer = Consumer(s)
        try:
            end = consumer.reader.durable_end()
            while consumer.offset < end:
                assert consumer.step() > 0
            assert consumer.quarantined == 0
        finally:
            consumer.close()
        for project_id in {p for p, _ in records}:
            _assert_project_exact(
                s, project_id, [e for p, evs in records if p == project_id for e in evs]
            )


def _assert_project_exact(s: Settings, project_id: int, sent: list[CapturedEvent]) -> None:
    import orjson

    assert deadletters.count(s, project_id) == 0
    rows = EventTable.open_or_create(s.event_table_dir(project_id)).snapshot().read().to_pylist()
    by_uuid = {e.uuid: e for e in sent}
    assert sorted(r["uuid"] for r in rows) == sorted(by_uuid)
    conn = connect(s.state_db(project_id))
    try:
        dids = dict(conn.execute("SELECT distinct_id, person_id FROM distinct_ids").fetchall())
        persons = {p for (p,) in conn.execute("SELECT person_id FROM persons")}
        overridden = dict(
            conn.execute("SELECT old_person_id, new_person_id FROM person_overrides").fetchall()
        )
    finally:
        conn.close()
    for r in rows:
        e = by_uuid[r["uuid"]]
        assert (r["event"], r["distinct_id"]) == (e.event, e.distinct_id)
        assert orjson.loads(r["properties"]) == e.properties
        # The store knows the row's id exactly, and the row's person is that id's person (or
        # one merged into it whose rewrite is pending).
        assert r["distinct_id"] in dids
        assert overridden.get(r["person_id"], r["person_id"]) == dids[r["distinct_id"]]
    mentioned = {
        v[:200]
        for e in sent
        for k in ("$anon_distinct_id", "alias")
        if e.event in ("$identify", "$create_alias")
        and isinstance(v := e.properties.get(k), str)
        and v
    }
    assert set(dids) == {e.distinct_id for e in sent} | mentioned
    assert set(dids.values()) <= persons

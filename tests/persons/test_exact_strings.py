"""The persons store keeps every string exactly as the event table does (issue 10, defect 1).

SQLite's JSON functions cut strings at U+0000, so a store that passed ids through `json_each`
mapped "a\\u0000b" to "a" and then failed its own UNIQUE constraint; these tests write through
the real writer and compare the state db with the event table, byte for byte.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlens.capture.model import CapturedEvent
from eventlens.ingest.project_writer import ProjectWriter
from eventlens.storage.schema import person_id_for
from tests.storage.support import ev, records, settings_at, table_rows


def _state(writer: ProjectWriter) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    dids = dict(writer.conn.execute("SELECT distinct_id, person_id FROM distinct_ids").fetchall())
    persons = {
        p: orjson.loads(props)
        for p, props in writer.conn.execute("SELECT person_id, properties FROM persons")
    }
    return dids, persons


def _assert_agree(writer: ProjectWriter, tmp: Path, sent: list[CapturedEvent]) -> None:
    """Every distinct id of the table is in the persons store, mapped to the row's person."""
    rows = table_rows(settings_at(tmp))
    assert sorted(r["uuid"] for r in rows) == sorted(e.uuid for e in sent)
    by_uuid = {e.uuid: e for e in sent}
    dids, persons = _state(writer)
    for r in rows:
        e = by_uuid[r["uuid"]]
        assert r["distinct_id"] == e.distinct_id
        assert r["event"] == e.event
        assert r["properties"] == e.properties
        assert r["distinct_id"] in dids, f"{r['distinct_id']!r} missing from the persons store"
    assert set(dids) == {e.distinct_id for e in sent} | {
        v
        for e in sent
        for k in ("$anon_distinct_id", "alias")
        if isinstance(v := e.properties.get(k), str) and v
    }
    assert set(dids.values()) <= set(persons)


def test_nul_in_distinct_id_is_its_own_person(tmp_path: Path) -> None:
    w = ProjectWriter(settings_at(tmp_path), 1)
    try:
        first = [ev("x", "a\x00b", 1), ev("x", "p", 2), ev("x", "p\x00q", 3)]
        w.apply(records(first))
        second = [ev("x", "a\x00b", 4), ev("x", "a", 5), ev("x", "a\x00c", 6)]
        w.apply(records(second, start=100))
        dids, _ = _state(w)
        assert dids == {d: person_id_for(1, d) for d in ["a\x00b", "p", "p\x00q", "a", "a\x00c"]}
        _assert_agree(w, tmp_path, first + second)
    finally:
        w.close()


def test_nul_in_identity_and_person_properties(tmp_path: Path) -> None:
    w = ProjectWriter(settings_at(tmp_path), 1)
    try:
        sent = [
            ev("view", "anon\x00", 1),
            ev(
                "$identify",
                "user\x00\x01",
                2,
                {"$anon_distinct_id": "anon\x00", "$set": {"k\x00": "v\x00w"}},
            ),
            ev("$create_alias", "user\x00\x01", 3, {"alias": "al\x00ias"}),
        ]
        w.apply(records(sent))
        dids, persons = _state(w)
        assert set(dids) == {"anon\x00", "user\x00\x01", "al\x00ias"}
        assert len(set(dids.values())) == 1, dids  # identify joined, alias joined
        pid = dids["user\x00\x01"]
        assert persons[pid] == {"k\x00": "v\x00w"}
        rows = table_rows(settings_at(tmp_path))
        ident = next(r for r in rows if r["event"] == "$identify")
        assert ident["person_properties"] == {"k\x00": "v\x00w"}
    finally:
        w.close()


# Every string the capture layer can hand over: all of Unicode except lone surrogates (which
# are not valid UTF-8 and cannot reach the log).
TEXT = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40)
SHORT_IDS = st.sampled_from(["p", "p\x00", "p\x00q", "\x00", "\x00\x00", "a\x01", "a"])


@st.composite
def batches(draw: st.DrawFn) -> list[list[CapturedEvent]]:
    out: list[list[CapturedEvent]] = []
    t = 0
    for _ in range(draw(st.integers(1, 3))):
        batch = []
        for _ in range(draw(st.integers(1, 8))):
            t += 1
            did = draw(st.one_of(SHORT_IDS, TEXT))
            kind = draw(st.sampled_from(["view", "view", "$identify", "$create_alias"]))
            props: dict[str, Any] = {draw(TEXT): draw(TEXT)}
            if kind == "$identify":
                props["$anon_distinct_id"] = draw(st.one_of(SHORT_IDS, TEXT))
            elif kind == "$create_alias":
                props["alias"] = draw(st.one_of(SHORT_IDS, TEXT))
            else:
                kind = draw(st.one_of(st.just("view"), TEXT))
            if draw(st.booleans()):
                props["$set"] = {draw(TEXT): draw(TEXT)}
            batch.append(ev(kind, did, t, props))
        out.append(batch)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sent=batches())
def test_persons_store_agrees_with_event_table_for_any_string(
    sent: list[list[CapturedEvent]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        w = ProjectWriter(settings_at(Path(tmp)), 1)
        try:
            w.apply(records(*sent))
            flat = [e for b in sent for e in b]
            _assert_agree(w, Path(tmp), flat)
            rows = {r["uuid"]: r for r in table_rows(settings_at(Path(tmp)))}
            dids, _ = _state(w)
            # Rows of plain events carry the person their distinct id maps to now (no merges
            # of persons with events happen in one batch without an override to rewrite).
            for e in flat:
                if e.event not in ("$identify", "$create_alias"):
                    assert rows[e.uuid]["person_id"] in {
                        dids[e.distinct_id],
                        *_overridden(w, dids[e.distinct_id]),
                    }
        finally:
            w.close()


def _overridden(w: ProjectWriter, survivor: str) -> set[str]:
    return {
        old
        for (old,) in w.conn.execute(
            "SELECT old_person_id FROM person_overrides WHERE new_person_id = ?", (survivor,)
        )
    }

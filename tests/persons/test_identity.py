"""Person model through the real writer and table: identify, alias, merges, $set/$set_once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eventlens.config import Settings
from eventlens.ingest.project_writer import ProjectWriter
from eventlens.storage.schema import bucket_of, person_id_for
from tests.storage.support import ev, records, settings_at, table_rows


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_at(tmp_path / "data")


@pytest.fixture
def writer(settings: Settings) -> Iterator[ProjectWriter]:
    w = ProjectWriter(settings, 1)
    yield w
    w.close()


def _by_event(settings: Settings) -> dict[str, dict[str, object]]:
    return {str(r["event"]): r for r in table_rows(settings)}


def test_anonymous_then_identify_is_one_person_without_data_movement(
    writer: ProjectWriter, settings: Settings
) -> None:
    writer.apply(
        records(
            [
                ev("anon_view", "anon", 1),
                ev("$identify", "user", 2, {"$anon_distinct_id": "anon"}),
                ev("user_view", "user", 3),
                ev("anon_again", "anon", 4),
            ]
        )
    )
    rows = table_rows(settings)
    assert {r["person_id"] for r in rows} == {person_id_for(1, "anon")}
    assert writer.merge_lag().pending == 0
    ident = writer.conn.execute("SELECT is_identified FROM persons").fetchall()
    assert ident == [(1,)]


def test_merge_of_two_persons_with_events_is_rewritten_into_one_bucket(
    settings: Settings,
) -> None:
    # Pick ids whose persons land in different buckets so the move is visible.
    anon = next(
        f"anon{i}"
        for i in range(100)
        if bucket_of(person_id_for(1, f"anon{i}")) != bucket_of(person_id_for(1, "user"))
    )
    writer = ProjectWriter(settings, 1)
    try:
        writer.apply(
            records(
                [
                    ev("a1", anon, 1, {"$set": {"plan": "free", "src": "ad"}}),
                    ev("u1", "user", 2, {"$set": {"plan": "pro"}}),
                ]
            )
        )
        writer.apply(
            records(
                [ev("$identify", "user", 3, {"$anon_distinct_id": anon}), ev("a2", anon, 4)],
                start=100,
            )
        )
        survivor, old = person_id_for(1, "user"), person_id_for(1, anon)
        rows = _by_event(settings)
        assert rows["a1"]["person_id"] == old  # not rewritten yet: queries see the old id
        assert rows["a2"]["person_id"] == survivor
        assert rows["a2"]["person_properties"] == {"plan": "pro", "src": "ad"}  # survivor wins
        lag = writer.merge_lag()
        assert lag.pending == 1 and lag.oldest_age_seconds >= 0
        version = writer.table.version()
        writer.maintain()
        assert writer.table.version() == version + 1  # one atomic commit
        rows = _by_event(settings)
        assert {r["person_id"] for r in rows.values()} == {survivor}
        assert {r["bucket"] for r in rows.values()} == {bucket_of(survivor)}
        assert writer.merge_lag().pending == 0
        writer.maintain()
        assert writer.table.version() == version + 1  # nothing left to do
    finally:
        writer.close()


def test_identified_anonymous_person_is_not_merged(
    writer: ProjectWriter, settings: Settings
) -> None:
    writer.apply(
        records(
            [
                ev("$identify", "u1", 1, {"$anon_distinct_id": "a1"}),
                ev("$identify", "u2", 2, {"$anon_distinct_id": "a2"}),
                ev("$identify", "u2", 3, {"$anon_distinct_id": "u1"}),  # u1 is identified
                ev("after", "u1", 4),
            ]
        )
    )
    assert _by_event(settings)["after"]["person_id"] == person_id_for(1, "u1")
    assert writer.merge_lag().pending == 0


def test_create_alias_merges_or_joins(writer: ProjectWriter, settings: Settings) -> None:
    writer.apply(records([ev("x", "a", 1), ev("y", "b", 2), ev("z", "c", 3)]))
    writer.apply(
        records(
            [
                ev("$create_alias", "b", 4, {"alias": "a"}),  # both seen: a's person -> b's
                ev("$create_alias", "c", 5, {"alias": "new"}),  # unseen alias joins c
                ev("after", "new", 6),
            ],
            start=100,
        )
    )
    pa_, pb, pc_ = (person_id_for(1, d) for d in "abc")
    overrides = dict(
        writer.conn.execute("SELECT old_person_id, new_person_id FROM person_overrides")
    )
    assert overrides == {pa_: pb}
    assert _by_event(settings)["after"]["person_id"] == pc_
    writer.maintain()
    rows = table_rows(settings)
    assert {r["person_id"] for r in rows if r["distinct_id"] in ("a", "b")} == {pb}


def test_chain_of_merges_is_collapsed(writer: ProjectWriter, settings: Settings) -> None:
    writer.apply(records([ev("x", "a", 1), ev("y", "b", 2), ev("z", "c", 3)]))
    # a -> b (b not identified before), then b's person -> c.
    writer.apply(records([ev("$create_alias", "b", 4, {"alias": "a"})], start=100))
    with writer.conn:
        writer.conn.execute("UPDATE persons SET is_identified = 0")  # let b be merged again
    writer.apply(records([ev("$create_alias", "c", 5, {"alias": "b"})], start=200))
    pa_, pb, pc_ = (person_id_for(1, d) for d in "abc")
    overrides = dict(
        writer.conn.execute("SELECT old_person_id, new_person_id FROM person_overrides")
    )
    assert overrides == {pa_: pc_, pb: pc_}
    writer.maintain()
    assert {r["person_id"] for r in table_rows(settings)} == {pc_}


def test_set_overwrites_and_set_once_keeps_first_in_log_order(
    writer: ProjectWriter, settings: Settings
) -> None:
    writer.apply(
        records(
            [
                ev("e1", "a", 1, {"$set_once": {"first": 1}, "$set": {"last": 1}}),
                ev("e2", "a", 2, {"$set_once": {"first": 2}, "$set": {"last": 2}}),
            ],
            [
                ev("$set", "a", 3, {"$set": {"last": 3}, "$unset": ["nothing"]}),
                ev("e4", "a", 4),
                ev("e5", "a", 5, {"$unset": ["last"]}),
                ev("e6", "a", 6),
            ],
        )
    )
    rows = _by_event(settings)
    assert rows["e1"]["person_properties"] == {"first": 1, "last": 1}
    assert rows["e2"]["person_properties"] == {"first": 1, "last": 2}
    assert rows["e4"]["person_properties"] == {"first": 1, "last": 3}
    assert rows["e5"]["person_properties"] == rows["e6"]["person_properties"] == {"first": 1}

"""Segment identity rules (docs/capture.md "Segment identity"): the parser's mapping of calls
with both ids and of `context.traits`, and what the person model makes of them through the
real writer (vectorised batch path) and table."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from eventlens.capture.model import CapturedEvent
from eventlens.capture.segment import parse_segment
from eventlens.config import Settings
from eventlens.ingest.project_writer import ProjectWriter
from eventlens.persons.model import LINKED_ID
from eventlens.storage.schema import person_id_for
from tests.storage.support import records, settings_at, table_rows

NOW = 1_700_000_000_000_000
AUTH = "Basic " + base64.b64encode(b"wk:").decode()


def parse(*msgs: dict[str, Any], context: dict[str, Any] | None = None) -> list[CapturedEvent]:
    body: dict[str, Any] = {"batch": [{"messageId": str(uuid.uuid4()), **m} for m in msgs]}
    if context is not None:
        body["context"] = context
    out = parse_segment(body, kind=None, now_us=NOW, auth_header=AUTH)
    assert not out.dead, out.dead
    return out.events


def test_identify_with_both_ids_is_posthog_identify_with_anon_distinct_id() -> None:
    (e,) = parse({"type": "identify", "userId": "u", "anonymousId": "a", "traits": {"x": 1}})
    assert (e.event, e.distinct_id) == ("$identify", "u")
    assert e.properties["$anon_distinct_id"] == "a"
    assert e.properties[LINKED_ID] == "a"
    assert e.properties["$set"] == {"x": 1}


@pytest.mark.parametrize("kind", ["track", "page", "screen", "group", "alias"])
def test_every_call_with_both_ids_links_them(kind: str) -> None:
    m = {"type": kind, "userId": "u", "anonymousId": 7, "event": "E"}
    m |= {"groupId": "g", "previousId": "p"}
    (e,) = parse(m)
    assert e.distinct_id == "u"
    assert e.properties[LINKED_ID] == "7"  # numbers stringified, as every distinct id
    assert "$anon_distinct_id" not in e.properties  # PostHog's key stays $identify's


@pytest.mark.parametrize("anon", [None, "", "  ", "u"])
def test_no_link_without_a_second_id(anon: Any) -> None:
    (e,) = parse({"type": "track", "userId": "u", "anonymousId": anon, "event": "E"})
    assert LINKED_ID not in e.properties and "$anon_distinct_id" not in e.properties


def test_anonymous_only_call_links_nothing() -> None:
    (e,) = parse({"type": "identify", "anonymousId": "a", "traits": {"x": 1}})
    assert e.distinct_id == "a"
    assert LINKED_ID not in e.properties and "$anon_distinct_id" not in e.properties


def test_bad_anonymous_id_next_to_user_id_is_dead_lettered() -> None:
    body = {"batch": [{"type": "track", "userId": "u", "anonymousId": "a\x00", "event": "E"}]}
    out = parse_segment(body, kind=None, now_us=NOW, auth_header=AUTH)
    assert not out.events
    assert "batch[0].anonymousId contains control character U+0000" in out.dead[0].reason


def test_context_traits_become_set_and_top_level_traits_win() -> None:
    (e,) = parse(
        {
            "type": "identify",
            "userId": "u",
            "traits": {"plan": "pro", "name": "Max"},
            "context": {"traits": {"plan": "free", "email": "m@x.test"}},
        }
    )
    assert e.properties["$set"] == {"plan": "pro", "name": "Max", "email": "m@x.test"}


def test_context_traits_of_any_call_are_person_properties() -> None:
    track, group = parse(
        {"type": "track", "userId": "u", "event": "E", "context": {"traits": {"a": 1}}},
        {"type": "group", "userId": "u", "groupId": "g", "traits": {"size": 5}},
        context={"traits": {"b": 2}},  # the batch's context: for messages without their own
    )
    assert track.properties["$set"] == {"a": 1}
    assert group.properties["$set"] == {"b": 2}
    assert group.properties["$group_set"] == {"size": 5}  # group traits stay the group's


def test_context_traits_under_a_track_s_own_set() -> None:
    (e,) = parse(
        {
            "type": "track",
            "userId": "u",
            "event": "E",
            "properties": {"$set": {"a": "mine"}},
            "context": {"traits": {"a": "ctx", "b": 2}},
        }
    )
    assert e.properties["$set"] == {"a": "mine", "b": 2}


def test_context_traits_not_an_object_is_dead_lettered() -> None:
    body = {"batch": [{"type": "identify", "userId": "u", "context": {"traits": [1]}}]}
    out = parse_segment(body, kind=None, now_us=NOW, auth_header=AUTH)
    assert "batch[0].context.traits must be a JSON object" in out.dead[0].reason


# -- through the writer ------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_at(tmp_path / "data", buckets=4)


@pytest.fixture
def writer(settings: Settings) -> Iterator[ProjectWriter]:
    w = ProjectWriter(settings, 1)
    yield w
    w.close()


def _at(events: list[CapturedEvent]) -> list[CapturedEvent]:
    """Distinct increasing times, in order."""
    return [
        CapturedEvent(e.uuid, e.event, e.distinct_id, NOW + i, e.properties)
        for i, e in enumerate(events)
    ]


@pytest.mark.parametrize("kind", ["identify", "track"])
def test_call_with_both_ids_merges_anonymous_person_into_users(
    writer: ProjectWriter, settings: Settings, kind: str
) -> None:
    first = parse(
        {"type": "track", "anonymousId": "a", "event": "anon_view"},
        {"type": "track", "userId": "u", "event": "user_ping"},
    )
    second = parse(
        {"type": kind, "userId": "u", "anonymousId": "a", "event": "linked"},
        {"type": "track", "anonymousId": "a", "event": "anon_later"},
    )
    writer.apply(records(_at(first)))
    writer.apply(records(_at(second), start=1000))
    writer.maintain()  # the rewrite job moves the merged person's stored events
    user = person_id_for(1, "u")
    assert {r["event"]: r["person_id"] for r in table_rows(settings)} == {
        "anon_view": user,
        "user_ping": user,
        "linked" if kind == "track" else "$identify": user,
        "anon_later": user,
    }


def test_link_inside_one_batch_joins_without_a_merge(
    writer: ProjectWriter, settings: Settings
) -> None:
    events = parse(
        {"type": "track", "anonymousId": "a", "event": "anon_view"},
        {"type": "track", "userId": "u", "anonymousId": "a", "event": "signed_up"},
        {"type": "page", "anonymousId": "a", "name": "Home"},
        {"type": "track", "userId": "u", "event": "paid", "context": {"traits": {"plan": "pro"}}},
    )
    writer.apply(records(_at(events)))
    rows = {r["event"]: r for r in table_rows(settings)}
    assert {r["person_id"] for r in rows.values()} == {person_id_for(1, "a")}
    assert writer.merge_lag().pending == 0
    assert rows["paid"]["person_properties"] == {"plan": "pro"}


def test_identified_anonymous_person_is_not_taken_by_another_user(
    writer: ProjectWriter, settings: Settings
) -> None:
    events = parse(
        {"type": "identify", "userId": "u1", "anonymousId": "a"},
        {"type": "track", "userId": "u2", "event": "other"},
        {"type": "track", "userId": "u2", "anonymousId": "a", "event": "shared_device"},
        {"type": "track", "anonymousId": "a", "event": "anon_again"},
    )
    writer.apply(records(_at(events)))
    rows = {r["event"]: r["person_id"] for r in table_rows(settings)}
    assert rows["anon_again"] == person_id_for(1, "u1")
    assert rows["shared_device"] == rows["other"] == person_id_for(1, "u2")


_IDS = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "u", "a"]),
    st.integers(-5, 5),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=5),
)


@hsettings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["identify", "track", "page", "screen", "alias", "group"]),
    user=_IDS,
    anon=_IDS,
)
def test_link_property_exactly_when_both_ids_differ(kind: str, user: Any, anon: Any) -> None:
    m = {"type": kind, "userId": user, "anonymousId": anon, "event": "E"}
    m |= {"groupId": "g", "previousId": "p"}
    out = parse_segment({"batch": [m]}, kind=None, now_us=NOW, auth_header=AUTH)

    def as_id(v: Any) -> str | None:
        return None if v is None or not str(v).strip() else str(v)

    u, a = as_id(user), as_id(anon)
    # Dead exactly when the distinct id is unusable: a blank userId, or no id at all.
    unusable = (user is not None and u is None) or (user is None and a is None)
    assert bool(out.dead) == unusable
    if out.dead:
        return
    (e,) = out.events
    assert e.distinct_id == (u if u is not None else a)
    want = a if u is not None and a is not None and a != u else None
    assert e.properties.get(LINKED_ID) == want
    assert e.properties.get("$anon_distinct_id") == (want if kind == "identify" else None)

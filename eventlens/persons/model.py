"""The person model (storage.md item 6) with PostHog's semantics, over the project state db.

`PersonState` is used inside one state-db transaction: it caches what it reads, applies
identity and property events in log order, and writes everything back in `flush()`.

Rules (docs/adr/0002-event-table-and-persons.md):
- an unseen distinct_id gets a new person `person_id_for(project, distinct_id)` (deterministic,
  so replaying the log yields the same ids);
- `$identify` (distinct_id = user, properties.$anon_distinct_id = anon) and `$create_alias`
  (properties.alias joins distinct_id's person): an unseen side joins the other side's person;
  two different persons are merged (the anon/alias side's person into the distinct_id side's),
  unless the anon/alias side's person is already identified (PostHog refuses such merges);
- a merge moves all distinct_ids, copies missing properties (survivor wins), records an
  override old -> new (chains collapsed) and marks the survivor identified;
- any event whose properties carry `$segment_anonymous_id` (the Segment parser sets it when a
  call has both a userId and a different anonymousId) links that id to its distinct_id by the
  same rule as `$identify`: Segment ties the two ids on every call that carries both;
- `$set` overwrites, `$set_once` keeps the first value, `$unset` removes keys, from the
  properties of any event.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

import orjson

from eventlens.storage.schema import person_id_for

IDENTIFY = "$identify"
# Ids per IN (...) probe: well under SQLite's smallest default bound-parameter limit (32766).
_PROBE_CHUNK = 10_000
CREATE_ALIAS = "$create_alias"
# Set by the Segment parser only; a property (not an event name) because any call links.
LINKED_ID = "$segment_anonymous_id"


@dataclass
class Person:
    person_id: str
    properties: dict[str, Any]
    is_identified: bool
    created_at: int  # µs UTC


def _as_id(value: Any) -> str | None:
    """A distinct id from a property value: strings and numbers, empty -> None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str) or not value:
        return None
    return value[:200]


def mentioned_id(event: str, properties: dict[str, Any]) -> str | None:
    """The other distinct id an identity event names ($anon_distinct_id / alias), if any."""
    if event == IDENTIFY:
        return _as_id(properties.get("$anon_distinct_id"))
    if event == CREATE_ALIAS:
        return _as_id(properties.get("alias"))
    return None


def linked_id(distinct_id: str, properties: dict[str, Any]) -> str | None:
    """The anonymous id an event of any name links to `distinct_id` (`LINKED_ID`), if it
    names one other than `distinct_id` itself."""
    linked = _as_id(properties.get(LINKED_ID))
    return None if linked == distinct_id else linked


class PersonState:
    """Person state of one project for the duration of one state-db transaction."""

    def __init__(self, conn: sqlite3.Connection, project_id: int) -> None:
        self._conn = conn
        self._project_id = project_id
        self._did: dict[str, str | None] = {}  # distinct_id -> person_id (None: unseen)
        self._dids_of: dict[str, set[str]] = {}  # person_id -> its cached distinct_ids
        self._persons: dict[str, Person] = {}
        self._dirty_dids: set[str] = set()
        self._dirty_persons: set[str] = set()
        self._deleted_persons: set[str] = set()
        self._overrides: list[tuple[str, str]] = []
        self._new_ids: dict[str, str] = {}
        # Changes since the last drain(): distinct_ids remapped, persons whose properties changed.
        self.changed_dids: set[str] = set()
        self.changed_persons: set[str] = set()

    # -- reads -------------------------------------------------------------------------------

    def preload(self, distinct_ids: list[str]) -> dict[str, str]:
        """Bulk-load the mapping (and persons) of `distinct_ids` into the cache; returns the
        known ones' distinct_id -> person_id (ids not returned are unseen)."""
        todo = [d for d in distinct_ids if d not in self._did]
        known = {d: p for d in distinct_ids if (p := self._did.get(d)) is not None}
        if not todo:
            return known
        self._did.update(dict.fromkeys(todo, None))
        rows = []
        for i in range(0, len(todo), _PROBE_CHUNK):
            chunk = todo[i : i + _PROBE_CHUNK]
            # Ids go in as bound parameters, never through SQLite's JSON functions: those cut
            # strings at U+0000, and the store must hold ids exactly as the event table does.
            rows.extend(
                self._conn.execute(
                    "SELECT d.distinct_id, d.person_id, p.properties, p.is_identified, "
                    "p.created_at FROM distinct_ids d "
                    "LEFT JOIN persons p ON p.person_id = d.person_id "
                    f"WHERE d.distinct_id IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
            )
        for did, pid, props, ident, created in rows:
            self._did[did] = pid
            known[did] = pid
            self._dids_of.setdefault(pid, set()).add(did)
            if pid not in self._persons and props is not None:
                self._persons[pid] = Person(pid, orjson.loads(props), bool(ident), created)
        return known

    def person_of(self, distinct_id: str) -> str | None:
        if distinct_id not in self._did:
            self.preload([distinct_id])
        return self._did[distinct_id]

    def person(self, person_id: str) -> Person:
        p = self._persons.get(person_id)
        if p is None:
            row = self._conn.execute(
                "SELECT properties, is_identified, created_at FROM persons WHERE person_id = ?",
                (person_id,),
            ).fetchone()
            if row is None:  # a distinct_id pointing nowhere: heal by recreating the person
                p = Person(person_id, {}, False, time.time_ns() // 1000)
                self._dirty_persons.add(person_id)
            else:
                p = Person(person_id, orjson.loads(row[0]), bool(row[1]), int(row[2]))
            self._persons[person_id] = p
        return p

    def properties_json(self, person_id: str) -> str:
        return orjson.dumps(self.person(person_id).properties).decode()

    # -- writes ------------------------------------------------------------------------------

    def _map(self, distinct_id: str, person_id: str) -> None:
        old = self._did.get(distinct_id)
        if old == person_id:
            return
        if old is not None:
            self._dids_of.get(old, set()).discard(distinct_id)
        self._did[distinct_id] = person_id
        self._dids_of.setdefault(person_id, set()).add(distinct_id)
        self._dirty_dids.add(distinct_id)
        self.changed_dids.add(distinct_id)

    def ensure(self, distinct_id: str, timestamp: int) -> str:
        """The person of `distinct_id`, creating it (empty, not identified) if unseen."""
        pid = self.person_of(distinct_id)
        if pid is not None:
            return pid
        pid = self.new_person_id(distinct_id)
        if pid in self._deleted_persons or pid not in self._persons:
            self._deleted_persons.discard(pid)
            self._persons[pid] = Person(pid, {}, False, timestamp)
            self._dirty_persons.add(pid)
            self.changed_persons.add(pid)
        self._map(distinct_id, pid)
        return pid

    def new_person_id(self, distinct_id: str) -> str:
        """The id a person created for `distinct_id` gets (memoised: it is a SHA-1)."""
        pid = self._new_ids.get(distinct_id)
        if pid is None:
            pid = self._new_ids[distinct_id] = person_id_for(self._project_id, distinct_id)
        return pid

    def bulk_create(
        self, distinct_ids: list[str], person_ids: list[str], created_at: list[int]
    ) -> None:
        """Create persons `person_ids[i]` (= new_person_id(distinct_ids[i])) for unseen distinct
        ids, created at `created_at[i]` (µs), straight in the db. Only for ids no identity
        event of the batch mentions (their order of creation then cannot matter)."""
        if not distinct_ids:
            return
        self._did.update(zip(distinct_ids, person_ids, strict=True))
        # Bound parameters (exact for any string), in key order for B-tree locality: Python's
        # code point order is SQLite's BINARY (UTF-8 byte) order.
        self._conn.executemany(
            "INSERT INTO distinct_ids(distinct_id, person_id) VALUES (?, ?)",
            sorted(zip(distinct_ids, person_ids, strict=True)),
        )
        self._conn.executemany(
            "INSERT INTO persons(person_id, properties, is_identified, created_at) "
            "VALUES (?, '{}', 0, ?) ON CONFLICT(person_id) DO NOTHING",
            sorted(zip(person_ids, created_at, strict=True)),
        )

    def _identify(self, person_id: str) -> None:
        p = self.person(person_id)
        if not p.is_identified:
            p.is_identified = True
            self._dirty_persons.add(person_id)

    def _merge(self, old: str, new: str) -> None:
        """Merge person `old` into `new`: distinct ids, properties (survivor wins), override."""
        rows = self._conn.execute(
            "SELECT distinct_id FROM distinct_ids WHERE person_id = ?", (old,)
        ).fetchall()
        for (did,) in rows:
            if did not in self._did:  # cached entries are newer than the db
                self._did[did] = old
                self._dids_of.setdefault(old, set()).add(did)
        for did in list(self._dids_of.get(old, set())):
            self._map(did, new)
        self._dids_of.pop(old, None)
        survivor = self.person(new)
        for key, value in self.person(old).properties.items():
            survivor.properties.setdefault(key, value)
        survivor.is_identified = True
        self._dirty_persons.add(new)
        self.changed_persons.add(new)
        self._persons.pop(old, None)
        self._dirty_persons.discard(old)
        self._deleted_persons.add(old)
        self._overrides.append((old, new))

    def _join(self, main_did: str, other_did: str, timestamp: int) -> None:
        """Identity rule shared by $identify (other = anon) and $create_alias (other = alias)."""
        if main_did == other_did:
            self._identify(self.ensure(main_did, timestamp))
            return
        main = self.person_of(main_did)
        other = self.person_of(other_did)
        if main is None and other is None:
            main = self.ensure(main_did, timestamp)
            self._map(other_did, main)
        elif main is None:
            assert other is not None
            self._map(main_did, other)
            main = other
        elif other is None:
            self._map(other_did, main)
        elif main != other and not self.person(other).is_identified:
            self._merge(other, main)
        self._identify(main)

    def apply_event(
        self, event: str, distinct_id: str, properties: dict[str, Any], timestamp: int
    ) -> str:
        """Apply one event's identity and property effects; returns its person_id after."""
        other = mentioned_id(event, properties)
        if other is not None:
            self._join(distinct_id, other, timestamp)
        linked = linked_id(distinct_id, properties)
        if linked is not None and linked != other:
            self._join(distinct_id, linked, timestamp)
        pid = self.ensure(distinct_id, timestamp)
        self._apply_properties(pid, properties)
        return pid

    def _apply_properties(self, person_id: str, properties: dict[str, Any]) -> None:
        to_set = properties.get("$set")
        to_set_once = properties.get("$set_once")
        to_unset = properties.get("$unset")
        if not (
            isinstance(to_set, dict) or isinstance(to_set_once, dict) or isinstance(to_unset, list)
        ):
            return
        props = self.person(person_id).properties
        before = dict(props)
        if isinstance(to_set_once, dict):
            for key, value in to_set_once.items():
                props.setdefault(key, value)
        if isinstance(to_set, dict):
            props.update(to_set)
        if isinstance(to_unset, list):
            for key in to_unset:
                if isinstance(key, str):
                    props.pop(key, None)
        if props != before or list(props) != list(before):
            self._dirty_persons.add(person_id)
            self.changed_persons.add(person_id)

    def drain(self) -> tuple[set[str], set[str]]:
        """Return and reset (changed distinct_ids, changed persons) since the last drain."""
        out = (self.changed_dids, self.changed_persons)
        self.changed_dids, self.changed_persons = set(), set()
        return out

    def flush(self, now_us: int | None = None) -> None:
        """Write all changes to the db (inside the caller's transaction)."""
        c = self._conn
        now = time.time_ns() // 1000 if now_us is None else now_us
        if self._dirty_dids:
            c.executemany(
                "INSERT INTO distinct_ids(distinct_id, person_id) VALUES (?, ?) "
                "ON CONFLICT(distinct_id) DO UPDATE SET person_id = excluded.person_id",
                [(d, self._did[d]) for d in sorted(self._dirty_dids)],
            )
        c.executemany(
            "DELETE FROM persons WHERE person_id = ?", [(p,) for p in self._deleted_persons]
        )
        rows = []
        for pid in sorted(self._dirty_persons):
            p = self._persons[pid]
            rows.append(
                (pid, orjson.dumps(p.properties).decode(), int(p.is_identified), p.created_at)
            )
        if rows:
            c.executemany(
                "INSERT INTO persons(person_id, properties, is_identified, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(person_id) DO UPDATE SET "
                "properties = excluded.properties, is_identified = excluded.is_identified",
                rows,
            )
        for old, new in self._overrides:
            # Collapse chains: whatever pointed at `old` now points at `new`.
            c.execute(
                "UPDATE person_overrides SET new_person_id = ? WHERE new_person_id = ?", (new, old)
            )
            c.execute(
                "INSERT INTO person_overrides(old_person_id, new_person_id, created_at) "
                "VALUES (?, ?, ?) ON CONFLICT(old_person_id) DO UPDATE SET "
                "new_person_id = excluded.new_person_id, rewritten_at = NULL",
                (old, new, now),
            )
        # The collapse may have rewritten a pending or rewritten override; a person merged away
        # and then re-created (same deterministic id) must not keep an override to itself.
        c.execute("DELETE FROM person_overrides WHERE old_person_id = new_person_id")
        self._dirty_dids.clear()
        self._dirty_persons.clear()
        self._deleted_persons.clear()
        self._overrides.clear()

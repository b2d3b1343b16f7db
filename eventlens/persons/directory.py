"""Reading persons back: the persons list, one person, and a person's events (docs/api.md
"Persons"), over the project state db (read-only) and the event table.

- Lookups by person id and by distinct id use the tables' primary keys; a page of the whole
  list walks the persons primary key in order (`ORDER BY person_id LIMIT .. OFFSET ..`).
- `search` matches a distinct id or person id exactly (indexed) or a substring of a property
  value (case-insensitive): that part scans the persons table once (SQLite's instr over the
  properties text, then an exact check of the values in Python), as PostHog's person search
  scans its persons table.
- A person id the events still carry after a merge (the rewrite job has not moved them yet)
  is shown as the person it was merged into, under the id the events counted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from eventlens.storage.event_table import DataFile, Snapshot
from eventlens.storage.schema import bucket_of

__all__ = [
    "PersonRecord",
    "events_of",
    "get_person",
    "list_persons",
    "persons_by_id",
    "read_only",
    "search_matches",
]

_CHUNK = 5_000  # ids per IN (...) probe, well under SQLite's bound-parameter limit
Predicate = Callable[["PersonRecord"], bool]


@dataclass(frozen=True)
class PersonRecord:
    """One person as the API shows it (`to_json`: PostHog's actor object)."""

    person_id: str
    distinct_ids: tuple[str, ...]
    properties: dict[str, Any]
    created_at: int | None  # µs UTC
    is_identified: bool

    def to_json(self) -> dict[str, Any]:
        created = None if self.created_at is None else _iso(self.created_at)
        return {
            "id": self.person_id,
            "distinct_ids": list(self.distinct_ids),
            "properties": self.properties,
            "created_at": created,
            "is_identified": self.is_identified,
        }


def _iso(us: int) -> str:
    # Exact to the µs (a float of seconds since 1970 is not).
    return (_EPOCH + timedelta(microseconds=us)).isoformat()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection | None]:
    """The state db at `path` opened read-only (None if the project has none yet: no persons).
    Never creates or writes anything."""
    if not path.exists():
        yield None
        return
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10, check_same_thread=False)
    try:
        yield conn
    finally:
        conn.close()


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


def persons_by_id(
    conn: sqlite3.Connection | None, ids: Sequence[str], *, follow: bool = True
) -> dict[str, PersonRecord]:
    """The records of `ids` (every id gets one: an id with no person row is the person it was
    merged into (`follow`), if any, else an empty record)."""
    found: dict[str, PersonRecord] = {}
    if conn is None:
        return {p: _empty(p) for p in ids}
    rows: dict[str, tuple[str, int, int]] = {}
    dids: dict[str, list[str]] = {}
    for chunk in _chunks(list(ids)):
        marks = ",".join("?" * len(chunk))
        for pid, props, ident, created in conn.execute(
            "SELECT person_id, properties, is_identified, created_at FROM persons "
            f"WHERE person_id IN ({marks})",
            list(chunk),
        ):
            rows[pid] = (props, ident, created)
        for did, pid in conn.execute(
            f"SELECT distinct_id, person_id FROM distinct_ids WHERE person_id IN ({marks})",
            list(chunk),
        ):
            dids.setdefault(pid, []).append(did)
    missing = [p for p in ids if p not in rows] if follow else []
    merged: dict[str, str] = {}
    for chunk in _chunks(missing):
        merged.update(
            conn.execute(
                "SELECT old_person_id, new_person_id FROM person_overrides "
                f"WHERE old_person_id IN ({','.join('?' * len(chunk))})",
                list(chunk),
            ).fetchall()
        )
    survivors = persons_by_id(conn, sorted(set(merged.values())), follow=False) if merged else {}
    for p in ids:
        if p in rows:
            props, ident, created = rows[p]
            found[p] = PersonRecord(
                p, tuple(sorted(dids.get(p, []))), orjson.loads(props), int(created), bool(ident)
            )
        elif p in merged and survivors[merged[p]].created_at is not None:
            found[p] = _renamed(survivors[merged[p]], p)
        else:
            found[p] = _empty(p)
    return found


def _empty(person_id: str) -> PersonRecord:
    return PersonRecord(person_id, (), {}, None, False)


def _renamed(record: PersonRecord, person_id: str) -> PersonRecord:
    return PersonRecord(
        person_id, record.distinct_ids, record.properties, record.created_at, record.is_identified
    )


def get_person(conn: sqlite3.Connection | None, person_id: str) -> PersonRecord | None:
    """The person `person_id` (also an id merged away: shown as its survivor), None if unknown."""
    if conn is None:
        return None
    known = conn.execute(
        "SELECT 1 FROM persons WHERE person_id = ? UNION ALL "
        "SELECT 1 FROM person_overrides WHERE old_person_id = ? LIMIT 1",
        (person_id, person_id),
    ).fetchone()
    if known is None:
        return None
    return persons_by_id(conn, [person_id])[person_id]


def search_matches(record: PersonRecord, search: str) -> bool:
    """Does `search` name this person: a distinct id or the person id exactly, or a substring
    (case-insensitive) of one of its property values (strings as they are, others as JSON)?"""
    if search in record.distinct_ids or search == record.person_id:
        return True
    needle = search.casefold()
    for value in record.properties.values():
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        if needle in text.casefold():
            return True
    return False


def _search_candidates(conn: sqlite3.Connection, search: str) -> list[str]:
    """Person ids `search` may name (a superset; search_matches decides), sorted."""
    out = {
        pid
        for (pid,) in conn.execute(
            "SELECT person_id FROM distinct_ids WHERE distinct_id = ? "
            "UNION SELECT person_id FROM persons WHERE person_id = ?",
            (search, search),
        )
    }
    # SQLite's lower() folds ASCII only; the exact check after it folds the rest.
    out.update(
        pid
        for (pid,) in conn.execute(
            "SELECT person_id FROM persons WHERE instr(lower(properties), lower(?)) > 0",
            (search,),
        )
    )
    if not search.isascii():
        out.update(pid for (pid,) in conn.execute("SELECT person_id FROM persons"))
    return sorted(out)


def list_persons(
    conn: sqlite3.Connection | None,
    ids: Sequence[str] | None,
    *,
    search: str | None,
    keep: Predicate | None,
    limit: int,
    offset: int,
) -> tuple[list[PersonRecord], int]:
    """(one page in person id order, the total matching). `ids`: the sorted persons to list
    (an insight's actors), None for every person of the project; `search` / `keep` filter them
    (keep: the person-property filter, a predicate on the record)."""
    if conn is None:
        return ([], 0) if ids is None else (_page_of(None, ids, limit, offset), len(ids))
    if not search and keep is None:
        if ids is not None:
            return _page_of(conn, ids, limit, offset), len(ids)
        (total,) = conn.execute("SELECT count(*) FROM persons").fetchone()
        page = [
            pid
            for (pid,) in conn.execute(
                "SELECT person_id FROM persons ORDER BY person_id LIMIT ? OFFSET ?",
                (limit, offset),
            )
        ]
        return _page_of(conn, page, limit, 0), int(total)
    candidates: Sequence[str]
    if search:
        found = _search_candidates(conn, search)
        candidates = found if ids is None else sorted(set(found) & set(ids))
    elif ids is None:
        candidates = [pid for (pid,) in conn.execute("SELECT person_id FROM persons ORDER BY 1")]
    else:
        candidates = ids
    matching: list[PersonRecord] = []
    for chunk in _chunks(list(candidates)):
        records = persons_by_id(conn, chunk)
        for pid in chunk:
            r = records[pid]
            if search and not search_matches(r, search):
                continue
            if keep is not None and not keep(r):
                continue
            matching.append(r)
    return matching[offset : offset + limit], len(matching)


def _page_of(
    conn: sqlite3.Connection | None, ids: Sequence[str], limit: int, offset: int
) -> list[PersonRecord]:
    page = list(ids[offset : offset + limit])
    records = persons_by_id(conn, page)
    return [records[p] for p in page]


_EVENT_COLUMNS = ["uuid", "event", "timestamp", "distinct_id", "person_id", "properties"]


def events_of(
    conn: sqlite3.Connection | None,
    snapshot: Snapshot,
    person_id: str,
    *,
    limit: int,
    before_us: int | None,
) -> tuple[list[dict[str, Any]], bool]:
    """(the person's events newest first, strictly before `before_us` if given, at most
    `limit`; is there more). Reads only the person's bucket, newest files first, and stops as
    soon as no older file can hold a newer event than those found. Events still carrying an id
    merged into this person count as the person's."""
    ids = {person_id}
    if conn is not None:
        ids.update(
            old
            for (old,) in conn.execute(
                "SELECT old_person_id FROM person_overrides WHERE new_person_id = ?",
                (person_id,),
            )
        )
    files = _files_of(snapshot, ids, before_us)
    files.sort(key=lambda f: f.max_ts if f.max_ts is not None else 2**62, reverse=True)
    found: list[tuple[int, str, dict[str, Any]]] = []
    wanted = pa.array(sorted(ids), pa.string())
    for f in files:
        if len(found) > limit and f.max_ts is not None and f.max_ts < found[limit][0]:
            break  # every later file is older than the page already found
        table = snapshot.read(_EVENT_COLUMNS, files=[f])
        table = table.filter(pc.is_in(table.column("person_id"), value_set=wanted))
        ts = table.column("timestamp").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        if before_us is not None:
            keep = pc.less(ts, before_us)
            table, ts = table.filter(keep), ts.filter(keep)
        for t, row in zip(ts.to_pylist(), table.to_pylist(), strict=True):
            found.append((t, str(row["uuid"]), row))
        found.sort(key=lambda x: (x[0], x[1]), reverse=True)
    page = found[:limit]
    return [_event_json(t, row) for t, _, row in page], len(found) > limit


def _files_of(snapshot: Snapshot, ids: set[str], before_us: int | None) -> list[DataFile]:
    try:
        buckets = {bucket_of(p, snapshot.buckets) for p in ids}
    except ValueError:  # not a UUID-shaped id: it could be in any bucket
        buckets = {f.bucket for f in snapshot.files}
    return [
        f
        for f in snapshot.files
        if f.bucket in buckets and (before_us is None or f.min_ts is None or f.min_ts < before_us)
    ]


def _event_json(ts: int, row: dict[str, Any]) -> dict[str, Any]:
    props = row.get("properties")
    return {
        "uuid": str(row["uuid"]),
        "event": row["event"],
        "timestamp": _iso(ts),
        "distinct_id": row["distinct_id"],
        "properties": orjson.loads(props) if isinstance(props, str | bytes) else (props or {}),
    }

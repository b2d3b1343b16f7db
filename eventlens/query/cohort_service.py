"""Cohorts as a service: create / list / change / delete, static members from person ids,
distinct ids or an uploaded CSV, a cohort's persons, and the lookup the query service hands to
normalisation (docs/api.md "Cohorts", ADR 0017).

Static members are stored as person ids, resolved from distinct ids through the project's state
database when they are added; ids that name no person are reported back (count and a sample),
never dropped silently.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from eventlens.errors import InvalidInput, PayloadTooLarge
from eventlens.projects.cohorts import CohortRecord, CohortStore
from eventlens.projects.store import Project
from eventlens.query.cohorts import (
    MAX_MEMBERS,
    BehavioralCondition,
    CohortLookup,
    PersonCondition,
    ResolvedCohort,
    conditions,
    definition_json,
    parse_definition,
    resolve,
)
from eventlens.query.reference.events import load_events
from eventlens.query.semantics.cohorts import memberships

MAX_NAME = 200
MAX_DESCRIPTION = 2000
MAX_CSV_BYTES = 5 * 2**20  # an uploaded CSV of distinct ids (~100k ids of 50 characters)
SAMPLE_UNKNOWN = 10  # unknown ids echoed back
MAX_PAGE = 1000
_BODY_KEYS = ("name", "description", "is_static", "filters", "person_ids", "distinct_ids")
_CHUNK = 500  # ids per SQL IN list (SQLite's default variable limit is 999+)


@dataclass(frozen=True)
class Resolved:
    """Ids resolved to person ids: the persons found (in input order, once each) and the ids
    that named no person."""

    persons: list[str]
    unknown: list[str]

    def report(self, added: int) -> dict[str, Any]:
        return {
            "added": added,
            "unknown": len(self.unknown),
            "sample_unknown": self.unknown[:SAMPLE_UNKNOWN],
        }


def lookup_for(store: CohortStore, project: Project, now: datetime) -> CohortLookup:
    """The project's cohorts, resolved at `now` in its calendar (normalise's `cohorts=`)."""

    def lookup(cohort_id: int) -> ResolvedCohort | None:
        record = store.find(project.id, cohort_id)
        if record is None:
            return None
        return resolved(store, record, project, now)

    return lookup


def resolved(
    store: CohortStore, record: CohortRecord, project: Project, now: datetime
) -> ResolvedCohort:
    static = record.is_static
    return resolve(
        record.id,
        record.name,
        members=frozenset(store.members(record.id)) if static else None,
        definition=None if static else parse_definition(record.filters),
        timezone=project.timezone,
        now=now,
    )


def _check_keys(body: dict[str, Any]) -> None:
    for key in body:
        if key not in _BODY_KEYS:
            raise InvalidInput(
                f"unsupported field {key!r} (a cohort has {', '.join(_BODY_KEYS)})", field=key
            )


def _clean_name(name: object, field: str, limit: int, required: bool) -> str:
    if not isinstance(name, str) or (required and not name.strip()) or len(name) > limit:
        need = "a non-empty string" if required else "a string"
        raise InvalidInput(f"{field}: must be {need} of at most {limit} characters", field=field)
    return name.strip()


def _id_list(value: object, field: str) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_MEMBERS:
        raise InvalidInput(f"{field}: must be a list of at most {MAX_MEMBERS} ids", field=field)
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, str | int) or not 0 < len(str(v)) <= 200:
            raise InvalidInput(
                f"{field}[{i}]: an id is a string of 1..200 characters", field=f"{field}[{i}]"
            )
        out.append(str(v))
    return out


class CohortService:
    """Cohorts of the projects in `store`; `state_db(project_id)` locates a project's state
    database; `pin(project_id)` gives its latest snapshot (the query service's)."""

    def __init__(self, store: CohortStore, state_db: Any, pin: Any) -> None:
        self.store = store
        self._state_db = state_db
        self._pin = pin

    # -- CRUD -----------------------------------------------------------------------------

    def create(self, project: Project, body: dict[str, Any]) -> dict[str, Any]:
        """A new cohort from the API body (docs/api.md). InvalidInput naming the field for a
        bad one. Static: `person_ids` or `distinct_ids` (unknown ones reported)."""
        _check_keys(body)
        name = _clean_name(body.get("name"), "name", MAX_NAME, True)
        description = _clean_name(
            body.get("description", ""), "description", MAX_DESCRIPTION, False
        )
        is_static = body.get("is_static", False)
        if not isinstance(is_static, bool):
            raise InvalidInput("is_static: must be true or false", field="is_static")
        if not is_static:
            for key in ("person_ids", "distinct_ids"):
                if body.get(key):
                    raise InvalidInput(f"{key}: only a static cohort lists persons", field=key)
            filters = definition_json(parse_definition(body.get("filters"), "filters"))
            return self._out(self.store.create(project.id, name, description, filters))
        if body.get("filters") not in (None, {}, {"properties": None}):
            raise InvalidInput("filters: a static cohort has no filters", field="filters")
        found = self._members_of(project, body)
        record = self.store.create(project.id, name, description, None, found.persons)
        return {**self._out(record), **found.report(len(found.persons))}

    def _members_of(self, project: Project, body: dict[str, Any]) -> Resolved:
        persons, distinct = body.get("person_ids"), body.get("distinct_ids")
        if persons is not None and distinct is not None:
            raise InvalidInput("give person_ids or distinct_ids, not both", field="person_ids")
        if distinct is not None:
            return self.resolve_distinct_ids(project.id, _id_list(distinct, "distinct_ids"))
        return self.resolve_person_ids(project.id, _id_list(persons or [], "person_ids"))

    def list_cohorts(self, project: Project) -> list[dict[str, Any]]:
        """The project's cohorts, oldest first, each with its `count`."""
        return [self._out(r, count=True, project=project) for r in self.store.list_for(project.id)]

    def get(self, project: Project, cohort_id: int) -> dict[str, Any]:
        return self._out(self.store.get(project.id, cohort_id), count=True, project=project)

    def update(self, project: Project, cohort_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Change name / description / filters (dynamic) or members (static: `person_ids` or
        `distinct_ids` replace them)."""
        _check_keys(body)
        record = self.store.get(project.id, cohort_id)
        if "is_static" in body and body["is_static"] != record.is_static:
            raise InvalidInput("is_static: a cohort cannot change its kind", field="is_static")
        name = None if "name" not in body else _clean_name(body["name"], "name", MAX_NAME, True)
        description = (
            None
            if "description" not in body
            else _clean_name(body["description"], "description", MAX_DESCRIPTION, False)
        )
        filters = None
        report: dict[str, Any] = {}
        members = None
        if record.is_static:
            if body.get("filters") not in (None, {}):
                raise InvalidInput("filters: a static cohort has no filters", field="filters")
            if "person_ids" in body or "distinct_ids" in body:
                found = self._members_of(project, body)
                members = found.persons
                report = found.report(len(found.persons))
        else:
            for key in ("person_ids", "distinct_ids"):
                if key in body:
                    raise InvalidInput(f"{key}: only a static cohort lists persons", field=key)
            if "filters" in body:
                filters = definition_json(parse_definition(body["filters"], "filters"))
        updated = self.store.update(
            record, name=name, description=description, filters=filters, members=members
        )
        return {**self._out(updated), **report}

    def delete(self, project: Project, cohort_id: int) -> None:
        self.store.delete(project.id, cohort_id)

    def upload(self, project: Project, cohort_id: int, body: bytes) -> dict[str, Any]:
        """Add the distinct ids of a CSV (one per line, first column; an optional header
        `distinct_id`) to a static cohort: {added, unknown, sample_unknown}."""
        record = self.store.get(project.id, cohort_id)
        if not record.is_static:
            raise InvalidInput(
                f"cohort {cohort_id} is dynamic: only a static cohort takes a CSV",
                field="cohort_id",
            )
        if len(body) > MAX_CSV_BYTES:
            raise PayloadTooLarge(
                f"body: a cohort CSV is at most {MAX_CSV_BYTES} bytes, got {len(body)}",
                field="body",
            )
        ids = parse_csv(body)
        if len(ids) > MAX_MEMBERS:
            raise InvalidInput(f"body: at most {MAX_MEMBERS} distinct ids", field="body")
        found = self.resolve_distinct_ids(project.id, ids)
        before = set(self.store.members(record.id))
        new = [p for p in found.persons if p not in before]
        if len(before) + len(new) > MAX_MEMBERS:
            raise InvalidInput(
                f"body: a static cohort holds at most {MAX_MEMBERS} persons", field="body"
            )
        self.store.update(record, add_members=new)
        return found.report(len(new))

    # -- persons --------------------------------------------------------------------------

    def member_ids(self, project: Project, record: CohortRecord) -> list[str]:
        """The cohort's persons at the latest data version, sorted: a static cohort's members,
        or the persons with events whom the dynamic definition holds (the reference rule,
        semantics/cohorts.py, over the snapshot's rows)."""
        if record.is_static:
            return self.store.members(record.id)
        cohort = resolved(self.store, record, project, datetime.now(UTC))
        snapshot = self._pin(project.id)
        if not snapshot.version:
            return []
        # Only what the conditions read: without a person condition, only the rows of the
        # behavioural conditions' events and no person properties.
        found = list(conditions(parse_definition(record.filters)))
        by_person = any(isinstance(c, PersonCondition) for c in found)
        columns = ["uuid", "event", "distinct_id", "person_id", "timestamp"]
        table = snapshot.read(columns=[*columns, "person_properties"] if by_person else columns)
        if not by_person:
            names = sorted({c.key for c in found if isinstance(c, BehavioralCondition)})
            table = table.filter(pc.is_in(table.column("event"), pa.array(names, pa.string())))
        return sorted(memberships([cohort], load_events(table)))

    def persons(
        self, project: Project, cohort_id: int, limit: int = 100, offset: int = 0
    ) -> dict[str, Any]:
        """One page of the cohort's persons, in the actors response shape, by person id."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit: must be 1..{MAX_PAGE}", field="limit")
        if offset < 0:
            raise InvalidInput("offset: must be >= 0", field="offset")
        record = self.store.get(project.id, cohort_id)
        ids = self.member_ids(project, record)
        page = ids[offset : offset + limit]
        people = self._person_objects(project.id, page)
        return {
            "results": [[people[p]] for p in page if p in people],
            "columns": ["person"],
            "hasMore": offset + limit < len(ids),
            "limit": limit,
            "offset": offset,
            "total": len(ids),
        }

    # -- the state database ---------------------------------------------------------------

    def _connect(self, project_id: int) -> sqlite3.Connection | None:
        path: Path = self._state_db(project_id)
        if not path.exists():
            return None
        # Read-only: the consumer process owns writes (WAL lets both run at once).
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)

    def _query(self, project_id: int, sql: str, ids: Sequence[str]) -> list[tuple[Any, ...]]:
        conn = self._connect(project_id)
        if conn is None:
            return []
        try:
            rows: list[tuple[Any, ...]] = []
            for i in range(0, len(ids), _CHUNK):
                chunk = list(ids[i : i + _CHUNK])
                marks = ", ".join("?" for _ in chunk)
                rows += conn.execute(sql.format(marks=marks), chunk).fetchall()
            return rows
        finally:
            conn.close()

    def resolve_distinct_ids(self, project_id: int, ids: Iterable[str]) -> Resolved:
        wanted = list(dict.fromkeys(ids))
        rows = self._query(
            project_id,
            "SELECT distinct_id, person_id FROM distinct_ids WHERE distinct_id IN ({marks})",
            wanted,
        )
        person_of = {str(d): str(p) for d, p in rows}
        persons = list(dict.fromkeys(person_of[d] for d in wanted if d in person_of))
        return Resolved(persons, [d for d in wanted if d not in person_of])

    def resolve_person_ids(self, project_id: int, ids: Iterable[str]) -> Resolved:
        wanted = list(dict.fromkeys(ids))
        rows = self._query(
            project_id, "SELECT person_id FROM persons WHERE person_id IN ({marks})", wanted
        )
        known = {str(r[0]) for r in rows}
        return Resolved([p for p in wanted if p in known], [p for p in wanted if p not in known])

    def _person_objects(self, project_id: int, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        rows = self._query(
            project_id,
            "SELECT person_id, properties, is_identified, created_at FROM persons"
            " WHERE person_id IN ({marks})",
            ids,
        )
        dids = self._query(
            project_id,
            "SELECT person_id, distinct_id FROM distinct_ids WHERE person_id IN ({marks})"
            " ORDER BY distinct_id",
            ids,
        )
        by_person: dict[str, list[str]] = {}
        for p, d in dids:
            by_person.setdefault(str(p), []).append(str(d))
        return {
            str(p): {
                "id": str(p),
                "distinct_ids": by_person.get(str(p), []),
                "properties": orjson.loads(props),
                "created_at": datetime.fromtimestamp(created / 1e6, UTC).isoformat(),
                "is_identified": bool(identified),
            }
            for p, props, identified, created in rows
        }

    # -- output ---------------------------------------------------------------------------

    def _out(
        self, record: CohortRecord, *, count: bool = False, project: Project | None = None
    ) -> dict[str, Any]:
        out = record.to_dict()
        if count and project is not None:
            out["count"] = len(self.member_ids(project, record))
        return out


def parse_csv(body: bytes) -> list[str]:
    """Distinct ids of a CSV body: the first column of each non-empty row, a first row
    `distinct_id` taken as the header. InvalidInput (field body) if it is not UTF-8."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("body: the CSV must be UTF-8 text", field="body") from None
    ids = []
    for i, row in enumerate(csv.reader(io.StringIO(text))):
        if not row or not row[0].strip():
            continue
        value = row[0].strip()
        if i == 0 and value.lower() == "distinct_id":
            continue
        if len(value) > 200:
            raise InvalidInput(
                f"body: line {i + 1}: a distinct id is at most 200 characters", field="body"
            )
        ids.append(value)
    return ids

"""ActorsQuery: the persons behind a number of an insight, or the persons list (docs/api.md
"Actors", docs/adr/0016-actors.md).

    ActorsQuery JSON -> parse (eventlens.query.model.parse_actors_query)
      source null: the project's persons (persons.directory), searched and filtered
      source InsightActorsQuery:
        -> the insight itself through the query service (so a cached answer is reused) at data
           version N
        -> the selector resolved against that answer (semantics.actors.resolve: a Cell)
        -> the engine lists the cell's persons over the snapshot at version N (the kind's
           `<kind>_actors`, eventlens.query.kinds), in the query pool under the deadline
        -> search / person-property filters, one page in person id order, the persons' records
        (the point's id list is kept for the next page: `_Lists`)

The answer: PostHog's actors shape, `results` = [[person], ...] with `columns` ["person"],
`total` (every matching person), `hasMore`, `limit`, `offset`, plus `data_version`, `engine`
and, for an insight point, `insight_value` (the number the insight shows there).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import orjson

from eventlens.errors import InvalidQuery
from eventlens.persons.directory import PersonRecord, list_persons, read_only
from eventlens.query.engines import run_actors
from eventlens.query.in_project import normalise_in_project
from eventlens.query.model import ActorsQuery, PropertyGroup, parse_actors_query, parse_query
from eventlens.query.registry import get_engine
from eventlens.query.semantics.actors import resolve
from eventlens.query.semantics.events import Event
from eventlens.query.semantics.filters import properties_match
from eventlens.query.service import DEFAULT_ENGINE, QueryService
from eventlens.storage import tables

__all__ = ["is_actors_query", "run_actors_query"]


def is_actors_query(query: object) -> bool:
    """Is this query JSON an ActorsQuery (else an insight query)?"""
    return isinstance(query, dict) and query.get("kind") == "ActorsQuery"


def _keep(aq: ActorsQuery) -> Any:
    """The person-property filter as a predicate on a person record (None: no filter), with the
    very rule insights filter person properties by."""
    props = aq.properties
    if not (props.values if isinstance(props, PropertyGroup) else props):
        return None

    def keep(record: PersonRecord) -> bool:
        probe = Event("", "", "", record.person_id, 0, {}, record.properties)
        return properties_match(props, probe)

    return keep


def _answer(aq: ActorsQuery, page: list[PersonRecord], total: int, **extra: Any) -> dict[str, Any]:
    # The query's own key (the envelope's `fingerprint` / `cache_key`): actors answers are not
    # kept by the result cache, only the insight part is.
    canonical = orjson.dumps(aq.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return {
        "fingerprint": hashlib.sha256(canonical).hexdigest(),
        "data_version": None,
        "results": [[r.to_json()] for r in page],
        "columns": ["person"],
        "types": ["Person"],
        "hasMore": aq.offset + len(page) < total,
        "limit": aq.limit,
        "offset": aq.offset,
        "total": total,
        "kind": "ActorsQuery",
        **extra,
    }


def _prefixed(exc: InvalidQuery, prefix: str) -> InvalidQuery:
    if exc.field not in ("engine", "timeout", "refresh"):
        exc.field = f"{prefix}.{exc.field}" if exc.field else prefix
    return exc


async def run_actors_query(
    service: QueryService,
    project_id: int,
    query: object,
    *,
    engine: str = DEFAULT_ENGINE,
    timeout: float | None = None,
) -> dict[str, Any]:
    """The ActorsQuery answer. InvalidQuery (400, `field` relative to the query) for a bad
    query or selector (`source.funnelStep`, `source.day` ...); NotFound for an unknown project;
    QueryTimeout at the deadline."""
    started = time.perf_counter()
    aq = parse_actors_query(query)
    deadline = service.deadline_for(timeout)
    project = service.metadata.get_project(project_id)
    keep = _keep(aq)
    state_db = service.settings.state_db(project.id)

    if aq.source is None:

        def persons_list() -> dict[str, Any]:
            with read_only(state_db) as conn:
                page, total = list_persons(
                    conn, None, search=aq.search, keep=keep, limit=aq.limit, offset=aq.offset
                )
            return _answer(aq, page, total, engine="persons", timings={"total_ms": _ms(started)})

        result: dict[str, Any] = await service.pool.run_async(persons_list, deadline)
        return result

    source = aq.source.source
    try:
        parsed = parse_query(source)
    except InvalidQuery as exc:
        raise _prefixed(exc, "source.source") from None
    resolved_engine = get_engine(engine)
    # The insight's own answer, through the cache: a chart just drawn is not computed again.
    # Its normalised form must be this request's (relative dates resolve against "now"); across
    # a bucket boundary the two can differ, then the insight is asked once more.
    for _ in range(2):
        nq = normalise_in_project(parsed, project, service.cohorts.store, datetime.now(UTC))
        try:
            outcome = await service.run(project.id, source, engine=engine, timeout=timeout)
        except InvalidQuery as exc:
            raise _prefixed(exc, "source.source") from None
        if outcome.fingerprint == nq.fingerprint:
            break
    insight = outcome.results
    assert insight is not None and outcome.data_version is not None  # a blocking run answers
    # semantics.actors names the selector's fields from the ActorsQuery ("source.funnelStep").
    point = resolve(nq, aq.source, insight)
    snapshot = tables.snapshot(service.settings, project.id, outcome.data_version)
    computed = time.perf_counter()

    key = (
        project.id,
        snapshot.version,
        resolved_engine.name,
        point.query.fingerprint,
        # compare "previous" is the same query over other dates (the fingerprint is the
        # current period's): the dates are part of the key.
        point.query.date_from,
        point.query.date_to,
        repr(point.cell),
    )

    def persons() -> dict[str, Any]:
        ids = _LISTS.get(key)
        if ids is None:
            ids = run_actors(resolved_engine, point.query, snapshot, point.cell, deadline)
            _LISTS.put(key, ids)
        listed = time.perf_counter()
        with read_only(state_db) as conn:
            page, total = list_persons(
                conn, ids, search=aq.search, keep=keep, limit=aq.limit, offset=aq.offset
            )
        return _answer(
            aq,
            page,
            total,
            insight_value=point.shown,
            data_version=snapshot.version,
            engine=resolved_engine.name,
            timings={
                "insight_ms": round((computed - started) * 1000, 3),
                "actors_ms": round((listed - computed) * 1000, 3),
                "persons_ms": _ms(listed),
                "total_ms": _ms(started),
            },
        )

    answer: dict[str, Any] = await service.pool.run_async(persons, deadline)
    return answer


class _Lists:
    """The last few points' person id lists, by (project, data version, engine, query
    fingerprint, cell): the next page, another search or filter of the same point reads the
    list instead of computing it again. Exact: a list is true at its data version forever.
    Bounded by entries and by ids (a list above MAX_IDS is not kept)."""

    ENTRIES = 32
    MAX_IDS = 2_000_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[Any, ...], list[str]] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> list[str] | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[Any, ...], ids: list[str]) -> None:
        if len(ids) > self.MAX_IDS:
            return
        with self._lock:
            self._items[key] = ids
            while len(self._items) > self.ENTRIES:
                self._items.popitem(last=False)


_LISTS = _Lists()


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)

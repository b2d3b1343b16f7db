"""GET /api/projects/{id}/persons/{person_id} and .../events: the person page (docs/api.md
"Persons"). The persons list and the persons behind a number are the ActorsQuery of
POST /api/projects/{id}/query."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from starlette.requests import Request

from eventlens.accounts.policy import Permission
from eventlens.errors import InvalidInput, NotFound
from eventlens.persons.directory import events_of, get_person, read_only
from eventlens.storage import tables
from eventlens.web.api.schemas import ERROR_RESPONSES, ProjectId
from eventlens.web.auth import ProjectAccess, project_permission
from eventlens.web.deps import settings_of

router = APIRouter(prefix="/api/projects/{project_id}", tags=["query"])
Readable = project_permission(Permission.QUERY_READ)
PersonId = Annotated[str, Path(min_length=1, max_length=200, description="the person's id")]
MAX_EVENTS_PAGE = 1000


@router.get("/persons/{person_id}", responses={k: ERROR_RESPONSES[k] for k in (401, 404)})
def person(
    project_id: ProjectId,
    person_id: PersonId,
    request: Request,
    access: Annotated[ProjectAccess, Depends(Readable)],
) -> Any:
    """One person: `{"id", "distinct_ids", "properties", "created_at", "is_identified"}`
    (404 for an id this project has no person of)."""
    settings = settings_of(request)
    with read_only(settings.state_db(access.project.id)) as conn:
        record = get_person(conn, person_id)
    if record is None:
        raise NotFound(f"no person {person_id!r} in project {access.project.id}")
    return record.to_json()


def _instant(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"before: not an ISO 8601 date-time: {text[:64]!r}", field="before"
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput("before: give a timezone (e.g. 2024-01-02T10:00:00Z)", field="before")
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


@router.get(
    "/persons/{person_id}/events", responses={k: ERROR_RESPONSES[k] for k in (400, 401, 404)}
)
def person_events(
    project_id: ProjectId,
    person_id: PersonId,
    request: Request,
    access: Annotated[ProjectAccess, Depends(Readable)],
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS_PAGE)] = 100,
    before: Annotated[
        str | None,
        Query(max_length=64, description="only events strictly before this ISO date-time"),
    ] = None,
) -> Any:
    """The person's events, newest first: `{"results": [{"uuid", "event", "timestamp",
    "distinct_id", "properties"}], "hasMore"}`. The next page: `before` = the last timestamp
    shown (events at the very same instant as it are on the page already or come next by
    uuid order, see docs/api.md)."""
    settings = settings_of(request)
    before_us = _instant(before)
    with read_only(settings.state_db(access.project.id)) as conn:
        if get_person(conn, person_id) is None:
            raise NotFound(f"no person {person_id!r} in project {access.project.id}")
        snapshot = tables.snapshot(settings, access.project.id)
        events, more = events_of(conn, snapshot, person_id, limit=limit, before_us=before_us)
    return {"results": events, "hasMore": more, "data_version": snapshot.version}

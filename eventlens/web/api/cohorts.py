"""Cohorts: CRUD, CSV upload and persons under /api/projects/{id}/cohorts (docs/api.md
"Cohorts"). Reads need query:read, changes insight:write (as saved insights and dashboards);
a bad body is a 400 naming the field, never stored."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from starlette.responses import Response

from eventlens.accounts.policy import Permission
from eventlens.errors import PayloadTooLarge
from eventlens.query.cohort_service import MAX_CSV_BYTES, MAX_PAGE, CohortService
from eventlens.query.service import QueryService
from eventlens.web.api.schemas import ERROR_RESPONSES, MAX_ID, ErrorBody, ProjectId
from eventlens.web.auth import ProjectAccess, project_permission
from eventlens.web.deps import query_service

router = APIRouter(prefix="/api/projects/{project_id}", tags=["cohorts"])
CohortId = Annotated[int, Path(ge=1, le=MAX_ID, description="Cohort id.")]
Reader = Annotated[ProjectAccess, Depends(project_permission(Permission.QUERY_READ))]
Writer = Annotated[ProjectAccess, Depends(project_permission(Permission.INSIGHT_WRITE))]
Queries = Annotated[QueryService, Depends(query_service)]
JsonBody = Annotated[dict[str, Any], Body(description="The cohort (docs/api.md, Cohorts).")]
_ERRORS: dict[int | str, dict[str, Any]] = {k: ERROR_RESPONSES[k] for k in (400, 401, 404)}


def _service(queries: QueryService) -> CohortService:
    return queries.cohorts


@router.get("/cohorts", responses=_ERRORS)
def list_cohorts(project_id: ProjectId, access: Reader, queries: Queries) -> Any:
    """The project's cohorts, oldest first, each with `count` (its persons now)."""
    return {"results": _service(queries).list_cohorts(access.project)}


@router.post("/cohorts", status_code=201, responses=_ERRORS)
def create_cohort(project_id: ProjectId, body: JsonBody, access: Writer, queries: Queries) -> Any:
    """A dynamic cohort (`filters`) or a static one (`person_ids` / `distinct_ids`; the ids
    that name no person are reported as `unknown` and `sample_unknown`)."""
    return _service(queries).create(access.project, body)


@router.get("/cohorts/{cohort_id}", responses=_ERRORS)
def get_cohort(project_id: ProjectId, cohort_id: CohortId, access: Reader, queries: Queries) -> Any:
    return _service(queries).get(access.project, cohort_id)


@router.patch("/cohorts/{cohort_id}", responses=_ERRORS)
def update_cohort(
    project_id: ProjectId, cohort_id: CohortId, body: JsonBody, access: Writer, queries: Queries
) -> Any:
    """Rename, redescribe, redefine (dynamic) or replace the members (static)."""
    return _service(queries).update(access.project, cohort_id, body)


@router.delete("/cohorts/{cohort_id}", status_code=204, responses=_ERRORS)
def delete_cohort(
    project_id: ProjectId, cohort_id: CohortId, access: Writer, queries: Queries
) -> Response:
    _service(queries).delete(access.project, cohort_id)
    return Response(status_code=204)


_TOO_LARGE = {"model": ErrorBody, "description": f"The CSV is over {MAX_CSV_BYTES} bytes."}


@router.post("/cohorts/{cohort_id}/upload", responses={**_ERRORS, 413: _TOO_LARGE})
async def upload_cohort(
    project_id: ProjectId, cohort_id: CohortId, request: Request, access: Writer, queries: Queries
) -> Any:
    """Add the distinct ids of a CSV body (text/csv, one per line, optional header
    `distinct_id`, at most MAX_CSV_BYTES) to a static cohort."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_CSV_BYTES:
            raise PayloadTooLarge(
                f"body: a cohort CSV is at most {MAX_CSV_BYTES} bytes", field="body"
            )
    return _service(queries).upload(access.project, cohort_id, bytes(body))


@router.get("/cohorts/{cohort_id}/persons", responses=_ERRORS)
def cohort_persons(
    project_id: ProjectId,
    cohort_id: CohortId,
    access: Reader,
    queries: Queries,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> Any:
    """The cohort's persons by person id, in the actors response shape."""
    return _service(queries).persons(access.project, cohort_id, limit, offset)

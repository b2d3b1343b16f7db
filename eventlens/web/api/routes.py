"""The JSON API: projects and insight queries. Every route needs `Authorization: Bearer <key>`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Path, Query, Request
from starlette.responses import Response

from eventlens.accounts.policy import Permission, Principal
from eventlens.errors import InvalidQuery, NotFound
from eventlens.projects.store import Project
from eventlens.query.actors import is_actors_query, run_actors_query
from eventlens.query.model import apply_filters_override
from eventlens.query.service import QueryService
from eventlens.web.api.schemas import (
    ERROR_RESPONSES,
    QUERY_EXAMPLES,
    ProjectId,
    ProjectInfo,
    QueryRequest,
    QueryResponse,
    QueryStatusResponse,
)
from eventlens.web.auth import (
    ProjectAccess,
    any_principal,
    project_permission,
    visible_projects,
)
from eventlens.web.deps import query_service

router = APIRouter(prefix="/api", tags=["query"])
Readable = project_permission(Permission.QUERY_READ)


class JSONBytes(Response):
    """orjson-encoded JSON (numpy scalars and arrays allowed in engine results)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def _info(p: Project) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "timezone": p.timezone,
        "week_start": p.week_start,
        "test_account_filters": p.test_account_filters,
        "path_cleaning_filters": p.path_cleaning_filters,
    }


@router.get("/projects", response_model=list[ProjectInfo], responses={401: ERROR_RESPONSES[401]})
def list_projects(
    request: Request, principal: Annotated[Principal, Depends(any_principal())]
) -> Any:
    """The projects these credentials can read (query:read)."""
    return [_info(p) for p in visible_projects(request, principal, Permission.QUERY_READ)]


@router.get(
    "/projects/{project_id}",
    response_model=ProjectInfo,
    responses={k: ERROR_RESPONSES[k] for k in (401, 404)},
)
def get_project(project_id: ProjectId, access: Annotated[ProjectAccess, Depends(Readable)]) -> Any:
    """One project (404 if these credentials cannot read it, whether or not it exists)."""
    return _info(access.project)


@router.post(
    "/projects/{project_id}/query",
    response_model=QueryResponse,
    responses={k: ERROR_RESPONSES[k] for k in (400, 401, 404, 503, 504)},
)
async def run_query(
    project_id: ProjectId,
    body: Annotated[QueryRequest, Body(openapi_examples=QUERY_EXAMPLES)],
    access: Annotated[ProjectAccess, Depends(Readable)],
    service: Annotated[QueryService, Depends(query_service)],
    explain: Annotated[
        bool, Query(description="Add the plan and its measured costs (EXPLAIN ANALYZE).")
    ] = False,
) -> Response:
    """Run an insight query on the project's latest data version.

    With `?explain=1` the answer also carries `explain`: files pruned and kept, sub-tasks, rows
    scanned, per-sub-task times and merge time (engine `parallel` only; else 400).

    The response names the `data_version` (event table snapshot) the result was computed on and
    the time spent in each step. Errors: 400 names the offending field (`query.` + the path
    inside the query), 401 without a valid key, 404 for a project this key cannot read, 504 when
    the deadline (`timeout`, default 30 s) passes.
    """
    project = access.project
    query = apply_filters_override(body.query, body.filters_override)
    if is_actors_query(query):
        return await _actors(project, query, body, service)
    try:
        outcome = await service.run(
            project.id,
            query,
            engine=body.engine,
            timeout=body.timeout,
            refresh=body.refresh,
            explain=explain,
        )
    except InvalidQuery as exc:
        # Field paths from the query model are relative to the query object; the API names
        # fields relative to the request body.
        if exc.field not in ("engine", "timeout", "query", "explain", "refresh"):
            exc.field = f"query.{exc.field}" if exc.field else "query"
        raise
    computed = datetime.fromtimestamp(outcome.computed_at, UTC).isoformat()
    return JSONBytes(
        {
            # Without a result cache (cache_backend = off) every answer is computed now.
            "is_cached": False,
            "last_refresh": computed,
            "next_allowed_client_refresh": computed,
            "cache_key": outcome.fingerprint,
            "query_status": None,
            **outcome.to_dict(),
            "timezone": project.timezone,
            "client_query_id": body.client_query_id,
        }
    )


async def _actors(
    project: Project, query: Any, body: QueryRequest, service: QueryService
) -> Response:
    """An ActorsQuery (eventlens.query.actors): the persons behind a number, or the list."""
    try:
        answer = await run_actors_query(
            service, project.id, query, engine=body.engine, timeout=body.timeout
        )
    except InvalidQuery as exc:
        if exc.field not in ("engine", "timeout", "query", "refresh"):
            exc.field = f"query.{exc.field}" if exc.field else "query"
        raise
    computed = datetime.now(UTC).isoformat()
    return JSONBytes(
        {
            # The envelope of every query answer (actors lists are computed per request).
            "is_cached": False,
            "last_refresh": computed,
            "next_allowed_client_refresh": computed,
            "cache_key": answer["fingerprint"],
            "query_status": None,
            **answer,
            "timezone": project.timezone,
            "client_query_id": body.client_query_id,
        }
    )


@router.get(
    "/projects/{project_id}/query/{query_id}",
    response_model=QueryStatusResponse,
    responses={k: ERROR_RESPONSES[k] for k in (401, 404)},
)
def query_status(
    project_id: ProjectId,
    query_id: Annotated[str, Path(max_length=64, pattern="^[0-9a-f]{1,64}$")],
    access: Annotated[ProjectAccess, Depends(Readable)],
    service: Annotated[QueryService, Depends(query_service)],
) -> Response:
    """The status of a background refresh (PostHog's `GET .../query/{query_id}`): the
    `query_status.id` an async refresh mode answered. `complete` turns true when it ends;
    `results` then hold the answer and `data_version` its version, or `error` says why not.
    404 for an unknown or expired id, or one of another project."""
    project = access.project
    status = None if service.cache is None else service.cache.status(query_id)
    if status is None or status.team_id != project.id:
        raise NotFound(f"no query status {query_id!r} in project {project.id}")
    return JSONBytes({"query_status": status.to_json()})

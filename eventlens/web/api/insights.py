"""Saved insights and dashboards: CRUD under /api/projects/{id}/{insights,dashboards}.

Same authentication as the query API (401 without a valid key, 404 for a project the key cannot
read); a saved query is validated with the query model, so a bad one is a 400 naming the field
(`query.` + its path) and is never stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from eventlens.accounts.policy import Permission
from eventlens.dashboards.store import DashboardStore
from eventlens.errors import InvalidQuery
from eventlens.projects.store import Project
from eventlens.query import parse_query
from eventlens.query.in_project import normalise_in_project
from eventlens.query.model import MAX_FILTERS, PropertyFilter
from eventlens.query.service import QueryService
from eventlens.web.api.schemas import (
    ERROR_RESPONSES,
    MAX_ID,
    DashboardId,
    InsightId,
    ProjectId,
)
from eventlens.web.auth import ProjectAccess, project_permission
from eventlens.web.deps import dashboard_store, query_service

router = APIRouter(prefix="/api/projects/{project_id}", tags=["dashboards"])
MAX_TILES = 100

InsightIds = Annotated[list[Annotated[int, Field(ge=1, le=MAX_ID)]], Field(max_length=MAX_TILES)]
Reader = Annotated[ProjectAccess, Depends(project_permission(Permission.INSIGHT_READ))]
Writer = Annotated[ProjectAccess, Depends(project_permission(Permission.INSIGHT_WRITE))]
_ERRORS: dict[int | str, dict[str, Any]] = {k: ERROR_RESPONSES[k] for k in (400, 401, 404)}


Store = Annotated[DashboardStore, Depends(dashboard_store)]
Queries = Annotated[QueryService, Depends(query_service)]


class InsightBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="Shown as the tile title.", max_length=200)
    query: dict[str, Any] = Field(description="The query, as sent to POST .../query.")


class InsightPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200)
    query: dict[str, Any] | None = None


class DashboardBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200)
    insight_ids: InsightIds = Field(default_factory=list, description="Tiles, in order.")


class TileLayout(BaseModel):
    model_config = ConfigDict(extra="forbid")
    w: int = Field(1, ge=1, le=2, description="Grid columns the tile spans.")
    h: int = Field(1, ge=1, le=2, description="Tile height: 1 normal, 2 tall.")


class DashboardFilters(BaseModel):
    """The dashboard filters saved with a dashboard: what the page sends as every tile's
    `filters_override` (PostHog's DashboardFilter, the keys this dashboard uses)."""

    model_config = ConfigDict(extra="forbid")
    date_from: str | None = Field(None, max_length=64, description='e.g. "-7d".')
    date_to: str | None = Field(None, max_length=64)
    properties: Annotated[list[PropertyFilter], Field(max_length=MAX_FILTERS)] | None = Field(
        None, description="Property filters ANDed with every tile's own filters."
    )


class DashboardPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200)
    insight_ids: InsightIds | None = None
    layouts: Annotated[dict[str, TileLayout], Field(max_length=MAX_TILES)] | None = Field(
        None, description='Tile sizes by insight id: {"7": {"w": 2, "h": 1}} (replaces them).'
    )
    filters: DashboardFilters | None = Field(
        None, description="Dashboard filters applied to every tile (replaces them; {} clears)."
    )


def _validated(query: dict[str, Any], project: Project, queries: QueryService) -> dict[str, Any]:
    """The query, if it would run now in this project: parsed, and its dates resolved in the
    project's calendar (so a date outside the supported range, or a cohort the project does not
    have, is refused here as on /query)."""
    try:
        normalise_in_project(parse_query(query), project, queries.cohorts.store, datetime.now(UTC))
    except InvalidQuery as exc:
        exc.field = f"query.{exc.field}" if exc.field else "query"
        raise
    return query


def _validated_filters(
    filters: DashboardFilters, project: Project, queries: QueryService
) -> dict[str, Any]:
    """The filters as stored (unset keys dropped), if a tile query would run with them now:
    the dates and filter values are checked as /query checks them, so a saved dashboard never
    holds filters that make every tile a 400. InvalidQuery names the field `filters.<key>...`."""
    out = filters.model_dump(exclude_none=True, exclude_unset=True)
    probe: dict[str, Any] = {
        "kind": "TrendsQuery",
        "series": [{"kind": "EventsNode"}],
        "dateRange": {k: out[k] for k in ("date_from", "date_to") if k in out},
        "properties": out.get("properties", []),
    }
    try:
        normalise_in_project(parse_query(probe), project, queries.cohorts.store, datetime.now(UTC))
    except InvalidQuery as exc:
        where = exc.field or ""
        where = where.removeprefix("dateRange.")
        exc.field = f"filters.{where}" if where else "filters"
        raise
    return out


@router.get("/insights", responses=_ERRORS)
def list_insights(project_id: ProjectId, access: Reader, store: Store) -> Any:
    """The project's saved insights, oldest first."""
    pid = access.project.id
    return [i.to_dict() for i in store.list_insights(pid)]


@router.post("/insights", status_code=201, responses=_ERRORS)
def create_insight(
    project_id: ProjectId, body: InsightBody, access: Writer, store: Store, queries: Queries
) -> Any:
    """Save a query under a name (400 if the query is invalid)."""
    project = access.project
    query = _validated(body.query, project, queries)
    return store.create_insight(project.id, body.name, query).to_dict()


@router.get("/insights/{insight_id}", responses=_ERRORS)
def get_insight(project_id: ProjectId, insight_id: InsightId, access: Reader, store: Store) -> Any:
    """One saved insight (404 if it is not this project's)."""
    return store.get_insight(access.project.id, insight_id).to_dict()


@router.patch("/insights/{insight_id}", responses=_ERRORS)
def update_insight(
    project_id: ProjectId,
    insight_id: InsightId,
    body: InsightPatch,
    access: Writer,
    store: Store,
    queries: Queries,
) -> Any:
    """Rename it and/or replace its query."""
    project = access.project
    query = None if body.query is None else _validated(body.query, project, queries)
    return store.update_insight(project.id, insight_id, name=body.name, query=query).to_dict()


@router.delete("/insights/{insight_id}", status_code=204, responses=_ERRORS)
def delete_insight(
    project_id: ProjectId, insight_id: InsightId, access: Writer, store: Store
) -> Response:
    """Delete it (and take it off every dashboard)."""
    store.delete_insight(access.project.id, insight_id)
    return Response(status_code=204)


@router.get("/dashboards", responses=_ERRORS)
def list_dashboards(project_id: ProjectId, access: Reader, store: Store) -> Any:
    """The project's dashboards, oldest first."""
    return [d.to_dict() for d in store.list_dashboards(access.project.id)]


@router.post("/dashboards", status_code=201, responses=_ERRORS)
def create_dashboard(
    project_id: ProjectId, body: DashboardBody, access: Writer, store: Store
) -> Any:
    """A new dashboard of saved insights (400 if an id is not one of the project's)."""
    pid = access.project.id
    return store.create_dashboard(pid, body.name, body.insight_ids).to_dict()


@router.get("/dashboards/{dashboard_id}", responses=_ERRORS)
def get_dashboard(
    project_id: ProjectId, dashboard_id: DashboardId, access: Reader, store: Store
) -> Any:
    """The dashboard with its insights expanded in tile order (`insights`)."""
    pid = access.project.id
    dash = store.get_dashboard(pid, dashboard_id)
    return {
        **dash.to_dict(),
        "insights": [store.get_insight(pid, i).to_dict() for i in dash.insight_ids],
    }


@router.patch("/dashboards/{dashboard_id}", responses=_ERRORS)
def update_dashboard(
    project_id: ProjectId,
    dashboard_id: DashboardId,
    body: DashboardPatch,
    access: Writer,
    store: Store,
    queries: Queries,
) -> Any:
    """Rename it, replace its tiles (in order), their sizes and/or the dashboard filters."""
    pid = access.project.id
    layouts = None if body.layouts is None else {k: v.model_dump() for k, v in body.layouts.items()}
    filters = (
        None if body.filters is None else _validated_filters(body.filters, access.project, queries)
    )
    dash = store.update_dashboard(
        pid,
        dashboard_id,
        name=body.name,
        insight_ids=body.insight_ids,
        layouts=layouts,
        filters=filters,
    )
    return dash.to_dict()


@router.delete("/dashboards/{dashboard_id}", status_code=204, responses=_ERRORS)
def delete_dashboard(
    project_id: ProjectId, dashboard_id: DashboardId, access: Writer, store: Store
) -> Response:
    """Delete the dashboard (its insights stay saved)."""
    store.delete_dashboard(access.project.id, dashboard_id)
    return Response(status_code=204)

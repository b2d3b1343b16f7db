"""Request and response bodies of the JSON API, with the examples shown at /docs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# Ids are SQLite integers (signed 64 bits): a path id outside 1..MAX_ID is a 400 naming the
# parameter and the limit (docs/api.md "Limits"); an id inside it that is not there is a 404.
MAX_ID = 2**63 - 1
ProjectId = Annotated[
    int, Path(ge=1, le=MAX_ID, description="Project id (from `eventlens project list`).")
]
InsightId = Annotated[int, Path(ge=1, le=MAX_ID, description="Saved insight id.")]
DashboardId = Annotated[int, Path(ge=1, le=MAX_ID, description="Dashboard id.")]

TRENDS_EXAMPLE: dict[str, Any] = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}],
    "dateRange": {"date_from": "-7d"},
    "interval": "day",
}
FUNNEL_EXAMPLE: dict[str, Any] = {
    "kind": "FunnelsQuery",
    "series": [
        {"kind": "EventsNode", "event": "$pageview"},
        {"kind": "EventsNode", "event": "signup"},
    ],
    "dateRange": {"date_from": "-30d"},
    "funnelsFilter": {"funnelWindowInterval": 14, "funnelWindowIntervalUnit": "day"},
}
RETENTION_EXAMPLE: dict[str, Any] = {
    "kind": "RetentionQuery",
    "retentionFilter": {
        "targetEntity": {"id": "signup", "type": "events"},
        "returningEntity": {"id": "$pageview", "type": "events"},
        "period": "Week",
        "totalIntervals": 8,
    },
}

QUERY_EXAMPLES: dict[str, Any] = {
    "trends": {
        "summary": "Daily active users, last 7 days",
        "value": {"query": TRENDS_EXAMPLE},
    },
    "funnel": {
        "summary": "Pageview -> signup funnel, 14-day window",
        "value": {"query": FUNNEL_EXAMPLE, "engine": "reference", "timeout": 60},
    },
    "retention": {
        "summary": "Weekly retention of signups",
        "value": {"query": RETENTION_EXAMPLE},
    },
}


REFRESH_MODES = (
    "blocking",
    "async",
    "async_except_on_cache_miss",
    "force_blocking",
    "force_async",
    "force_cache",
    "lazy_async",
)


def _check_refresh(value: object) -> object:
    # Checked before the union so that a bad value is one clear error at `refresh`.
    if isinstance(value, bool) or value in REFRESH_MODES:
        return value
    raise ValueError(f"refresh must be one of {', '.join(REFRESH_MODES)} or a boolean")


RefreshMode = Annotated[str | bool, BeforeValidator(_check_refresh)]


class QueryRequest(BaseModel):
    """Body of POST /api/projects/{project_id}/query: EventLens's fields and PostHog's
    QueryRequest envelope."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    query: dict[str, Any] = Field(
        description="An insight query in PostHog's query schema (TrendsQuery, FunnelsQuery, "
        "RetentionQuery, StickinessQuery, LifecycleQuery, PathsQuery), or an ActorsQuery (the "
        "persons behind one number of an insight, or the persons list; docs/api.md). "
        "Unsupported fields are a 400.",
    )
    engine: str = Field(
        "parallel",
        description='Engine that computes the result: "parallel" (default) or "reference".',
    )
    refresh: RefreshMode = Field(
        "blocking",
        description="PostHog's refresh mode (or its legacy boolean: true = force_blocking, "
        "false = force_cache). Freshness is by data version: `blocking` serves the cached "
        "answer when it is at the current version, else computes now (incrementally); "
        "`async` / `lazy_async` serve the last answer and refresh in the background "
        "(`query_status` to poll); `force_blocking` computes from scratch; `force_cache` "
        'never computes. docs/api.md "Refresh modes".',
    )
    client_query_id: str | None = Field(
        None,
        max_length=200,
        description="The client's id for this query (PostHog); echoed in the response.",
    )
    filters_override: dict[str, Any] | None = Field(
        None,
        description="PostHog's DashboardFilter applied to the query: date_from, date_to, "
        "explicitDate, properties (ANDed), breakdown_filter. Anything else: 400.",
    )
    variables_override: dict[str, Any] | None = Field(
        None,
        description="PostHog's HogQL variable values; insight queries have no variables, so "
        "they are accepted and have no effect.",
    )
    name: str | None = Field(None, max_length=128, description="PostHog's query name (ignored).")
    limit_context: Literal["posthog_ai"] | None = Field(
        None, description="PostHog's limit context (ignored: no result-size limits here)."
    )
    async_: bool | None = Field(
        None, alias="async", description="PostHog's deprecated `async` flag (no effect)."
    )
    timeout: float | None = Field(
        None,
        description="Deadline in seconds (default: the server's query_timeout, 30 s; at most "
        "its query_max_timeout, 300 s). Past it the answer is a 504.",
    )


class QueryStatus(BaseModel):
    """PostHog's QueryStatus of a background refresh."""

    id: str = Field(description="What `GET /api/projects/{id}/query/{query_id}` polls.")
    team_id: int = Field(description="The project id.")
    cache_key: str
    query_async: bool
    complete: bool
    error: bool
    error_message: str | None = None
    results: Any = Field(None, description="The refreshed answer once complete.")
    data_version: int | None = Field(None, description="The version the refresh computed.")
    start_time: str | None = None
    end_time: str | None = None
    pickup_time: str | None = None
    expiration_time: str | None = None
    query_progress: None = None
    labels: list[str] = Field(default_factory=list)


class QueryStatusResponse(BaseModel):
    """Answer of GET /api/projects/{project_id}/query/{query_id}."""

    query_status: QueryStatus


class CacheInfo(BaseModel):
    """How the result cache answered."""

    result: str = Field(description="hit, miss, incremental, coalesced or stale.")
    subtasks_reused: int = Field(description="Sub-task partials reused by this computation.")
    subtasks_computed: int = Field(description="Sub-tasks this computation ran.")


class QueryResponse(BaseModel):
    """Result of a query, with the data version it was computed on."""

    results: Any = Field(
        description="Results in PostHog's shape for the query kind; null on a force_cache "
        "miss or an async mode's first request (then poll `query_status.id`)."
    )
    data_version: int | None = Field(
        description="Event table version (a snapshot) the answer is true at."
    )
    current_data_version: int | None = Field(
        None, description="The table's version when the request arrived (cache on)."
    )
    versions_behind: int | None = Field(
        None, description="current_data_version - data_version: 0 = fresh (cache on)."
    )
    cache: CacheInfo | None = Field(None, description="How the cache answered (cache on).")
    engine: str
    kind: str = Field(description="The query kind, e.g. TrendsQuery.")
    fingerprint: str = Field(description="sha256 of the normalised query (cache key).")
    timings: dict[str, float] = Field(
        description="Milliseconds: parse_ms, plan_ms, then queue_ms and execute_ms (cache off) "
        "or cache_ms (serving through the result cache, computing included), total_ms."
    )
    # PostHog's cached-query response fields (CachedQueryResponseMixin).
    is_cached: bool = Field(description="Served from the result cache (not computed for it).")
    last_refresh: str | None = Field(
        description="When the answer was computed (ISO 8601, UTC); null without an answer."
    )
    next_allowed_client_refresh: str | None = Field(
        description="Same as last_refresh: freshness is by data version, so a refresh is "
        "worth asking for as soon as the table has a newer version."
    )
    cache_key: str = Field(description="The answer's cache key (the fingerprint, cache off).")
    timezone: str = Field(description="The project timezone the query was resolved in.")
    query_status: QueryStatus | None = Field(
        None,
        description="The background refresh (async modes) to poll, or a failed refresh's "
        "error while the last good answer is served; else null.",
    )
    client_query_id: str | None = Field(None, description="Echo of the request's id.")


class ErrorBody(BaseModel):
    """Every 4xx/503/504 error (`EventLensError.to_dict`): the error class, a message saying
    what and where, the field if any, and the error's details (`limit_bytes`, `allowed`,
    `errors`...)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["InvalidQuery"])
    detail: str = Field(examples=["unknown operator 'contains'"])
    field: str | None = Field(None, examples=["query.series[0].properties[0].operator"])
    errors: list[dict[str, str]] | None = Field(
        None, description="Request validation errors: every one, as `{field, detail}`."
    )


class InternalErrorBody(BaseModel):
    """A 500: the type, a fixed detail and the id under which the server log has the cause."""

    type: str = Field(json_schema_extra={"enum": ["InternalError", "ExecutionError"]})
    detail: str
    error_id: str = Field(pattern="^[0-9a-f]{32}$", description="Find it in the server log.")


class ProjectInfo(BaseModel):
    id: int
    name: str
    timezone: str
    week_start: int = Field(description="0 = weeks start on Sunday, 1 = Monday.")
    test_account_filters: list[Any] = Field(
        default_factory=list,
        description="Property filters a query with filterTestAccounts: true is also filtered by "
        "(PostHog's team.test_account_filters; set with `eventlens project "
        "set-test-account-filters`).",
    )
    path_cleaning_filters: list[Any] = Field(
        default_factory=list,
        description="Path cleaning rules [{alias, regex}] a paths query with pathReplacements: "
        "true applies before its own (PostHog's team.path_cleaning_filters; set with "
        "`eventlens project set-path-cleaning`).",
    )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Invalid request or query (names the field)."},
    401: {"model": ErrorBody, "description": "Missing, malformed or unknown API key."},
    404: {"model": ErrorBody, "description": "No such project readable with this key."},
    503: {"model": ErrorBody, "description": "Too many queries waiting: retry shortly."},
    504: {"model": ErrorBody, "description": "The query passed its deadline."},
}

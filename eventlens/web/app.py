"""The ASGI application: capture endpoints, the JSON API, metrics, health."""

from __future__ import annotations

import gc
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from eventlens import __version__
from eventlens.config import Settings
from eventlens.errors import EventLensError
from eventlens.observability.logging import get_logger
from eventlens.observability.metrics import REGISTRY
from eventlens.query.warmup import warm_resident
from eventlens.runtime import build_runtime
from eventlens.web import api, dashboard, openapi
from eventlens.web.api import accounts, catalog, cohorts, insights, live, persons
from eventlens.web.api import shadow as shadow_api
from eventlens.web.capture_routes import capture_routes
from eventlens.web.deps import ingest_health
from eventlens.web.errors import CatchAll, handle_eventlens_error, handle_http_exception

log = get_logger(__name__)
WARM_JOIN_SECONDS = 30.0


def create_app(settings: Settings) -> FastAPI:
    """Build the app; the runtime (log writer, consumer) starts in the lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = build_runtime(settings)
        app.state.runtime = runtime  # read only through eventlens.web.deps
        runtime.start()
        stop_warming = threading.Event()
        warming: threading.Thread | None = None
        if settings.query_warm:
            warming = threading.Thread(
                target=warm_resident,
                args=(settings, runtime.metadata, stop_warming),
                name="eventlens-warm",
                daemon=True,
            )
            warming.start()
        # What exists now lives as long as the server: freeze it out of the cyclic GC's view
        # so collections on the capture hot path scan only per-request garbage (4% of capture
        # CPU in a profile).
        gc.collect()
        gc.freeze()
        log.info("server.start", data_dir=str(settings.data_dir), version=__version__)
        try:
            yield
        finally:
            stop_warming.set()
            if warming is not None:
                # Let a project's warm-up finish rather than exit with the thread in native code
                # (that crashed the process at exit); bounded, so a stop never hangs on it.
                warming.join(timeout=WARM_JOIN_SECONDS)
            runtime.close()
            log.info("server.stop")

    # FastAPI's own OpenTelemetry instrumentation makes the SERVER span of every request (named
    # `METHOD /route`, continuing an incoming traceparent) once eventlens.observability.tracing
    # has set the global tracer provider; without one it passes requests straight through.
    # Metrics stay Prometheus's and logs structlog's.
    app = FastAPI(
        title="EventLens",
        version=__version__,
        lifespan=lifespan,
        telemetry={"metrics": False, "logs": False},
    )
    app.add_exception_handler(EventLensError, handle_eventlens_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
    app.add_middleware(CatchAll)  # any other exception: a JSON 500 with an error id in the log
    app.router.routes.extend(capture_routes())
    api.install(app)  # /api/...: projects and queries (API key auth), 400 for bad requests
    app.include_router(accounts.router)  # login, account, members, keys (docs/api.md)
    app.include_router(shadow_api.router)  # GET /api/shadow/report (docs/shadow-mode.md)
    app.include_router(persons.router)  # GET /api/projects/{id}/persons/{person_id}[/events]
    # The web dashboard: its small API (catalog, saved insights/dashboards, live events), page.
    for dashboard_router in (catalog.router, insights.router, live.router, cohorts.router):
        app.include_router(dashboard_router)
    dashboard.install(app)

    @app.get("/_health", include_in_schema=False)
    async def health(request: Request) -> JSONResponse:
        """Liveness: 503 only when the consumer is dead for good; the body has every check."""
        h = ingest_health(request)
        return JSONResponse({**h.body(), "version": __version__}, 200 if h.live else 503)

    @app.get("/_ready", include_in_schema=False)
    async def ready(request: Request) -> JSONResponse:
        """Readiness: 503 with the reasons when the consumer, the lag or the disk is not ok."""
        h = ingest_health(request)
        return JSONResponse({**h.body(), "version": __version__}, 200 if h.ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    openapi.install(app)  # /openapi.json: every route, every status (docs/api.md)
    return app

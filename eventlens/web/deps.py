"""The FastAPI dependencies of the web layer: the one module that reads the app's runtime.

Handlers declare what they need (`Depends(query_service)`, `Depends(project_permission(...))`, ...)
and get the services `eventlens.runtime.build_runtime` created at startup; none of them reaches
into `request.app.state`. Each function takes the request, so the Starlette capture routes and
the validation handler can call them directly too.
"""

from __future__ import annotations

from starlette.requests import Request

from eventlens.accounts.service import AccountService
from eventlens.capture.service import CaptureService
from eventlens.config import Settings
from eventlens.dashboards.store import DashboardStore
from eventlens.ingest.health import Health
from eventlens.projects.store import MetadataStore
from eventlens.query.service import QueryService
from eventlens.runtime import Runtime
from eventlens.shadow.store import ShadowStore

__all__ = [
    "account_service",
    "capture_service",
    "dashboard_store",
    "ingest_health",
    "metadata_store",
    "query_service",
    "runtime_of",
    "settings_of",
    "shadow_store",
]


def runtime_of(request: Request) -> Runtime:
    """The server's runtime, set by the app's lifespan (`eventlens.web.app`)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def settings_of(request: Request) -> Settings:
    """The server's settings."""
    return runtime_of(request).settings


def metadata_store(request: Request) -> MetadataStore:
    """Projects and API-key hashes."""
    return runtime_of(request).metadata


def capture_service(request: Request) -> CaptureService:
    """Token -> project, parsed body -> durable log record."""
    return runtime_of(request).capture


def query_service(request: Request) -> QueryService:
    """The process's QueryService (it owns the query worker threads)."""
    return runtime_of(request).queries


def dashboard_store(request: Request) -> DashboardStore:
    """Saved insights and dashboards (settings.meta_db)."""
    return runtime_of(request).dashboards


def shadow_store(request: Request) -> ShadowStore:
    """The shadow-mode records the report reads (`<data_dir>/shadow.db`)."""
    return runtime_of(request).shadow_records


def ingest_health(request: Request) -> Health:
    """The ingest pipeline's health now (consumer, lag, disk), for `/_health` and `/_ready`."""
    return runtime_of(request).health()


def account_service(request: Request) -> AccountService:
    """Users, organisations, sessions, personal keys (eventlens.accounts)."""
    return runtime_of(request).accounts

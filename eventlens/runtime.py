"""The composition root: every long-lived service of a running server, built in one place.

`build_runtime` creates them all, once, in dependency order (metadata store, ingest log,
consumer supervisor, capture, queries, saved dashboards, shadow records); `Runtime.start`
starts what runs in the background (the log's group-commit writer, the consumer process) and
`Runtime.close` stops everything in reverse. HTTP handlers get these services through the
FastAPI dependencies in `eventlens.web.deps`, never by reaching into the app's state.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Protocol

from eventlens.accounts.service import AccountService
from eventlens.accounts.store import AccountStore
from eventlens.accounts.throttle import LoginThrottle
from eventlens.capture.service import CaptureService
from eventlens.config import Settings
from eventlens.dashboards.store import DashboardStore
from eventlens.ingest.health import Health
from eventlens.ingest.health import check as check_health
from eventlens.ingest.log import IngestLog
from eventlens.ingest.supervisor import ConsumerSupervisor
from eventlens.projects.store import SqliteMetadataStore
from eventlens.query.service import QueryService
from eventlens.shadow.store import ShadowStore
from eventlens.shadow.wiring import build_query_service
from eventlens.storage import format as data_format

__all__ = ["IngestSink", "Runtime", "build_runtime"]


class IngestSink(Protocol):
    """What the runtime needs of the ingest log: `IngestLog`, or a test's in-memory stand-in."""

    async def append(self, payload: bytes) -> int: ...

    def start(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class Runtime:
    """The server's services. Built by `build_runtime`; fields are never reassigned."""

    settings: Settings
    metadata: SqliteMetadataStore
    log: IngestSink
    consumer: ConsumerSupervisor
    capture: CaptureService
    queries: QueryService
    dashboards: DashboardStore
    shadow_records: ShadowStore  # what GET /api/shadow/report reads
    accounts: AccountService  # users, organisations, sessions, personal keys
    # Wall-clock seconds: readiness gives a consumer that has not reported yet a grace period.
    started_at: float = field(default_factory=time.time)

    def health(self) -> Health:
        """Ingest health now: the consumer, the lag and the disk (`/_health`, `/_ready`)."""
        return check_health(self.settings, self.consumer, self.started_at)

    def start(self) -> None:
        """Start the ingest log's writer and the consumer process (the server's lifespan)."""
        self.log.start()
        self.consumer.start()

    def close(self) -> None:
        """Stop in reverse order of dependency: the consumer before the log it reads, the
        stores last. Safe whether or not `start` ran."""
        self.consumer.close()
        self.log.close()
        self.queries.close()
        self.dashboards.close()
        self.shadow_records.close()
        self.accounts.store.close()
        self.metadata.close()


def build_runtime(settings: Settings, *, log: IngestSink | None = None) -> Runtime:
    """All services for `settings`, created once; nothing is started (see `Runtime.start`).

    `log` replaces the ingest log (tests that exercise capture without the disk log). Raises
    `Unavailable` when another process holds the ingest log; whatever was opened is closed.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    data_format.ensure_current(settings.data_dir)  # IncompatibleDataFormat: newer or older
    with ExitStack() as undo:
        metadata = SqliteMetadataStore(settings.meta_db)
        undo.callback(metadata.close)
        if log is None:
            log = IngestLog(settings.log_dir, fsync=settings.fsync)
            undo.callback(log.close)
        sink = log
        dashboards = DashboardStore(settings.meta_db)
        undo.callback(dashboards.close)
        shadow_records = ShadowStore(
            settings.data_dir / "shadow.db", max_result_bytes=settings.shadow_max_result_bytes
        )
        undo.callback(shadow_records.close)
        account_store = AccountStore(settings.meta_db)
        undo.callback(account_store.close)
        accounts = AccountService(
            account_store,
            metadata,
            LoginThrottle(settings.login_max_failures, settings.login_window),
            idle_timeout=settings.session_idle_timeout,
            max_age=settings.session_max_age,
        )
        runtime = Runtime(
            settings=settings,
            metadata=metadata,
            log=sink,
            consumer=ConsumerSupervisor(settings),
            capture=CaptureService(
                metadata,
                lambda: sink,
                rate_limit=settings.capture_rate_limit,
                fault_error_rate=settings.fault_capture_error_rate,
            ),
            queries=build_query_service(settings, metadata),
            dashboards=dashboards,
            shadow_records=shadow_records,
            accounts=accounts,
        )
        undo.pop_all()  # built: from here on `Runtime.close` owns them
    return runtime

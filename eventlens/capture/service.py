"""Capture service: token -> project, parsed body -> one durable ingest-log record.

The HTTP layer (web/capture_routes.py) decodes and parses; this module resolves the project
and acknowledges only after `IngestLog.append` has made the record durable (capture.md
"Durability"): an acknowledged event is never lost.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from eventlens.capture.model import encode_log_record
from eventlens.capture.posthog import ParsedBody
from eventlens.capture.ratelimit import ProjectRateLimiter
from eventlens.errors import AuthenticationError, Unavailable
from eventlens.observability import tracing
from eventlens.observability.metrics import capture_events, ingest_ack_seconds
from eventlens.projects.store import Project


class ProjectLookup(Protocol):
    def project_by_token(self, token: str) -> Project | None: ...


class AppendLog(Protocol):
    async def append(self, payload: bytes) -> int: ...


@dataclass(frozen=True, slots=True)
class CaptureResult:
    project_id: int
    accepted: int
    rejected: list[dict[str, Any]]  # [{"index": i, "reason": "..."}] for the response


class TokenCache:
    """Token -> Project, cached in memory.

    A miss always asks the store (a project created while the server runs works at once);
    unknown tokens are remembered for `negative_ttl` seconds so a flood of bad tokens costs one
    SQLite query per token per TTL, not one per request.
    """

    def __init__(
        self, store: ProjectLookup, *, negative_ttl: float = 2.0, max_negative: int = 10_000
    ) -> None:
        self._store = store
        self._known: dict[str, Project] = {}
        self._unknown: dict[str, float] = {}
        self._negative_ttl = negative_ttl
        self._max_negative = max_negative

    def lookup(self, token: str) -> Project | None:
        project = self._known.get(token)
        if project is not None:
            return project
        now = time.monotonic()
        expires = self._unknown.get(token)
        if expires is not None and expires > now:
            return None
        project = self._store.project_by_token(token)
        if project is None:
            if len(self._unknown) >= self._max_negative:
                self._unknown.clear()
            self._unknown[token] = now + self._negative_ttl
            return None
        self._unknown.pop(token, None)
        self._known[token] = project
        return project


class CaptureService:
    """Turns a parsed capture body into a durable log record. One per server, built by
    `eventlens.runtime.build_runtime`."""

    def __init__(
        self,
        metadata: ProjectLookup,
        log_provider: Callable[[], AppendLog | None],
        rate_limit: float = 0.0,
        fault_error_rate: float = 0.0,
    ) -> None:
        self.tokens = TokenCache(metadata)
        # Test-only fault injection (settings.fault_capture_error_rate): share answered 503.
        self.fault_error_rate = fault_error_rate
        self.limiter = ProjectRateLimiter(rate_limit)
        # A provider, not the log itself: the ingest log may start after this service exists.
        self._log_provider = log_provider

    def project_for(self, token: str | None) -> Project:
        """The project of `token`; `AuthenticationError` (401) when missing or unknown."""
        if token is None:
            raise AuthenticationError(
                "no project token: send api_key/token in the body, or token in each event",
                field="token",
            )
        project = self.tokens.lookup(token)
        if project is None:
            shown = token if len(token) <= 16 else token[:12] + "..."
            raise AuthenticationError(f"unknown project token {shown!r}", field="token")
        return project

    async def submit(
        self, parsed: ParsedBody, *, received_at_us: int, started: float | None = None
    ) -> CaptureResult:
        """Append accepted events and dead letters as one log record; return after fsync.

        `started` (time.perf_counter) is when the body was received, for the ack histogram.
        Raises `AuthenticationError` (401), `RateLimited` (429: nothing was written) and
        `Unavailable` (503: not durable, client retries).
        """
        project = self.project_for(parsed.token)
        self.limiter.check(project.id, len(parsed.events) + len(parsed.dead))
        log = self._log_provider()
        if log is None:
            raise Unavailable("the ingest log is not running; retry later")
        if self.fault_error_rate and random.random() < self.fault_error_rate:
            raise Unavailable("injected fault (fault_capture_error_rate): nothing was written")
        record = encode_log_record(
            project.id,
            received_at_us,
            parsed.events,
            parsed.dead,
            tracing.current_traceparent(),  # the consumer's commit span links back to it
        )
        try:
            with tracing.span(
                "ingest.log.append",
                {"eventlens.project_id": project.id, "eventlens.bytes": len(record)},
            ):
                await log.append(record)
        except OSError as exc:
            # Whatever the disk said, the record is not durable: 503 so the client retries.
            raise Unavailable(f"could not write the ingest log: {exc}") from exc
        if started is not None:
            ingest_ack_seconds.observe(time.perf_counter() - started)
        if parsed.events:
            capture_events.labels("accepted").inc(len(parsed.events))
        if parsed.dead:
            capture_events.labels("rejected").inc(len(parsed.dead))
        return CaptureResult(
            project_id=project.id,
            accepted=len(parsed.events),
            rejected=[{"index": d.index, "reason": d.reason} for d in parsed.dead],
        )

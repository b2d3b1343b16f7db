"""The one place that maps the error tree (`eventlens.errors`) to HTTP answers.

Our errors answer `{"type", "detail", "field"?...}` with their status. A 500 never shows its
message: an ExecutionError (a query sub-task failed) or any other exception (`InternalError`,
a bug) answers a fixed detail and an `error_id`; the message and traceback are in the JSON log
line `http.internal_error` under the same id. `CatchAll` makes sure no exception leaves the app
as the framework's plain-text 500.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventlens import errors
from eventlens.observability import tracing
from eventlens.observability.logging import get_logger

log = get_logger(__name__)

INTERNAL_DETAIL = "internal error"
EXECUTION_DETAIL = "the query failed while running; the server log has the cause under error_id"

# Order matters: the first matching class wins, so subclasses come before their bases.
_STATUS: tuple[tuple[type[errors.EventLensError], int], ...] = (
    (errors.InvalidInput, 400),
    (errors.AuthenticationError, 401),
    (errors.PermissionDenied, 403),
    (errors.NotFound, 404),
    (errors.MethodNotAllowed, 405),
    (errors.PayloadTooLarge, 413),
    (errors.RateLimited, 429),
    (errors.ExecutionError, 500),
    (errors.InternalError, 500),
    (errors.Unavailable, 503),
    (errors.QueryTimeout, 504),
)


def status_for(exc: errors.EventLensError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def internal_response(exc: BaseException, request: Request | None = None) -> Response:
    """The 500 for an ExecutionError or any exception that is not ours: type, fixed detail and
    a fresh error_id; the exception (message, traceback) is logged under that id. With tracing
    on, the body also has the request's `trace_id` (the log line has it too)."""
    error_id = uuid.uuid4().hex
    where: dict[str, Any] = {}
    if request is not None:
        where = {"method": request.method, "path": request.url.path}
    log.error(
        "http.internal_error",
        error_id=error_id,
        error_type=type(exc).__name__,
        error=str(exc),
        **where,
        exc_info=exc,
    )
    if isinstance(exc, errors.ExecutionError):
        body = {"type": "ExecutionError", "detail": EXECUTION_DETAIL, "error_id": error_id}
    else:
        body = {"type": "InternalError", "detail": INTERNAL_DETAIL, "error_id": error_id}
    trace_id = tracing.current_trace_id()
    if trace_id is not None:
        body["trace_id"] = trace_id
    return JSONResponse(body, status_code=500)


def error_response(exc: errors.EventLensError, request: Request | None = None) -> Response:
    """JSON body `{"type", "detail", "field"?...}` with the mapped status (and Retry-After);
    for a 500, `internal_response` (no message, an error id)."""
    if status_for(exc) == 500:
        return internal_response(exc, request)
    headers: dict[str, str] = {}
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return JSONResponse(exc.to_dict(), status_code=status_for(exc), headers=headers)


async def handle_eventlens_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.EventLensError)
    return error_response(exc, request)


class CatchAll:
    """ASGI middleware: an exception no handler took becomes `internal_response` (JSON, error
    id logged) instead of the framework's plain-text 500. If the response had already started
    (a stream), it cannot be replaced: logged, then re-raised so the connection is cut."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                log.error("http.error_after_response_started", exc_info=exc)
                raise
            await internal_response(exc, Request(scope))(scope, receive, send)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Framework 404/405 (unknown path, wrong method) in our JSON error shape."""
    from starlette.exceptions import HTTPException

    assert isinstance(exc, HTTPException)
    where = f"{request.method} {request.url.path}"
    mapped: errors.EventLensError
    if exc.status_code == 404 and exc.detail in (None, "Not Found"):
        mapped = errors.NotFound(f"no such endpoint: {where}", field="path")
    elif exc.status_code == 405:
        mapped = errors.MethodNotAllowed(f"method not allowed: {where}", field="method")
    else:
        return JSONResponse(
            {"type": "HTTPException", "detail": exc.detail},
            status_code=exc.status_code,
            headers=dict(exc.headers or {}),
        )
    response = error_response(mapped)
    if exc.headers:
        response.headers.update(exc.headers)
    return response

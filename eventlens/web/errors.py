"""The one place that maps the error tree (`eventlens.errors`) to HTTP answers."""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from eventlens import errors

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
    (errors.Unavailable, 503),
    (errors.QueryTimeout, 504),
)


def status_for(exc: errors.EventLensError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_response(exc: errors.EventLensError) -> Response:
    """JSON body `{"type", "detail", "field"?...}` with the mapped status (and Retry-After)."""
    headers: dict[str, str] = {}
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return JSONResponse(exc.to_dict(), status_code=status_for(exc), headers=headers)


async def handle_eventlens_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.EventLensError)
    return error_response(exc)


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

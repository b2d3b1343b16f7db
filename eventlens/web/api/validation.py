"""FastAPI's own request validation errors, in the shape of every other error.

FastAPI answers 422 with a list of pydantic errors; EventLens answers every bad input with
400 `{"type", "detail", "field"}` (eventlens.web.errors), so clients handle one shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import Response

from eventlens.errors import EventLensError, InvalidInput
from eventlens.web.auth import PUBLIC_PATHS, authenticate
from eventlens.web.errors import error_response

_SOURCES = {"body", "query", "path", "header", "cookie"}


def field_path(loc: Sequence[Any]) -> str:
    """('body', 'query', 'series', 0, 'event') -> 'query.series[0].event'."""
    parts = list(loc)
    if parts and parts[0] in _SOURCES:
        parts = parts[1:]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or "body"


def _message(err: dict[str, Any], field: str) -> str:
    kind = err.get("type", "")
    if kind == "json_invalid":
        ctx = err.get("ctx") or {}
        return f"request body is not valid JSON: {ctx.get('error', err.get('msg', ''))}"
    if kind == "missing":
        return f"missing required field {field!r}"
    if kind == "extra_forbidden":
        return f"unsupported field {field!r}"
    return f"{field}: {err.get('msg', 'invalid value')}"


def to_invalid_input(exc: RequestValidationError) -> InvalidInput:
    """The first validation error as InvalidInput (field named); all of them under `errors`."""
    errors = list(exc.errors())
    if not errors:
        return InvalidInput("invalid request", field="body")
    fields = [field_path(e.get("loc", ())) for e in errors]
    if errors[0].get("type") == "json_invalid":
        fields[0] = "body"
    listed = [{"field": f, "detail": _message(e, f)} for f, e in zip(fields, errors, strict=True)]
    return InvalidInput(listed[0]["detail"], field=fields[0], errors=listed)


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    """400 for a malformed request, but authentication is judged first on the API: a caller
    without a valid key learns nothing from a validation message (always 401)."""
    assert isinstance(exc, RequestValidationError)
    if request.url.path.startswith("/api/") and request.url.path not in PUBLIC_PATHS:
        try:
            authenticate(request)
        except EventLensError as auth_error:
            return error_response(auth_error)
    return error_response(to_invalid_input(exc))

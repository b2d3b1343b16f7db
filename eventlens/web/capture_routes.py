"""Capture HTTP endpoints (PostHog and Segment wire), as plain Starlette routes for speed.

Every path answers every method itself so that a wrong method gets our JSON 405 (with
`Allow`) and CORS headers, rather than the framework's plain-text one. Errors go through
`web/errors.py`. Success is exactly 200 `{"status": 1}` (Segment: `{"success": true}`), plus
`"rejected"` when events were dead-lettered.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from eventlens.capture.decode import decode_body, parse_json_body
from eventlens.capture.posthog import ParsedBody, parse_posthog
from eventlens.capture.segment import parse_segment
from eventlens.errors import EventLensError, InvalidInput, MethodNotAllowed, PayloadTooLarge
from eventlens.observability.logging import get_logger
from eventlens.observability.metrics import capture_requests
from eventlens.web.deps import capture_service, settings_of
from eventlens.web.errors import error_response
from eventlens.web.sdk_assets import (
    SUPPORTED_COMPRESSION,
    array_config,
    array_config_js,
    decide,
    sdk_asset,
    sdk_paths,
)

log = get_logger(__name__)

POSTHOG_PATHS = ("/batch", "/e", "/i/v0/e", "/capture", "/track", "/engage")
SEGMENT_KINDS: dict[str, str | None] = {
    "/v1/batch": None,
    "/v1/track": "track",
    "/v1/identify": "identify",
    "/v1/page": "page",
    "/v1/screen": "screen",
    "/v1/group": "group",
    "/v1/alias": "alias",
}
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# Past the limit we keep reading (and discarding) up to this much, so that the client gets a
# clean 413 instead of a reset connection while it is still sending.
_DRAIN_CAP = 64 * 1024 * 1024

Handler = Callable[[Request], Awaitable[Response]]


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _cors(request: Request, response: Response) -> Response:
    origin = request.headers.get("origin")
    response.headers["Access-Control-Allow-Origin"] = origin or "*"
    if origin:
        # Browsers refuse "*" for credentialed requests; echoing the origin works for both.
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"
    return response


def _preflight(request: Request, methods: str) -> Response:
    response = Response(status_code=200)
    response.headers["Access-Control-Allow-Methods"] = methods
    response.headers["Access-Control-Allow-Headers"] = request.headers.get(
        "access-control-request-headers", "Content-Type, Authorization, Content-Encoding"
    )
    response.headers["Access-Control-Max-Age"] = "86400"
    return _cors(request, response)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, at most `limit` bytes, else `PayloadTooLarge` (after draining)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > _DRAIN_CAP:
        raise PayloadTooLarge(
            f"body is {declared} bytes, over the {limit} byte limit", limit_bytes=limit
        )
    buf = bytearray()
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen <= limit:
                buf += chunk
            elif seen > _DRAIN_CAP:
                break
    except ClientDisconnect as exc:
        # Nobody is left to answer; a typed error keeps it out of the 500 path and its logs.
        raise InvalidInput("client disconnected before the body was complete") from exc
    if seen > limit:
        raise PayloadTooLarge(
            f"body is over the {limit} byte limit for {request.scope['path']}", limit_bytes=limit
        )
    return bytes(buf)


def _wrap(family: str, allowed: tuple[str, ...], handler: Handler) -> Handler:
    """Method check, CORS, error mapping and the request counter around a capture handler."""
    allow = ", ".join((*allowed, "OPTIONS"))

    async def endpoint(request: Request) -> Response:
        if request.method == "OPTIONS":
            return _preflight(request, allow)
        try:
            if request.method not in allowed:
                path = request.scope["path"]
                raise MethodNotAllowed(
                    f"{request.method} is not allowed on {path} (allowed: {allow})",
                    allowed=list(allowed),
                )
            response = await handler(request)
        except EventLensError as exc:
            response = error_response(exc)
            if isinstance(exc, MethodNotAllowed):
                response.headers["Allow"] = allow
            if response.status_code >= 500:
                log.warning("capture.unavailable", path=request.scope["path"], error=exc.message)
        capture_requests.labels(family, str(response.status_code)).inc()
        return _cors(request, response)

    return endpoint


def _success(base: dict[str, Any], rejected: list[dict[str, Any]]) -> Response:
    return _json({**base, "rejected": rejected} if rejected else base)


async def posthog_capture(request: Request) -> Response:
    started = time.perf_counter()
    received_us = time.time_ns() // 1000
    settings = settings_of(request)
    path = request.scope["path"].rstrip("/")
    limit = settings.max_batch_body if path == "/batch" else settings.max_body
    query = request.query_params
    if request.method == "GET":
        if "data" not in query:
            raise InvalidInput("GET capture needs a data= query parameter", field="data")
        body, query_data = b"", query["data"]
    else:
        body, query_data = await read_body(request, limit), None
    text = decode_body(
        body,
        limit=limit,
        content_type=request.headers.get("content-type"),
        content_encoding=request.headers.get("content-encoding"),
        compression=query.get("compression"),
        query_data=query_data,
    )
    body_json = parse_json_body(text)
    parsed = parse_posthog(
        body_json.value,
        now_us=received_us,
        query_sent_at_ms=query.get("_"),
        max_event=settings.max_event if len(text) > settings.max_event else None,
        surrogates=body_json.surrogates,
    )
    result = await capture_service(request).submit(
        parsed, received_at_us=received_us, started=started
    )
    return _success({"status": 1}, result.rejected)


def _segment_handler(kind: str | None) -> Handler:
    async def handler(request: Request) -> Response:
        started = time.perf_counter()
        received_us = time.time_ns() // 1000
        settings = settings_of(request)
        limit = settings.max_segment_batch if kind is None else settings.max_segment_message
        try:
            text = decode_body(
                await read_body(request, limit),
                limit=limit,
                content_type=request.headers.get("content-type"),
                content_encoding=request.headers.get("content-encoding"),
            )
        except PayloadTooLarge as exc:
            # Segment's documented answer for over-limit bodies is 400, not 413.
            what = "batch" if kind is None else "message"
            raise InvalidInput(
                f"{what} is over Segment's {limit // 1024} KB limit", field="body"
            ) from exc
        body_json = parse_json_body(text)
        parsed: ParsedBody = parse_segment(
            body_json.value,
            kind=kind,
            now_us=received_us,
            auth_header=request.headers.get("authorization"),
            max_message=settings.max_segment_message if kind is None else None,
            surrogates=body_json.surrogates,
        )
        result = await capture_service(request).submit(
            parsed, received_at_us=received_us, started=started
        )
        return _success({"success": True}, result.rejected)

    return handler


async def flags(request: Request) -> Response:
    # No feature flags in EventLens: both the /flags v4 and the older decide shapes, empty.
    return _json(
        {
            "flags": {},
            "featureFlags": {},
            "featureFlagPayloads": {},
            "errorsWhileComputingFlags": False,
            "supportedCompression": SUPPORTED_COMPRESSION,
        }
    )


def _both(path: str) -> tuple[str, str]:
    return path, path + "/"


def capture_routes() -> list[BaseRoute]:
    """All capture routes, each path with and without its trailing slash."""
    routes: list[BaseRoute] = []

    def add(path: str, endpoint: Handler) -> None:
        for p in _both(path):
            routes.append(Route(p, endpoint, methods=_ALL_METHODS, include_in_schema=False))

    posthog = _wrap("posthog", ("GET", "POST"), posthog_capture)
    for path in POSTHOG_PATHS:
        add(path, posthog)
    for path, kind in SEGMENT_KINDS.items():
        add(path, _wrap("segment", ("POST",), _segment_handler(kind)))
    add("/array/{token}/config", _wrap("config", ("GET",), array_config))
    add("/array/{token}/config.js", _wrap("config", ("GET",), array_config_js))
    add("/flags", _wrap("flags", ("GET", "POST"), flags))
    add("/decide", _wrap("flags", ("GET", "POST"), decide))
    # posthog-js's own files; before the dashboard's /static mount, which they would miss.
    asset = _wrap("sdk", ("GET", "HEAD"), sdk_asset)
    for path in sdk_paths():
        routes.append(Route(path, asset, methods=_ALL_METHODS, include_in_schema=False))
    return routes

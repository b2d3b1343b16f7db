"""The OpenAPI document at `/openapi.json`: the contract of every HTTP route (docs/api.md).

FastAPI describes the JSON API from its routes; this module makes that description true and
complete:

- FastAPI's default `422` goes: request validation errors are answered `400` in our error shape
  (`eventlens.web.api.validation`).
- Statuses every operation of a kind can answer are added where FastAPI cannot know them: `400`
  when the operation takes parameters or a body (validation), `401` when it needs the API key,
  `500` everywhere (a bug answers `InternalError` with an `error_id`, `eventlens.web.errors`).
  Route-specific ones (`404`, `503`, `504`) are declared on the routes (`responses=`).
- Every error answer has the body of `EventLensError.to_dict` (`ErrorBody`); a 500 has
  `InternalErrorBody`.
- The routes FastAPI does not describe (the capture endpoints are plain Starlette routes;
  health, readiness, metrics and the dashboard page are hidden from FastAPI's schema) get
  hand-declared path items, picked from the app's route list when the document is built, so a
  route is documented exactly when it is served.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.routing import BaseRoute, Route

from eventlens.capture.decode import MAX_FORM_FIELDS
from eventlens.web.api.schemas import ERROR_RESPONSES, InternalErrorBody
from eventlens.web.capture_routes import POSTHOG_PATHS, SEGMENT_KINDS
from eventlens.web.sdk_assets import sdk_paths

__all__ = ["build_document", "install"]

JSONObject = dict[str, Any]

DESCRIPTION = (
    "The contract of every HTTP route of EventLens: each path it serves, every status each "
    "operation can answer, and the body of each answer. Errors never answer 422: invalid "
    "requests are 400 with the error body (`type`, `detail`, `field`). Capture paths are also "
    "served with a trailing slash (`/e/`, `/batch/`, ...), listed as their own paths."
)

_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_INTERNAL_REF = {"$ref": "#/components/schemas/InternalErrorBody"}
_CAPTURE_OK = {"$ref": "#/components/schemas/CaptureAccepted"}
_SEGMENT_OK = {"$ref": "#/components/schemas/SegmentAccepted"}

_STATUS_TEXT: dict[int, str] = {
    400: "Invalid request (names the field and the limit).",
    401: "Missing, malformed or unknown credentials.",
    403: "Valid credentials without the permission (role, key scope) or the CSRF token.",
    404: "No such resource.",
    413: "Body (or its decompression) over the size limit (`limit_bytes`).",
    429: "Over the project's capture rate; `Retry-After` says when to retry.",
    500: "A bug or a failed query sub-task: a fixed detail and an `error_id` (the server log "
    "has the cause under that id).",
    503: "Temporarily unavailable (events not durable, queue full, shutting down): retry.",
    504: "The query passed its deadline.",
}

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 1},
    }
}
_CORS_HEADERS = {
    "Access-Control-Allow-Origin": {
        "description": "The request's Origin (with credentials allowed), else `*`.",
        "schema": {"type": "string"},
    }
}

# Components the hand-declared path items refer to.
_SCHEMAS: dict[str, JSONObject] = {
    "CaptureAccepted": {
        "type": "object",
        "description": "The batch is durable. Events that failed validation are not stored "
        "(dead-lettered) and are listed in `rejected`; the rest are.",
        "required": ["status"],
        "properties": {
            "status": {"const": 1},
            "rejected": {"$ref": "#/components/schemas/RejectedEvents"},
        },
    },
    "SegmentAccepted": {
        "type": "object",
        "description": "As `CaptureAccepted`, in Segment's words.",
        "required": ["success"],
        "properties": {
            "success": {"const": True},
            "rejected": {"$ref": "#/components/schemas/RejectedEvents"},
        },
    },
    "RejectedEvents": {
        "type": "array",
        "description": "One entry per dead-lettered event: its index and why.",
        "items": {"type": "object", "additionalProperties": True},
    },
    "PostHogCaptureBody": {
        "description": "PostHog's capture wire: one event `{event, distinct_id?, properties, "
        "api_key|token, timestamp?, uuid?...}`, a batch `{api_key, batch: [event...], "
        "sent_at?}`, or a JSON array of events. The project token is `api_key`, `token` or "
        "`properties.token`. Loose: unknown fields are kept in properties or ignored as "
        "PostHog does (docs/capture.md).",
        "type": ["object", "array"],
        "additionalProperties": True,
        "items": {"type": "object", "additionalProperties": True},
    },
    "SegmentBody": {
        "description": "Segment's HTTP tracking API: one message (`/v1/track`, `/v1/identify`,"
        " ...) or `{batch: [message...]}` (`/v1/batch`); the write key is Basic auth "
        "`writeKey:` or `writeKey` in the body.",
        "type": "object",
        "additionalProperties": True,
    },
    "CaptureForm": {
        "description": "Old posthog-js and image beacons: `data` is the JSON body, base64 or "
        "urlencoded, `compression` says how it is encoded (at most "
        f"{MAX_FORM_FIELDS} fields).",
        "type": "object",
        "properties": {
            "data": {"type": "string"},
            "compression": {"type": "string", "enum": ["gzip-js", "gzip", "base64"]},
        },
        "required": ["data"],
    },
    "Flags": {
        "type": "object",
        "description": "No feature flags in EventLens: both PostHog shapes (`/flags` v4 and "
        "`/decide`), empty.",
        "properties": {
            "flags": {"type": "object"},
            # /decide v1 answers the flags as a list of keys, later versions as an object.
            "featureFlags": {"type": ["object", "array"]},
            "featureFlagPayloads": {"type": "object"},
            "errorsWhileComputingFlags": {"type": "boolean"},
            "supportedCompression": {"type": "array", "items": {"type": "string"}},
        },
        "additionalProperties": True,
    },
    "RemoteConfig": {
        "type": "object",
        "description": "posthog-js remote config for the project token.",
        "properties": {"supportedCompression": {"type": "array", "items": {"type": "string"}}},
        "additionalProperties": True,
    },
    "Health": {
        "type": "object",
        "description": "Every check of the ingest pipeline (docs/operations.md).",
        "required": ["status", "ready", "reasons", "checks", "version"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded", "failing"]},
            "ready": {"type": "boolean"},
            "reasons": {"type": "array", "items": {"type": "string"}},
            "checks": {"type": "object", "additionalProperties": True},
            "version": {"type": "string"},
        },
        "additionalProperties": True,
    },
}


def _errors(*statuses: int, retry_after: bool = False) -> dict[str, JSONObject]:
    out: dict[str, JSONObject] = {}
    for status in (*statuses, 500):
        answer: JSONObject = {
            "description": _STATUS_TEXT[status],
            "content": {
                "application/json": {"schema": _INTERNAL_REF if status == 500 else _ERROR_REF}
            },
        }
        if status == 429 and retry_after:
            answer["headers"] = dict(_RETRY_AFTER)
        out[str(status)] = answer
    return out


def _json_ok(description: str, schema: JSONObject, *, cors: bool = False) -> JSONObject:
    answer: JSONObject = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if cors:
        answer["headers"] = dict(_CORS_HEADERS)
    return answer


def _preflight(op_id: str, methods: str) -> JSONObject:
    return {
        "operationId": op_id,
        "tags": ["capture"],
        "summary": "CORS preflight",
        "description": f"Allows {methods} from any origin (browsers' preflight).",
        "responses": {
            "200": {"description": "Preflight allowed.", "headers": dict(_CORS_HEADERS)},
            **_errors(),
        },
    }


def _param(
    name: str,
    description: str,
    *,
    where: str = "query",
    required: bool = False,
    enum: list[str] | None = None,
) -> JSONObject:
    """A string parameter of a hand-declared operation; path parameters are always required."""
    schema: JSONObject = {"type": "string", **({"enum": enum} if enum else {})}
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "description": description,
        "schema": schema,
    }


_COMPRESSION_PARAM = _param(
    "compression",
    "How the body is encoded: `gzip-js` / `gzip` (detected by the gzip magic bytes whatever "
    "this says) or `base64` (possibly wrapping gzip).",
    enum=["gzip-js", "gzip", "base64"],
)
_SENT_AT_PARAM = _param(
    "_", "Client send time in milliseconds (posthog-js), for clock-skew correction."
)
_VER_PARAM = _param("ver", "SDK version (ignored).")


def _posthog_item(path: str, op: str) -> JSONObject:
    answers = {
        "200": _json_ok("Accepted and durable.", _CAPTURE_OK, cors=True),
        **_errors(400, 401, 413, 429, 503, retry_after=True),
    }
    encodings = (
        "Encodings: plain JSON; gzip (`Content-Encoding: gzip` or `?compression=gzip-js`, "
        "detected by its magic bytes); base64 (`?compression=base64`); a form or query "
        "`data=` (base64 or urlencoded JSON). Limits: `max_body` (`max_batch_body` on "
        "`/batch`) and `max_event` per event (413 past them)."
    )
    return {
        "get": {
            "operationId": f"capture_get_{op}",
            "tags": ["capture"],
            "summary": "PostHog capture (image beacon / GET)",
            "description": "The body is in the `data` query parameter. " + encodings,
            "parameters": [
                _param("data", "The JSON body, base64 or urlencoded.", required=True),
                _COMPRESSION_PARAM,
                _SENT_AT_PARAM,
                _VER_PARAM,
            ],
            "responses": answers,
        },
        "post": {
            "operationId": f"capture_post_{op}",
            "tags": ["capture"],
            "summary": "PostHog capture",
            "description": "PostHog's capture endpoint (posthog-js, posthog-python, "
            "posthog-node...). " + encodings,
            "parameters": [_COMPRESSION_PARAM, _SENT_AT_PARAM, _VER_PARAM],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/PostHogCaptureBody"}
                    },
                    "text/plain": {
                        "schema": {
                            "type": "string",
                            "description": "JSON, gzip or base64 text (posthog-js sendBeacon).",
                        }
                    },
                    "application/x-www-form-urlencoded": {
                        "schema": {"$ref": "#/components/schemas/CaptureForm"}
                    },
                },
            },
            "responses": answers,
        },
        "options": _preflight(f"capture_options_{op}", "GET, POST"),
    }


def _segment_item(path: str, op: str) -> JSONObject:
    return {
        "post": {
            "operationId": f"segment_{op}",
            "tags": ["capture"],
            "summary": f"Segment {SEGMENT_KINDS.get(path.rstrip('/')) or 'batch'}",
            "description": "Segment's HTTP tracking API (analytics-python, analytics-node, "
            "RudderStack...). JSON, optionally gzip (`Content-Encoding: gzip`). Over Segment's "
            "size limits (`max_segment_message`, `max_segment_batch`) the answer is 400, as "
            "Segment answers.",
            "security": [{"SegmentWriteKey": []}, {}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/SegmentBody"}}
                },
            },
            "responses": {
                "200": _json_ok("Accepted and durable.", _SEGMENT_OK, cors=True),
                **_errors(400, 401, 429, 503, retry_after=True),
            },
        },
        "options": _preflight(f"segment_options_{op}", "POST"),
    }


def _flags_item(path: str, op: str) -> JSONObject:
    ok = {"200": _json_ok("No flags.", {"$ref": "#/components/schemas/Flags"}, cors=True)}
    item: JSONObject = {}
    for method in ("get", "post"):
        item[method] = {
            "operationId": f"{op}_{method}",
            "tags": ["capture"],
            "summary": "Feature flags (none) for posthog-js",
            "parameters": [_param("v", "API version the SDK speaks.")],
            "responses": {**ok, **_errors()},
        }
        if method == "post":
            item[method]["requestBody"] = {
                "required": False,
                "content": {
                    "application/json": {"schema": {"type": "object", "additionalProperties": True}}
                },
            }
    item["options"] = _preflight(f"{op}_options", "GET, POST")
    return item


_TOKEN_PARAM = _param("token", "The project token (phc_...).", where="path")


def _config_item(path: str, op: str) -> JSONObject:
    return {
        "get": {
            "parameters": [_TOKEN_PARAM],
            "operationId": f"{op}_get",
            "tags": ["capture"],
            "summary": "posthog-js remote config",
            "responses": {
                "200": _json_ok(
                    "The config.", {"$ref": "#/components/schemas/RemoteConfig"}, cors=True
                ),
                **_errors(400, 404),
            },
        },
        "options": {**_preflight(f"{op}_options", "GET"), "parameters": [_TOKEN_PARAM]},
    }


def _config_js_item(path: str, op: str) -> JSONObject:
    return {
        "get": {
            "parameters": [_TOKEN_PARAM],
            "operationId": f"{op}_get",
            "tags": ["capture"],
            "summary": "posthog-js remote config, as a script",
            "responses": {
                "200": {
                    "description": "A script that hands the config to posthog-js.",
                    "headers": dict(_CORS_HEADERS),
                    "content": {"application/javascript": {"schema": {"type": "string"}}},
                },
                **_errors(400, 404),
            },
        },
        "options": {**_preflight(f"{op}_options", "GET"), "parameters": [_TOKEN_PARAM]},
    }


_NAME_PARAM = _param(
    "name",
    "A vendored posthog-js file without `.js` (`array`, `array.full`, `surveys`, ...); any "
    "other name is a 404.",
    where="path",
)


def _script_item(path: str, op: str) -> JSONObject:
    return {
        "get": {
            "operationId": f"{op}_get",
            "tags": ["capture"],
            "summary": "The posthog-js files its snippet and lazy loaders fetch",
            "parameters": [_NAME_PARAM],
            "responses": {
                "200": {
                    "description": "The script.",
                    "content": {"application/javascript": {"schema": {"type": "string"}}},
                },
                **_errors(404),
            },
        }
    }


def _health_item(path: str, op: str) -> JSONObject:
    what = (
        "Liveness: 503 only when the consumer is dead for good."
        if path == "/_health"
        else "Readiness: 503 with the reasons when the consumer, the lag or the disk is not ok."
    )
    health = {"$ref": "#/components/schemas/Health"}
    return {
        "get": {
            "operationId": op,
            "tags": ["operations"],
            "summary": what.split(":")[0],
            "description": what + " The body has every check either way.",
            "responses": {
                "200": _json_ok("OK, with every check.", health),
                "503": _json_ok("Not ok: `reasons` says why.", health),
                "500": _errors()["500"],
            },
        }
    }


def _metrics_item(path: str, op: str) -> JSONObject:
    return {
        "get": {
            "operationId": op,
            "tags": ["operations"],
            "summary": "Prometheus metrics (docs/metrics.md)",
            "responses": {
                "200": {
                    "description": "Prometheus text exposition format.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                **_errors(),
            },
        }
    }


def _page_item(media_type: str) -> Callable[[str, str], JSONObject]:
    def item(path: str, op: str) -> JSONObject:
        return {
            "get": {
                "operationId": op,
                "tags": ["dashboard"],
                "summary": "The web dashboard" if path == "/" else "Its icon",
                "responses": {
                    "200": {
                        "description": "The file.",
                        "content": {media_type: {"schema": {"type": "string"}}},
                    },
                    **_errors(),
                },
            }
        }

    return item


PathItem = Callable[[str, str], JSONObject]
# The routes FastAPI does not describe, by path (without a trailing slash). A path here is in
# the document only if the app serves it; a served path missing here fails tests/api/test_openapi.
HAND_DECLARED: dict[str, PathItem] = {
    **dict.fromkeys(POSTHOG_PATHS, _posthog_item),
    **dict.fromkeys(SEGMENT_KINDS, _segment_item),
    "/flags": _flags_item,
    "/decide": _flags_item,
    "/array/{token}/config": _config_item,
    "/array/{token}/config.js": _config_js_item,
    **dict.fromkeys(sdk_paths(), _script_item),
    "/_health": _health_item,
    "/_ready": _health_item,
    "/metrics": _metrics_item,
    "/": _page_item("text/html"),
    "/favicon.ico": _page_item("image/svg+xml"),
}
# FastAPI's own pages: the document and its viewers.
FRAMEWORK_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})


def _op_id(path: str) -> str:
    name = "".join(c if c.isalnum() else "_" for c in path).strip("_") or "index"
    return name + ("_slash" if path.endswith("/") and path != "/" else "")


def _hand_item(path: str) -> JSONObject | None:
    key = path.rstrip("/") or "/"
    make = HAND_DECLARED.get(key)
    return None if make is None else make(key, _op_id(path))


def served_paths(routes: list[BaseRoute]) -> list[str]:
    """Paths of the plain routes among `routes` (not mounts, not FastAPI's included routers),
    in route order: the capture routes, health, metrics, the page and FastAPI's own pages."""
    return [r.path for r in routes if isinstance(r, Route)]


def _fix_operation(op: JSONObject) -> None:
    answers: JSONObject = op.setdefault("responses", {})
    answers.pop("422", None)
    if op.get("parameters") or "requestBody" in op:
        answers.setdefault("400", {"description": ERROR_RESPONSES[400]["description"]})
    if op.get("security"):
        # Every authenticated route: no or bad credentials (401); a role or key scope without
        # the route's permission, or a cookie request without its CSRF token (403).
        answers.setdefault("401", {"description": _STATUS_TEXT[401]})
        answers.setdefault("403", {"description": _STATUS_TEXT[403]})
    answers.setdefault("500", {"description": _STATUS_TEXT[500]})
    for code, answer in answers.items():
        if code.isdigit() and int(code) >= 400:
            ref = _INTERNAL_REF if code == "500" else _ERROR_REF
            answer["content"] = {"application/json": {"schema": dict(ref)}}
    op["responses"] = dict(sorted(answers.items()))


def build_document(app: FastAPI) -> JSONObject:
    """The OpenAPI 3.1 document of `app`: FastAPI's description of its API routes, corrected
    (no 422; 400/401/500 where they can occur; one error body), plus the hand-declared path
    items of the other routes it serves (HAND_DECLARED)."""
    doc = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=DESCRIPTION,
        routes=app.routes,
    )
    for item in doc.get("paths", {}).values():
        for op in item.values():
            _fix_operation(op)
    schemas: JSONObject = doc.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["InternalErrorBody"] = InternalErrorBody.model_json_schema()
    schemas.update(copy.deepcopy(_SCHEMAS))
    doc["components"].setdefault("securitySchemes", {})["SegmentWriteKey"] = {
        "type": "http",
        "scheme": "basic",
        "description": "Segment's write key as the Basic auth user name (the project token).",
    }
    for path in served_paths(app.routes):
        if path in doc["paths"] or path in FRAMEWORK_PATHS:
            continue
        item = _hand_item(path)
        if item is not None:
            doc["paths"][path] = item
    return doc


def install(app: FastAPI) -> None:
    """Serve `build_document(app)` at /openapi.json (and /docs), built once on first use."""

    def openapi() -> JSONObject:
        if app.openapi_schema is None:
            app.openapi_schema = build_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

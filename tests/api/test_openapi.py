"""/openapi.json is the contract (docs/api.md "OpenAPI"): a valid OpenAPI 3.1 document that
lists every route the server serves, no status the server never sends (422), and whose declared
statuses and bodies match what a real server answers on each kind of route."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
from openapi_spec_validator import validate
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from eventlens.config import Settings
from eventlens.web.app import create_app
from eventlens.web.openapi import FRAMEWORK_PATHS, served_paths
from tests.api.conftest import Deployment

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _document(deployment: Deployment) -> dict[str, Any]:
    answer = httpx.get(f"{deployment.server.url}/openapi.json", timeout=30)
    assert answer.status_code == 200
    doc: dict[str, Any] = answer.json()
    return doc


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def test_document_is_valid_openapi(deployment: Deployment) -> None:
    doc = _document(deployment)
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_no_operation_declares_422(deployment: Deployment) -> None:
    operations = _operations(_document(deployment))
    assert len(operations) > 40
    declaring = [f"{m} {p}" for m, p, op in operations if "422" in op["responses"]]
    assert declaring == []


def test_every_error_answer_has_the_error_body(deployment: Deployment) -> None:
    for method, path, op in _operations(_document(deployment)):
        assert "500" in op["responses"], f"{method} {path}"
        for code, answer in op["responses"].items():
            # /_health and /_ready answer 503 with every check (Health), not an error.
            if int(code) >= 400 and path not in ("/_health", "/_ready"):
                ref = answer["content"]["application/json"]["schema"]["$ref"]
                want = "InternalErrorBody" if code == "500" else "ErrorBody"
                assert ref == f"#/components/schemas/{want}", f"{method} {path} {code}"


def test_every_served_route_is_documented() -> None:
    app = create_app(Settings())
    doc = app.openapi()
    served = set(served_paths(app.routes)) - FRAMEWORK_PATHS
    # The capture routes, health and metrics are there (they are not FastAPI operations).
    assert {"/e", "/e/", "/batch", "/v1/batch", "/flags", "/_health", "/metrics"} <= served
    assert sorted(served - set(doc["paths"])) == []
    # And a hand-declared path is listed only while it is served (the API's come from FastAPI).
    assert sorted(p for p in doc["paths"] if not p.startswith("/api/") and p not in served) == []


def _basic(token: str) -> str:
    return "Basic " + base64.b64encode(f"{token}:".encode()).decode()


def _cases(d: Deployment) -> list[tuple[str, str, int, dict[str, Any]]]:
    token, key = d.a["token"], d.a["api_key"]
    event = {"api_key": token, "event": "openapi_check", "distinct_id": "oa1", "properties": {}}
    bearer = {"Authorization": f"Bearer {key}"}
    data = base64.b64encode(orjson.dumps(event)).decode()
    json_ = "application/json"
    return [
        ("POST", "/e", 200, {"body": event, "media_type": json_}),
        ("POST", "/e/", 200, {"body": event, "media_type": json_}),
        ("GET", "/e", 200, {"query": {"data": data, "compression": "base64"}}),
        (
            "POST",
            "/batch",
            200,
            {"body": {"api_key": token, "batch": [event, {"x": 1}]}, "media_type": json_},
        ),
        (
            "POST",
            "/i/v0/e",
            200,
            {"body": orjson.dumps(event).decode(), "media_type": "text/plain"},
        ),
        (
            "POST",
            "/capture",
            200,
            {"body": {"data": data}, "media_type": "application/x-www-form-urlencoded"},
        ),
        ("POST", "/e", 401, {"body": {"event": "x", "distinct_id": "y"}, "media_type": json_}),
        ("POST", "/e", 400, {"body": "{not json", "media_type": "text/plain"}),
        ("POST", "/e", 413, {"body": "x" * (2 * 1024 * 1024 + 1), "media_type": "text/plain"}),
        ("OPTIONS", "/e", 200, {"headers": {"Origin": "https://example.com"}}),
        (
            "POST",
            "/v1/track",
            200,
            {
                "body": {"userId": "oa1", "event": "openapi_check"},
                "media_type": json_,
                "headers": {"Authorization": _basic(token)},
            },
        ),
        ("POST", "/v1/track", 401, {"body": {"userId": "oa1", "event": "x"}, "media_type": json_}),
        (
            "POST",
            "/v1/batch",
            400,
            {
                "body": {"batch": []},
                "media_type": json_,
                "headers": {"Authorization": _basic(token)},
            },
        ),
        ("GET", "/flags", 200, {}),
        ("POST", "/decide", 200, {"body": {"token": token}, "media_type": json_}),
        ("GET", "/array/{token}/config", 200, {"path_parameters": {"token": token}}),
        ("GET", "/_health", 200, {}),
        ("GET", "/_ready", 200, {}),
        ("GET", "/metrics", 200, {}),
        ("GET", "/", 200, {}),
        (
            "GET",
            "/api/projects/{project_id}",
            400,
            {"path_parameters": {"project_id": "abc"}, "headers": bearer},
        ),
        (
            "GET",
            "/api/projects/{project_id}",
            404,
            {"path_parameters": {"project_id": 999}, "headers": bearer},
        ),
        ("GET", "/api/projects/{project_id}", 401, {"path_parameters": {"project_id": 1}}),
        ("GET", "/api/shadow/report", 401, {}),
        ("GET", "/api/shadow/report", 400, {"query": {"since": "soon"}, "headers": bearer}),
        ("GET", "/api/projects", 200, {"headers": bearer}),
    ]


def test_answers_of_each_kind_of_route_conform(deployment: Deployment) -> None:
    """One real request per kind of answer (success and each error a client can provoke) on
    every family of routes: the status is the expected one, it is declared, and the body has
    the declared schema."""
    schema = schemathesis.openapi.from_url(f"{deployment.server.url}/openapi.json")
    doc = _document(deployment)
    checked = 0
    for method, path, status, kwargs in _cases(deployment):
        if path not in doc["paths"]:
            # /decide arrives with the posthog-js routes; until then it is not served.
            assert path == "/decide", path
            continue
        case = schema[path][method].Case(**kwargs)
        response = case.call(base_url=deployment.server.url, timeout=30)
        assert response.status_code == status, (method, path, response.text[:300])
        case.validate_response(
            response, checks=[status_code_conformance, response_schema_conformance]
        )
        checked += 1
    assert checked >= 24


@pytest.mark.parametrize("path", ["/e", "/v1/track", "/flags", "/array/{token}/config"])
def test_trailing_slash_paths_are_documented_alike(deployment: Deployment, path: str) -> None:
    doc = _document(deployment)
    bare, slashed = doc["paths"][path], doc["paths"][path + "/"]
    assert bare.keys() == slashed.keys()
    for method in bare:
        if method in METHODS:
            assert bare[method]["responses"] == slashed[method]["responses"]

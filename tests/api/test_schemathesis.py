"""Schemathesis against the server's own /openapi.json: every documented operation (the API and
the capture, flags, health and metrics routes), with inputs generated from its schema (valid and
invalid), authenticated with a real key. No answer is a 5xx (not_a_server_error), every status
is one the operation declares (status_code_conformance) and every body has the declared schema
(response_schema_conformance). Bounded: a few examples per operation and mode; the capture
paths with a trailing slash are the same handlers as without (test_openapi checks they are
documented alike) and are not driven twice.

Schemathesis's pytest plugin (`schema.parametrize`) does not run under pytest 9 (it sets
`request.node._nodeid`), so the operations' Hypothesis strategies are driven directly."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import Deployment

EXAMPLES = 12


def _operations(deployment: Deployment) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{deployment.server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    return [op for op in operations if op.path == "/" or not op.path.endswith("/")]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_operations_answer_as_documented(deployment: Deployment, mode: GenerationMode) -> None:
    operations = _operations(deployment)
    labels = {f"{op.method.upper()} {op.path}" for op in operations}
    # The schema holds the query API and the saved insights/dashboards.
    assert "POST /api/projects/{project_id}/query" in labels, labels
    assert "PATCH /api/projects/{project_id}/insights/{insight_id}" in labels, labels
    assert {"POST /e", "GET /batch", "POST /v1/batch", "GET /flags", "GET /_ready"} <= labels
    headers = {"Authorization": f"Bearer {deployment.a['api_key']}"}
    skipped: list[str] = []
    for op in operations:

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def run(case: Any) -> None:
            case.call_and_validate(
                base_url=deployment.server.url,
                headers=headers,
                checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
                timeout=30,
            )

        try:
            run()
        except Unsatisfiable:
            # Nothing to make invalid: an operation without parameters or body (GET /_health).
            assert mode is GenerationMode.NEGATIVE, op.label
            skipped.append(op.label)
    # Operations with a body or parameters always have invalid inputs to send.
    assert not [label for label in skipped if label.startswith(("POST", "PATCH", "GET /api"))]

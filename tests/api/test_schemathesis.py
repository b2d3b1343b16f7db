"""Schemathesis against the server's own /openapi.json: every documented operation, with inputs
generated from its schema (valid and invalid), authenticated with a real key. No answer is a 5xx
(schemathesis's not_a_server_error check). Bounded: a few examples per operation and mode.

Schemathesis's pytest plugin (`schema.parametrize`) does not run under pytest 9 (it sets
`request.node._nodeid`), so the operations' Hypothesis strategies are driven directly."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.api.conftest import Deployment

EXAMPLES = 12


def _operations(deployment: Deployment) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{deployment.server.url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_operation_answers_5xx(deployment: Deployment, mode: GenerationMode) -> None:
    operations = _operations(deployment)
    labels = {f"{op.method.upper()} {op.path}" for op in operations}
    # The schema holds the query API and the saved insights/dashboards.
    assert "POST /api/projects/{project_id}/query" in labels, labels
    assert "PATCH /api/projects/{project_id}/insights/{insight_id}" in labels, labels
    headers = {"Authorization": f"Bearer {deployment.a['api_key']}"}
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
                checks=[not_a_server_error],
                timeout=30,
            )

        run()

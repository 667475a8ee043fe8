"""Schemathesis against the real server's own OpenAPI schema: requests the schema
allows and requests it forbids, for every operation, never get a server error,
and every response matches what the schema says (status, content type, body).

Bounded and derandomized (the same examples every run), so it fits CI.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.server import ServerProcess, start_server

EXAMPLES_PER_OPERATION_AND_MODE = 10

REST_OPERATIONS = {
    "GET /api/graphs/{graph_id}/annotations",
    "GET /api/graphs/{graph_id}/annotations/{annotation_id}",
    "PUT /api/graphs/{graph_id}/annotations/{annotation_id}",
    "PATCH /api/graphs/{graph_id}/annotations/{annotation_id}",
    "DELETE /api/graphs/{graph_id}/annotations/{annotation_id}",
    "GET /api/graphs/{graph_id}/ops",
    "GET /api/graphs/{graph_id}/annotations/{annotation_id}/history",
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
}

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("fuzz"))
    try:
        yield process
    finally:
        process.stop()


@pytest.mark.parametrize(
    "mode",
    [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    ids=["schema-valid", "schema-invalid"],
)
def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(
    fuzzed_server: ServerProcess, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed_server.http_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert REST_OPERATIONS <= {operation.label for operation in operations}
    calls: list[tuple[str, int]] = []

    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not _has_inputs(operation):
            continue  # nothing to get wrong in a request without parameters or body
        # Other teams' routes (e.g. admin) are held to "no server error" here;
        # ours also to their documentation.
        checks = CHECKS if operation.label in REST_OPERATIONS else [not_a_server_error]
        calls.extend(_fuzz(operation, mode, checks))

    assert REST_OPERATIONS - {"GET /healthz", "GET /readyz", "GET /metrics"} <= {
        label for label, _ in calls
    }
    if mode is GenerationMode.POSITIVE:
        assert any(200 <= status < 300 for _, status in calls)


def _has_inputs(operation: Any) -> bool:
    return bool(list(operation.iter_parameters())) or bool(operation.body)


def _fuzz(operation: Any, mode: GenerationMode, checks: list[Any]) -> list[tuple[str, int]]:
    """Run the bounded examples of one operation; the (label, status) of each call."""
    calls: list[tuple[str, int]] = []

    @settings(
        max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: Any) -> None:
        response = case.call_and_validate(checks=checks)
        calls.append((case.operation.label, response.status_code))

    call()
    return calls

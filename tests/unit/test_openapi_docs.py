"""`/openapi.json` says what the server answers: problem documents for every error, 401/403 with
the permission on every guarded route (API.md "Auth"), Prometheus text for `/metrics`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from services.http_api import create_app
from services.settings import Settings
from tests.documents import refs
from tests.unit.test_route_permissions import EXPECTED

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
Operation = tuple[str, str, dict[str, Any]]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(Settings()).openapi()


def _operations(document: dict[str, Any]) -> Iterator[Operation]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def test_every_error_response_is_a_problem_document(document: dict[str, Any]) -> None:
    errors = [
        (method, path, status, response)
        for method, path, operation in _operations(document)
        for status, response in operation["responses"].items()
        if status[0] in "45"
    ]
    assert any(status == "422" for _, _, status, _ in errors)
    for method, path, status, response in errors:
        assert response["content"] == PROBLEM, (method, path, status)


def test_fastapis_validation_error_schemas_are_gone(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    assert "Problem" in schemas


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for ref in refs(document):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_guarded_operations_document_401_403_and_their_permission_R28(
    document: dict[str, Any],
) -> None:
    for method, path, operation in _operations(document):
        permission = EXPECTED[(method, re.sub(r"\{[^}]*\}", "{}", path))]
        responses = operation["responses"]
        if permission is None:
            assert "401" not in responses, (method, path)
            assert "x-permission" not in operation, (method, path)
            continue
        assert operation["x-permission"] == permission, (method, path)
        assert f"`{permission}` permission" in operation["description"], (method, path)
        for status in ("401", "403"):
            assert responses[status]["content"] == PROBLEM, (method, path, status)


def test_a_token_taking_read_documents_the_400_of_a_malformed_token(
    document: dict[str, Any],
) -> None:
    members = document["paths"]["/v1/segments/{segment_id}/members"]["get"]
    assert members["responses"]["400"]["content"] == PROBLEM


def test_metrics_are_documented_as_prometheus_text(document: dict[str, Any]) -> None:
    content = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/plain"]
    assert content["text/plain"]["schema"] == {"type": "string"}


def test_hand_made_results_are_documented(document: dict[str, Any]) -> None:
    paths = document["paths"]
    created = paths["/v1/databases"]["post"]["responses"]["201"]
    assert created["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DatabaseView"
    }
    assert "Consistency-Token" in created["headers"]
    members = paths["/v1/segments/{segment_id}/members"]["get"]["responses"]["200"]
    assert list(members["content"]) == ["application/x-ndjson"]
    segments = paths["/v1/profiles/{profile_id}/segments"]["get"]["responses"]["200"]
    assert segments["content"]["application/json"]["schema"]["type"] == "array"
    export = paths["/v1/profiles/{profile_id}/export"]["get"]["responses"]["200"]
    schema = export["content"]["application/json"]["schema"]
    assert schema["properties"]["profile"] == {"$ref": "#/components/schemas/ProfileView"}


def test_the_document_is_the_same_however_often_it_is_built() -> None:
    app = create_app(Settings())
    first = json.dumps(app.openapi())
    assert json.dumps(app.openapi()) == first  # revised once, not once per request
    assert json.dumps(create_app(Settings()).openapi()) == first

"""The OpenAPI schema lists the refusals every operation may answer."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.apitools import assert_error, assert_unauthenticated

pytestmark = pytest.mark.django_db


def _schema(api: APIClient) -> dict:
    return api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


@pytest.mark.parametrize("path", ["/api/v1/environments/", "/api/v1/policies/"])
def test_anonymous_list_is_401_and_documented(api: APIClient, path: str):
    assert_unauthenticated(api.get(path))
    responses = _schema(api)["paths"][path]["get"]["responses"]
    assert {"401", "403"} <= set(responses), sorted(responses)


def test_every_operation_documents_401_and_403_in_the_error_format(api: APIClient):
    schema = _schema(api)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status in ("401", "403"):
                response = operation["responses"].get(status)
                assert response, (method, path, status)
                body = response["content"]["application/json"]["schema"]
                assert body == {"$ref": "#/components/schemas/Error"}, (method, path)


def test_public_key_in_an_unknown_format_is_400_naming_format_and_documented(api: APIClient):
    response = api.get("/api/v1/audit/public-key", {"format": "xml"})
    assert response["Content-Type"] == "application/json"
    assert_error(response, 400, field="format", code="invalid")
    responses = _schema(api)["paths"]["/api/v1/audit/public-key"]["get"]["responses"]
    assert "400" in responses


def test_errors_are_documented_as_json_only(api: APIClient):
    for path, operations in _schema(api)["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert set(response["content"]) == {"application/json"}, (method, path)

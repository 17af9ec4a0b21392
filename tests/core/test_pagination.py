"""Paged lists refuse a malformed ``page``, ``page_size`` or ``cursor`` with a 400 naming it,
answer a page past the end with a 404, and say both in the OpenAPI schema."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests import factories
from tests.apitools import assert_error
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

MODELS = "/api/v1/models/"
RECORDS = "/api/v1/audit/records/"


@pytest.fixture
def two_models(alice):
    factories.registered_model(alice, name="credit-score")
    factories.registered_model(alice, name="fraud-score")


@pytest.mark.parametrize("page", ["abc", "0", "-1", "1.5", "null", ""])
def test_malformed_page_is_400_naming_page(alice, two_models, page: str):
    response = client_for(alice).get(MODELS, {"page": page})
    assert_error(response, 400, field="page", code="invalid")


def test_page_past_the_end_is_404(alice, two_models):
    assert_error(client_for(alice).get(MODELS, {"page": "999"}), 404, code="not_found")


@pytest.mark.parametrize("page_size", ["abc", "0", "-3", "501", "null", "", "1e3", "१"])
def test_page_size_outside_one_to_500_is_400_naming_page_size(alice, two_models, page_size):
    response = client_for(alice).get(MODELS, {"page_size": page_size})
    error = assert_error(response, 400, field="page_size", code="invalid")
    assert "500" in error["message"]


@pytest.mark.parametrize(("page_size", "count"), [("1", 1), ("500", 2)])
def test_page_size_within_range_is_honoured(alice, two_models, page_size: str, count: int):
    response = client_for(alice).get(MODELS, {"page_size": page_size, "page": "1"})
    assert response.status_code == 200
    assert len(response.json()["results"]) == count


@pytest.mark.parametrize("params", [{"page_size": "0"}, {"page_size": "1001"}, {"cursor": "x"}])
def test_audit_log_refuses_malformed_paging_with_400(audrey, params):
    field = next(iter(params))
    assert_error(client_for(audrey).get(RECORDS, params), 400, field=field, code="invalid")


def _schema(api: APIClient) -> dict:
    return api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def test_every_paged_list_documents_400_and_404_and_the_page_size_range(api: APIClient):
    schema = _schema(api)
    paged = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            parameters = {p["name"]: p for p in operation.get("parameters", [])}
            if "page_size" not in parameters:
                continue
            paged += 1
            assert {"400", "404"} <= set(operation["responses"]), (method, path)
            error = operation["responses"]["400"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/Error"}, (method, path)
            size = parameters["page_size"]["schema"]
            assert size["minimum"] == 1 and size["maximum"] in (500, 1000), (method, path)
    assert paged >= 10

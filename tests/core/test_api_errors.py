"""Every response under /api/ is JSON in the one error format, whatever refused the request:
a view, Django's URL resolver, the request-size limit or an unexpected failure; in
production (DEBUG off) and in development (DEBUG on) alike."""

from __future__ import annotations

import errno

import pytest
from django.test import Client
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.test import APIClient
from rest_framework.views import APIView

from core.accounts.models import User
from governance.urls import urlpatterns as base_urlpatterns
from tests.apitools import assert_error
from tests.conftest import client_for, client_with_key

pytestmark = pytest.mark.django_db


def _explode(request):
    raise RuntimeError("unexpected failure inside a view")


def _disk_full(request):
    raise OSError(errno.ENOSPC, "No space left on device")


class _DiskFullView(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise OSError(errno.EDQUOT, "Disk quota exceeded")


# A URLconf with views that fail unexpectedly, or meet a full disk, under /api/ and outside it.
urlpatterns = [
    path("api/v1/explode", _explode),
    path("elsewhere/explode", _explode),
    path("api/v1/disk-full", _disk_full),
    path("api/v1/disk-full-view", _DiskFullView.as_view()),
    *base_urlpatterns,
]


@pytest.fixture(params=[False, True], ids=["production", "debug"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


def test_unmatched_api_path_is_a_json_404(debug, api: APIClient):
    response = api.get("/api/v1/no-such-thing/")
    assert response["Content-Type"] == "application/json"
    assert_error(response, 404, code="not_found")


def test_unmatched_path_outside_the_api_stays_html(debug, api: APIClient):
    response = api.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_body_over_the_limit_is_a_json_413(debug, settings, alice: User):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = '{"name": "' + "x" * 2048 + '"}'
    response = client_for(alice).post("/api/v1/models/", data=body, content_type="application/json")
    assert response["Content-Type"] == "application/json"
    error = assert_error(response, 413, code="request_too_large")
    assert "1024" in error["message"]


def test_body_under_the_limit_is_parsed(settings, alice: User):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = client_for(alice).post(
        "/api/v1/models/", data='{"name": ""}', content_type="application/json"
    )
    assert_error(response, 400, field="name")


@pytest.mark.parametrize("method", ["TRACE", "DELETE", "PUT"])
def test_method_the_view_does_not_allow_is_a_json_405(debug, method: str, ci_key: str):
    response = client_with_key(ci_key).generic(method, "/api/v1/models/")
    assert response["Content-Type"] == "application/json"
    assert_error(response, 405, code="method_not_allowed")


def test_trace_on_an_unmatched_api_path_is_json(debug, api: APIClient):
    response = api.generic("TRACE", "/api/v1/no-such-thing/")
    assert response["Content-Type"] == "application/json"
    assert_error(response, 404, code="not_found")


@pytest.mark.urls(__name__)
def test_unexpected_failure_under_the_api_is_a_json_500(debug):
    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/explode")
    assert response["Content-Type"] == "application/json"
    error = assert_error(response, 500, code="server_error")
    # Nothing of the failure leaks to the caller, even with DEBUG on.
    assert "unexpected failure" not in response.content.decode()
    assert error["message"] == "Internal server error."


@pytest.mark.urls(__name__)
def test_unexpected_failure_outside_the_api_keeps_django_pages(settings):
    settings.DEBUG = False
    response = Client(raise_request_exception=False).get("/elsewhere/explode")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("url", ["/api/v1/disk-full", "/api/v1/disk-full-view"])
def test_a_full_disk_under_the_api_is_a_json_507(debug, url):
    response = Client(raise_request_exception=False).get(url)
    assert response["Content-Type"] == "application/json"
    error = assert_error(response, 507, code="insufficient_storage")
    assert error["message"] == "the server has no space left on its disk to complete the request"


def test_api_errors_carry_the_request_id_given(debug, api: APIClient):
    response = api.get("/api/v1/no-such-thing/", HTTP_X_REQUEST_ID="trace-1234")
    assert response.json()["request_id"] == "trace-1234"
    assert response["X-Request-ID"] == "trace-1234"

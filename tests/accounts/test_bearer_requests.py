"""A bearer-key API request skips the browser's middleware (no session, CSRF check, session
user or messages) and is authenticated in one SQL statement; everything else keeps them, and
a bad key is never rescued by a session."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from rest_framework.request import Request
from rest_framework.test import APIClient

from audit.api import PublicRead
from core.accounts.keys import hash_key
from core.accounts.models import ApiKey
from core.middleware import (
    BrowserAuthenticationMiddleware,
    BrowserCsrfViewMiddleware,
    BrowserMessageMiddleware,
    BrowserSessionMiddleware,
    is_bearer_api_request,
)
from core.permissions import DeploymentRequestAccess, GateAccess, RegistryAccess
from tests.conftest import PASSWORD, client_with_key

pytestmark = pytest.mark.django_db

MODELS = "/api/v1/models/"
PUBLIC_KEY = "/api/v1/audit/public-key"


def vary(response: Any) -> list[str]:
    return [v.strip().lower() for v in response.get("Vary", "").split(",") if v.strip()]


@pytest.mark.parametrize(
    ("path", "header", "expected"),
    [
        ("/api/v1/models/", "Bearer wdn_x_y", True),
        ("/api/v1/models/", "bearer   wdn_x_y", True),
        ("/api/v1/models/", "Bearer", True),
        ("/api/v1/models/", "Basic YWxpY2U6eA==", False),
        ("/api/v1/models/", "", False),
        ("/approvals/", "Bearer wdn_x_y", False),
        ("/admin/", "Bearer wdn_x_y", False),
    ],
)
@pytest.mark.database_free
def test_only_api_requests_with_a_bearer_header_skip_the_browser_middleware(
    path: str, header: str, expected: bool
) -> None:
    request = RequestFactory().get(path, HTTP_AUTHORIZATION=header)
    assert is_bearer_api_request(request) is expected


@pytest.mark.database_free
def test_a_bearer_api_request_reaches_the_view_anonymous_without_session_or_messages() -> None:
    seen: dict[str, Any] = {}

    def view(request: HttpRequest) -> HttpResponse:
        seen["user"] = request.user
        seen["session"] = hasattr(request, "session")
        seen["messages"] = hasattr(request, "_messages")
        seen["csrf"] = "CSRF_COOKIE" in request.META
        return HttpResponse()

    chain = BrowserSessionMiddleware(
        BrowserCsrfViewMiddleware(BrowserAuthenticationMiddleware(BrowserMessageMiddleware(view)))
    )
    request = RequestFactory().get(
        MODELS, HTTP_AUTHORIZATION="Bearer wdn_x_y", HTTP_COOKIE="sessionid=abc; csrftoken=def"
    )
    response = chain(request)
    assert isinstance(seen["user"], AnonymousUser)
    assert seen == {**seen, "session": False, "messages": False, "csrf": False}
    assert "Set-Cookie" not in response and "cookie" not in vary(response)


def test_a_bearer_request_sets_no_cookie_and_does_not_vary_on_cookies(ci_key: str) -> None:
    response = client_with_key(ci_key).get(MODELS)
    assert response.status_code == 200
    assert not response.cookies
    assert "cookie" not in vary(response)
    assert not hasattr(response.wsgi_request, "session")


def test_a_session_request_to_the_api_still_goes_through_the_session(alice: Any) -> None:
    client = APIClient()
    assert client.login(username="alice", password=PASSWORD)
    response = client.get(MODELS)
    assert response.status_code == 200
    assert "cookie" in vary(response)
    assert response.wsgi_request.session.get("_auth_user_id") == str(alice.pk)


def test_an_invalid_bearer_key_is_401_even_with_a_valid_session(alice: Any) -> None:
    client = APIClient()
    client.force_login(alice)
    client.credentials(HTTP_AUTHORIZATION="Bearer wdn_not_a-key")
    response = client.get(MODELS)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="warden"'
    assert response.json()["error"] == {
        "code": "authentication_failed",
        "message": "invalid API key",
    }
    client.credentials(HTTP_AUTHORIZATION="Bearer")
    assert client.get(MODELS).status_code == 401


def test_a_bearer_key_with_a_session_cookie_acts_as_the_key_not_the_session(
    alice: Any, gate_only_key: str
) -> None:
    client = APIClient()
    client.force_login(alice)
    assert client.get(MODELS).status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {gate_only_key}")
    response = client.get(MODELS)
    assert response.status_code == 403
    assert "registry:read" in response.json()["error"]["message"]


def test_a_cookie_authenticated_api_write_without_the_csrf_token_is_refused(alice: Any) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(MODELS, {"name": "fraud-score"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]


def test_a_bearer_header_does_not_lift_csrf_from_a_page_outside_the_api(alice: Any) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post("/accounts/logout/", HTTP_AUTHORIZATION="Bearer wdn_x_y")
    assert response.status_code == 403
    assert client.get(MODELS).status_code == 200  # still signed in


@pytest.mark.django_db(transaction=True)
def test_a_bearer_request_to_the_public_key_is_authenticated_in_one_query(
    ci_key: str, django_assert_num_queries: Any
) -> None:
    client = client_with_key(ci_key)
    with django_assert_num_queries(1) as captured:
        response = client.get(PUBLIC_KEY)
    assert response.status_code == 200
    assert response.wsgi_request.auth.hashed_key == hash_key(ci_key)
    (query,) = captured.captured_queries
    user_table = connection.ops.quote_name("accounts_user")
    assert "accounts_apikey" in query["sql"] and user_table in query["sql"]


@pytest.mark.parametrize("permission", [GateAccess, DeploymentRequestAccess, RegistryAccess])
def test_scope_checks_of_an_authenticated_key_make_no_query(
    ci_key: str, permission: type, django_assert_num_queries: Any
) -> None:
    key = ApiKey.objects.select_related("user").get(hashed_key=hash_key(ci_key))
    request = Request(RequestFactory().get("/api/v1/gate"))
    request.user, request.auth = key.user, key
    with django_assert_num_queries(0):
        assert permission().has_permission(request, None)
        assert PublicRead().has_permission(request, None)

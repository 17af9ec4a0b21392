"""Every response carries the Content-Security-Policy and the other security headers: the
pages and the API alike."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

EXPECTED_DIRECTIVES = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def directives(response: Any) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    parsed = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition(" ")
        parsed[name] = value
    return parsed


def assert_security_headers(response: Any) -> None:
    policy = directives(response)
    for name, value in EXPECTED_DIRECTIVES.items():
        assert policy.get(name) == value, (name, response["Content-Security-Policy"])
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    permissions = response["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()"):
        assert feature in permissions, permissions


def test_the_login_page_carries_the_security_headers(client: Client) -> None:
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert_security_headers(response)


def test_an_api_error_carries_the_security_headers(client: Client) -> None:
    response = client.get("/api/v1/models/")
    assert response.status_code == 401
    assert_security_headers(response)


def test_the_swagger_ui_needs_no_inline_script(client: Client) -> None:
    page = client.get("/api/docs/")
    assert page.status_code == 200
    assert_security_headers(page)
    html = page.content.decode()
    assert "<script>" not in html and "<style>" not in html
    script = client.get("/api/docs/", {"script": ""})
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in script.content.decode()

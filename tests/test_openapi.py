"""The OpenAPI schema generates cleanly, the docs work offline, and every API view names its
permission classes (deny by default)."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.test import APIClient

from core.permissions import ScopedPermission

pytestmark = pytest.mark.django_db

EXPECTED_PATHS = [
    "/api/v1/models/",
    "/api/v1/models/{name}/",
    "/api/v1/models/{name}/risk",
    "/api/v1/models/{name}/retire",
    "/api/v1/models/{name}/versions/",
    "/api/v1/models/{name}/versions/{version}/",
    "/api/v1/models/{name}/versions/{version}/status",
    "/api/v1/models/{name}/versions/{version}/lineage",
    "/api/v1/datasets/",
    "/api/v1/datasets/{name}/",
    "/api/v1/datasets/{name}/retire",
    "/api/v1/datasets/{name}/versions/",
    "/api/v1/datasets/{name}/versions/{version}/",
    "/api/v1/audit/records/",
    "/api/v1/audit/verify",
]


def test_schema_generates_and_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert "/api/v1/models/{name}/versions/" in target.read_text()


def test_schema_endpoint_lists_the_api(api: APIClient):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    for path in EXPECTED_PATHS:
        assert path in schema["paths"], path
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    register = schema["paths"]["/api/v1/models/{name}/versions/"]["post"]
    assert set(register["responses"]) >= {"201", "400", "401", "403", "404", "409"}


def test_swagger_ui_is_served_from_local_static_files_only(api: APIClient):
    response = api.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r"https?://", html), re.findall(r"https?://[^\s\"']+", html)
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html


def _api_views(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _api_views(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            route = prefix + str(entry.pattern)
            view_class = getattr(entry.callback, "cls", None)
            if route.startswith("api/v1/") and view_class is not None:
                yield route, view_class


def test_every_api_view_names_a_scoped_permission_class():
    views = list(_api_views(get_resolver().url_patterns))
    assert len(views) >= len(EXPECTED_PATHS)
    for route, view_class in views:
        # Named on the view itself, not inherited from a base or the settings' default.
        declared = view_class.__dict__.get("permission_classes")
        assert declared, route
        for permission in declared:
            assert permission not in (AllowAny, IsAuthenticated), route
        assert any(issubclass(p, ScopedPermission) for p in declared), route

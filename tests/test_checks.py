"""`manage.py check --deploy` refuses unsafe production configurations: a wildcard host, no
verification keys, the application on the migration role, the application as a superuser."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core import checks
from django.db import connection
from django.test import override_settings

from audit.notes import generate_signer
from tests.support import on_postgres

pytestmark = pytest.mark.django_db

_, VERIFIER = generate_signer("warden.example.org")
SAFE = {
    "ALLOWED_HOSTS": ["warden.example.org"],
    "AUDIT_VERIFICATION_KEYS": [VERIFIER],
}


def pg(user: str, host: str = "db.internal", name: str = "warden") -> dict[str, Any]:
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": user,
        "PASSWORD": "secret",
        "HOST": host,
        "PORT": "5432",
    }


def warden_errors(*, deploy: bool = True) -> set[str]:
    """The ids of the errors Warden's own checks report (Django's own are left out)."""
    messages = checks.run_checks(include_deployment_checks=deploy)
    return {m.id for m in messages if m.id and m.id.startswith("warden.") and m.is_serious()}


def test_a_safe_configuration_passes_the_settings_checks() -> None:
    with override_settings(**SAFE):
        assert warden_errors() - {"warden.E004"} == set()


def test_a_wildcard_in_allowed_hosts_fails_the_deploy_check() -> None:
    with override_settings(**{**SAFE, "ALLOWED_HOSTS": ["warden.example.org", "*"]}):
        assert "warden.E001" in warden_errors()
    with override_settings(**SAFE):
        assert "warden.E001" not in warden_errors()


def test_no_verification_keys_fails_the_deploy_check() -> None:
    with override_settings(**{**SAFE, "AUDIT_VERIFICATION_KEYS": []}):
        assert "warden.E002" in warden_errors()
    with override_settings(**{**SAFE, "AUDIT_VERIFICATION_KEYS": ["not-a-key"]}):
        assert "warden.E002" in warden_errors()
    with override_settings(**SAFE):
        assert "warden.E002" not in warden_errors()


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_the_application_on_the_migration_role_fails_the_deploy_check() -> None:
    same_url = {"default": pg("warden_owner"), "migrations": pg("warden_owner")}
    same_role = {"default": pg("warden_owner"), "migrations": pg("warden_owner", name="postgres")}
    with override_settings(**SAFE, DATABASES=same_url):
        assert "warden.E003" in warden_errors()
    with override_settings(**SAFE, DATABASES=same_role):
        assert "warden.E003" in warden_errors()
    safe = {"default": pg("warden_app"), "migrations": pg("warden_owner")}
    with override_settings(**SAFE, DATABASES=safe):
        assert "warden.E003" not in warden_errors()
    # The same role name on another server is another role.
    elsewhere = {"default": pg("warden"), "migrations": pg("warden", host="db.other")}
    with override_settings(**SAFE, DATABASES=elsewhere):
        assert "warden.E003" not in warden_errors()


def test_the_checks_are_deploy_checks_only() -> None:
    unsafe = {"ALLOWED_HOSTS": ["*"], "AUDIT_VERIFICATION_KEYS": []}
    with override_settings(**unsafe):
        assert warden_errors(deploy=False) == set()
        assert {"warden.E001", "warden.E002"} <= warden_errors()


@pytest.mark.skipif(not on_postgres(), reason="PostgreSQL roles (the PostgreSQL pass)")
def test_the_application_as_a_superuser_fails_the_deploy_check() -> None:
    """The test database's role is the superuser ``postgres``; as a plain role (SET ROLE
    changes ``current_user``, which the check asks about) the check passes. The role is
    created inside the test's transaction, so it is gone when the test ends."""
    with override_settings(**SAFE):
        assert warden_errors() == {"warden.E004"}
        role = f"warden_app_{uuid.uuid4().hex[:12]}"
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE ROLE "{role}" NOSUPERUSER LOGIN')
            cursor.execute(f'SET ROLE "{role}"')
            try:
                assert warden_errors() == set()
            finally:
                cursor.execute("RESET ROLE")


@pytest.mark.database_free
def test_csrf_protection_is_required_of_any_csrf_middleware(settings):
    from governance.checks import check_csrf_protection

    settings.CSRF_COOKIE_SECURE = True
    assert check_csrf_protection() == []
    settings.CSRF_COOKIE_SECURE = False
    assert [m.id for m in check_csrf_protection()] == ["warden.W002"]
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "Csrf" not in m]
    assert [m.id for m in check_csrf_protection()] == ["warden.W001"]

"""Production settings refuse to start without their secrets; with them, deploy checks pass."""

from __future__ import annotations

import pytest

from tests.support import PROD_ENV, manage


@pytest.mark.parametrize("missing", sorted(k for k in PROD_ENV if k != "DJANGO_ENV"))
def test_prod_refuses_to_start_without(missing):
    env = {k: v for k, v in PROD_ENV.items() if k != missing}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert missing in result.stderr


def test_prod_refuses_sqlite():
    result = manage("check", env={**PROD_ENV, "DATABASE_URL": "sqlite:////tmp/x.sqlite3"})
    assert result.returncode != 0
    assert "PostgreSQL" in result.stderr


def test_prod_deploy_check_is_clean():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PROD_ENV)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_prod_cookies_are_secure_script_proof_and_same_site():
    shown = "SESSION_COOKIE_SECURE CSRF_COOKIE_SECURE SESSION_COOKIE_HTTPONLY CSRF_COOKIE_HTTPONLY"
    code = (
        "from django.conf import settings as s; "
        f"print([getattr(s, n) for n in {shown.split()!r}], s.SESSION_COOKIE_SAMESITE, "
        "s.CSRF_COOKIE_SAMESITE, s.SECURE_HSTS_SECONDS > 0)"
    )
    result = manage("shell", "--no-imports", "-c", code, env=PROD_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[True,", "True,", "True,", "True]", "Lax", "Lax", "True"]


def test_prod_shares_throttling_state_through_redis():
    code = "from django.conf import settings as s; print(s.CACHES['default']['LOCATION'])"
    derived = manage("shell", "--no-imports", "-c", code, env=PROD_ENV)
    assert derived.stdout.strip() == PROD_ENV["CELERY_BROKER_URL"], derived.stderr
    given = manage(
        "shell", "--no-imports", "-c", code, env={**PROD_ENV, "CACHE_URL": "redis://cache:6379/1"}
    )
    assert given.stdout.strip() == "redis://cache:6379/1", given.stderr
    amqp = manage("check", env={**PROD_ENV, "CELERY_BROKER_URL": "amqp://mq//"})
    assert amqp.returncode != 0 and "CACHE_URL" in amqp.stderr


def test_secrets_can_come_from_files(tmp_path):
    secret = tmp_path / "secret_key"
    secret.write_text(PROD_ENV["SECRET_KEY"] + "\n")
    env = {k: v for k, v in PROD_ENV.items() if k != "SECRET_KEY"}
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env={**env, "SECRET_KEY_FILE": str(secret)}
    )
    assert result.returncode == 0, result.stderr


def test_envbool_accepts_only_true_or_false():
    result = manage("check", env={"DJANGO_ENV": "dev", "AUDIT_RECORD_CLIENT_INFO": "yes"})
    assert result.returncode != 0
    assert "AUDIT_RECORD_CLIENT_INFO must be 'true' or 'false'" in result.stderr

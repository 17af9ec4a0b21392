"""Production settings refuse to start without their secrets; with them, deploy checks pass."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import TypeVar

import pytest
from django.db import connection

from audit.notes import generate_signer
from tests.support import PROD_ENV, manage, on_postgres

T = TypeVar("T")


def on_postgres_only(test: T) -> T:
    """Runs in the PostgreSQL pass only: ``check --deploy`` asks the server for the role. It is
    marked ``postgres`` because it asks for no test database, which that pass would skip."""
    skip = pytest.mark.skipif(
        not on_postgres(), reason="`check --deploy` asks the server for the role (PostgreSQL pass)"
    )
    return pytest.mark.postgres(skip(test))


def server_url(user: str, password: str = "") -> str:
    """A URL of the maintenance database on the server this test run uses, as ``user``."""
    db = connection.settings_dict
    credentials = user + (f":{password}" if password else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/postgres"


@pytest.fixture
def safe_prod_env() -> Iterator[dict[str, str]]:
    """PROD_ENV with a real application role: a plain login role on the test server (dropped
    afterwards), a distinct migration role and a verification key."""
    import psycopg

    db = connection.settings_dict
    role = f"warden_app_{secrets.token_hex(6)}"
    password = secrets.token_hex(16)
    admin = psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )
    with admin:
        admin.execute(f"CREATE ROLE \"{role}\" LOGIN NOSUPERUSER PASSWORD '{password}'")
        try:
            yield {
                **PROD_ENV,
                "DATABASE_URL": server_url(role, password),
                "MIGRATION_DATABASE_URL": server_url("warden_owner"),
                "AUDIT_VERIFICATION_KEYS": generate_signer("warden.example.org")[1],
            }
        finally:
            admin.execute(f'DROP ROLE "{role}"')


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


@on_postgres_only
def test_prod_deploy_check_is_clean(safe_prod_env):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=safe_prod_env)
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


@on_postgres_only
def test_prod_deploy_check_refuses_a_superuser_application_role(safe_prod_env):
    superuser = {**safe_prod_env, "DATABASE_URL": server_url(connection.settings_dict["USER"])}
    result = manage("check", "--deploy", env=superuser)
    assert result.returncode != 0
    assert "warden.E004" in result.stderr


@on_postgres_only
def test_prod_deploy_check_refuses_the_migration_role_for_the_application(safe_prod_env):
    env = {**safe_prod_env, "MIGRATION_DATABASE_URL": safe_prod_env["DATABASE_URL"]}
    result = manage("check", "--deploy", env=env)
    assert result.returncode != 0
    assert "warden.E003" in result.stderr


@on_postgres_only
def test_secrets_can_come_from_files(tmp_path, safe_prod_env):
    secret = tmp_path / "secret_key"
    secret.write_text(PROD_ENV["SECRET_KEY"] + "\n")
    env = {k: v for k, v in safe_prod_env.items() if k != "SECRET_KEY"}
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env={**env, "SECRET_KEY_FILE": str(secret)}
    )
    assert result.returncode == 0, result.stderr


def test_envbool_accepts_only_true_or_false():
    result = manage("check", env={"DJANGO_ENV": "dev", "AUDIT_RECORD_CLIENT_INFO": "yes"})
    assert result.returncode != 0
    assert "AUDIT_RECORD_CLIENT_INFO must be 'true' or 'false'" in result.stderr


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgres://warden:s%40cret@db.internal:5433/warden",
            {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": "warden",
                "USER": "warden",
                "PASSWORD": "s@cret",
                "HOST": "db.internal",
                "PORT": 5433,
                "CONN_MAX_AGE": 0,
                "OPTIONS": {},
            },
        ),
        (
            "postgresql://warden@db/warden?sslmode=require&connect_timeout=5",
            {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": "warden",
                "HOST": "db",
                "PORT": "",
                "CONN_MAX_AGE": 0,
                "OPTIONS": {"sslmode": "require", "connect_timeout": 5},
            },
        ),
        (
            "pgsql://warden@db/warden?conn_max_age=60&conn_health_checks=true",
            {
                "ENGINE": "django.db.backends.postgresql",
                "CONN_MAX_AGE": 60,
                "CONN_HEALTH_CHECKS": True,
                "OPTIONS": {},
            },
        ),
    ],
)
def test_database_urls_become_django_settings(url: str, expected: dict[str, object]) -> None:
    from governance.settings.base import database_from_url

    config = database_from_url(url)
    assert {key: config.get(key) for key in expected} == expected


def test_sqlite_urls_get_the_audit_logs_locking_options(tmp_path) -> None:
    from governance.settings.base import database_from_url

    config = database_from_url(f"sqlite:///{tmp_path}/warden.sqlite3")
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == f"{tmp_path}/warden.sqlite3"
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]
    assert database_from_url("sqlite://:memory:")["NAME"] == ":memory:"


def test_database_url_settings_win_over_the_callers_defaults() -> None:
    from governance.settings.base import database_from_url

    kept = database_from_url(
        "postgres://warden@db/warden", conn_max_age=600, conn_health_checks=True
    )
    assert (kept["CONN_MAX_AGE"], kept["CONN_HEALTH_CHECKS"]) == (600, True)
    closed = database_from_url(
        "postgres://warden@db/warden?conn_max_age=0&conn_health_checks=false",
        conn_max_age=600,
        conn_health_checks=True,
    )
    assert (closed["CONN_MAX_AGE"], closed["CONN_HEALTH_CHECKS"]) == (0, False)
    assert (
        database_from_url("postgres://warden@db/warden?conn_max_age=none")["CONN_MAX_AGE"] is None
    )


DATABASE_CONNECTION_SETTINGS = (
    "from django.conf import settings as s; "
    "print(*[(s.DATABASES[a]['CONN_MAX_AGE'], s.DATABASES[a]['CONN_HEALTH_CHECKS']) "
    "for a in s.DATABASES], sep=';')"
)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "(600, True);(0, False)"),
        ({"DATABASE_CONN_MAX_AGE": "60"}, "(60, True);(0, False)"),
        (
            {"DATABASE_URL": PROD_ENV["DATABASE_URL"] + "?conn_max_age=0&conn_health_checks=false"},
            "(0, False);(0, False)",
        ),
    ],
)
def test_prod_keeps_application_connections_and_closes_the_migration_roles(
    overrides: dict[str, str], expected: str
) -> None:
    result = manage(
        "shell", "--no-imports", "-c", DATABASE_CONNECTION_SETTINGS, env={**PROD_ENV, **overrides}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_dev_closes_its_database_connection_after_each_request() -> None:
    env = {"DJANGO_ENV": "dev", "DATABASE_URL": PROD_ENV["DATABASE_URL"]}
    result = manage("shell", "--no-imports", "-c", DATABASE_CONNECTION_SETTINGS, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(0, False)"


BACKEND_PER_REQUEST = (
    "from django.core.signals import request_finished, request_started\n"
    "from django.db import connection\n"
    "pids = []\n"
    "for _ in range(3):\n"
    "    request_started.send(sender=None)\n"
    "    with connection.cursor() as cursor:\n"
    "        cursor.execute('SELECT pg_backend_pid()')\n"
    "        pids.append(cursor.fetchone()[0])\n"
    "    request_finished.send(sender=None)\n"
    "print(len(set(pids)))\n"
)


@on_postgres_only
def test_prod_serves_consecutive_requests_on_one_database_connection(safe_prod_env):
    kept = manage("shell", "--no-imports", "-c", BACKEND_PER_REQUEST, env=safe_prod_env)
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.strip() == "1"
    per_request = {
        **safe_prod_env,
        "DATABASE_URL": safe_prod_env["DATABASE_URL"] + "?conn_max_age=0",
    }
    closed = manage("shell", "--no-imports", "-c", BACKEND_PER_REQUEST, env=per_request)
    assert closed.returncode == 0, closed.stderr
    assert closed.stdout.strip() == "3"

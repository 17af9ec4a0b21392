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

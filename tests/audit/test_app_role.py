"""The application's PostgreSQL role (AUDIT_SPEC.md section 4): ``audit/sql/app_role.sql``
applied to a throwaway role on the test database, which then connects on its own. It may
append to the log and use the other tables, and every way of changing the log is refused by
privileges, before any trigger is reached."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connection
from psycopg import sql

from tests.support import on_postgres

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = Path(__file__).resolve().parents[2] / "audit" / "sql" / "app_role.sql"
APPEND_ONLY = ("audit_auditrecord", "audit_checkpoint", "audit_treenode")


def _connect(**overrides: Any) -> psycopg.Connection[Any]:
    db = connection.settings_dict
    params = {
        "host": db["HOST"] or "127.0.0.1",
        "port": db["PORT"] or 5432,
        "dbname": db["NAME"],
        "user": db["USER"],
        "password": db.get("PASSWORD") or None,
        **overrides,
    }
    return psycopg.connect(autocommit=True, **{k: v for k, v in params.items() if v is not None})


def _apply(admin: psycopg.Connection[Any], role: str) -> None:
    admin.execute("SELECT set_config('warden.app_role', %s, false)", [role])
    admin.execute(SCRIPT.read_text(encoding="utf-8"))


@pytest.fixture
def owner() -> Iterator[psycopg.Connection[Any]]:
    """A connection as the test database's owner (the role that ran the migrations)."""
    if not on_postgres():
        pytest.skip("database roles are PostgreSQL's: this runs in the PostgreSQL pass")
    with _connect() as admin:
        yield admin


@pytest.fixture
def app_role(owner: psycopg.Connection[Any]) -> Iterator[str]:
    """A throwaway login role with the script applied, dropped at the end."""
    role = f"warden_app_test_{uuid.uuid4().hex[:12]}"
    owner.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        _apply(owner, role)
        yield role
    finally:
        owner.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        owner.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _refused(app: psycopg.Connection[Any], statement: str) -> str:
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
        app.execute(statement)
    message = str(refused.value)
    # Refused by the privileges themselves, not by the append-only triggers behind them.
    assert "append-only" not in message
    assert "permission denied" in message or "must be owner" in message, message
    return message


def test_the_application_role_appends_but_cannot_change_the_log(app_role: str) -> None:
    with _connect(user=app_role, password=None) as app:
        app.execute(
            "INSERT INTO audit_loghead (log, size, tip, last_ts) VALUES (%s, 1, %s, '')",
            ["role.test/log", "a" * 64],
        )
        with app.transaction():  # the appenders' lock on the head row
            app.execute("SELECT * FROM audit_loghead WHERE log = %s FOR UPDATE", ["role.test/log"])
            app.execute("UPDATE audit_loghead SET size = 2 WHERE log = %s", ["role.test/log"])
        app.execute(
            "INSERT INTO audit_auditrecord (log, seq, prev, leaf, body, ts, action, actor_type, "
            "actor_id, object_type, object_id, scope_model) VALUES "
            "(%s, 0, %s, %s, '{}', now(), 'test.appended', 'system', 'warden', 't', '0', '')",
            ["role.test/log", "0" * 64, "b" * 64],
        )
        app.execute(
            "INSERT INTO audit_checkpoint (log, size, root, note, key_names, created_at) "
            "VALUES (%s, 1, %s, 'note', '[]', now())",
            ["role.test/log", "c" * 64],
        )
        app.execute(
            "INSERT INTO audit_treenode (log, level, index, hash) VALUES (%s, 8, 0, %s)",
            ["role.test/log", "d" * 64],
        )
        for table in APPEND_ONLY:
            assert app.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)
            _refused(app, f"UPDATE {table} SET log = 'forged'")
            _refused(app, f"DELETE FROM {table}")
            _refused(app, f"TRUNCATE {table}")
            _refused(app, f"ALTER TABLE {table} DISABLE TRIGGER {table}_no_update")
            _refused(app, f"ALTER TABLE {table} DISABLE TRIGGER ALL")
            _refused(app, f"DROP TABLE {table}")
        _refused(app, "DELETE FROM audit_loghead")
        _refused(app, "TRUNCATE audit_loghead")
        _refused(app, "ALTER TABLE audit_loghead ADD COLUMN forged text")


def test_the_application_role_keeps_the_usual_rights_on_other_tables(app_role: str) -> None:
    with _connect(user=app_role, password=None) as app:
        app.execute(
            "INSERT INTO django_session (session_key, session_data, expire_date) "
            "VALUES ('role-test', 'x', now())"
        )
        app.execute("UPDATE django_session SET session_data = 'y' WHERE session_key = 'role-test'")
        app.execute("DELETE FROM django_session WHERE session_key = 'role-test'")
        _refused(app, "TRUNCATE django_session")


def test_the_script_is_idempotent(owner: psycopg.Connection[Any], app_role: str) -> None:
    _apply(owner, app_role)
    with _connect(user=app_role, password=None) as app:
        _refused(app, "DELETE FROM audit_auditrecord")


def test_the_script_needs_a_role_that_cannot_bypass_privileges(
    owner: psycopg.Connection[Any],
) -> None:
    with pytest.raises(psycopg.errors.RaiseException, match=r"set warden\.app_role"):
        _apply(owner, "")
    with pytest.raises(psycopg.errors.RaiseException, match="does not exist"):
        _apply(owner, f"missing_{uuid.uuid4().hex[:8]}")
    current = owner.execute("SELECT current_user").fetchone()
    assert current is not None
    with pytest.raises(psycopg.errors.RaiseException, match=r"superuser|owner"):
        _apply(owner, current[0])

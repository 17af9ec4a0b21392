"""Append-only at three depths (AUDIT_SPEC section 4): the model, the database triggers, and
the system check that reports missing triggers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core import checks
from django.db import DatabaseError, connection, transaction

from audit import triggers
from audit.models import AppendOnlyError, AuditRecord
from tests.audit.helpers import append_log, stored
from tests.support import on_postgres

pytestmark = pytest.mark.django_db


@pytest.fixture
def log() -> list[AuditRecord]:
    return append_log(3)


def _edit_and_save(record: AuditRecord) -> None:
    record.body = record.body.replace("object 1", "object X")
    record.save()


ORM_WRITES: dict[str, Callable[[AuditRecord], Any]] = {
    "save-of-stored-record": _edit_and_save,
    "save-with-update-fields": lambda r: r.save(update_fields=["action"]),
    "instance-delete": lambda r: r.delete(),
    "queryset-update": lambda r: AuditRecord.objects.filter(pk=r.pk).update(action="x.y"),
    "queryset-delete": lambda r: AuditRecord.objects.filter(pk=r.pk).delete(),
    "all-delete": lambda r: AuditRecord.objects.all().delete(),
    "bulk-update": lambda r: AuditRecord.objects.bulk_update([r], ["action"]),
    "update-or-create": lambda r: AuditRecord.objects.update_or_create(
        pk=r.pk, defaults={"action": "x.y"}
    ),
}


@pytest.mark.parametrize("write", ORM_WRITES.values(), ids=ORM_WRITES.keys())
def test_the_model_refuses_changes(log: list[AuditRecord], write: Callable[..., Any]) -> None:
    before = stored()
    record = AuditRecord.objects.get(seq=1)
    with pytest.raises(AppendOnlyError):
        write(record)
    # The records stay as they were; the refusal itself is recorded after them.
    assert stored()[: len(before)] == before
    assert [r.action for r in AuditRecord.objects.filter(seq__gte=len(before))] == [
        "audit.change_refused"
    ]


RAW_SQL = {
    "update-body": "UPDATE audit_auditrecord SET body = '{}' WHERE seq = 1",
    "update-index-column": "UPDATE audit_auditrecord SET action = 'forged.action'",
    "delete-one": "DELETE FROM audit_auditrecord WHERE seq = 2",
    "delete-all": "DELETE FROM audit_auditrecord",
}


@pytest.mark.parametrize("sql", RAW_SQL.values(), ids=RAW_SQL.keys())
def test_the_database_refuses_raw_updates_and_deletes(log: list[AuditRecord], sql: str) -> None:
    before = stored()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert stored() == before


def test_postgres_refuses_truncate(log: list[AuditRecord]) -> None:
    if not on_postgres():
        pytest.skip("TRUNCATE triggers exist on PostgreSQL only (SQLite has no TRUNCATE)")
    before = stored()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("TRUNCATE audit_auditrecord")
    assert stored() == before


def test_postgres_triggers_fire_even_in_replica_mode(log: list[AuditRecord]) -> None:
    """``ENABLE ALWAYS``: ``session_replication_role = replica`` (how logical replication and
    some restore tools silence triggers) does not silence these."""
    if not on_postgres():
        pytest.skip("session_replication_role is a PostgreSQL setting")
    before = stored()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("DELETE FROM audit_auditrecord")
    assert stored() == before


def test_appending_is_still_allowed(log: list[AuditRecord]) -> None:
    """The triggers refuse changes, not inserts."""
    append_log(1)
    assert [seq for seq, *_ in stored()] == [0, 1, 2, 3]


def test_the_triggers_exist_after_migrate() -> None:
    assert triggers.missing(connection) == []
    expected = {"audit_auditrecord_no_update", "audit_auditrecord_no_delete"}
    if on_postgres():
        expected.add("audit_auditrecord_no_truncate")
    else:
        expected.add("audit_auditrecord_advance_head")
    assert triggers.present(connection, "audit_auditrecord") == expected


def _audit_errors() -> list[checks.CheckMessage]:
    messages = checks.run_checks(tags=[checks.Tags.database], databases=[connection.alias])
    return [m for m in messages if m.id == "audit.E001"]


@pytest.mark.parametrize("dropped", ["no_update", "no_delete", "no_truncate", "advance_head"])
def test_the_system_check_reports_a_dropped_trigger(dropped: str) -> None:
    if dropped == "no_truncate" and not on_postgres():
        pytest.skip("SQLite has no TRUNCATE trigger")
    if dropped == "advance_head" and on_postgres():
        pytest.skip("PostgreSQL advances the head in the append's own statement")
    assert _audit_errors() == []
    name = f"audit_auditrecord_{dropped}"
    with connection.cursor() as cursor:
        if on_postgres():
            cursor.execute(f"DROP TRIGGER {name} ON audit_auditrecord")
        else:
            cursor.execute(f"DROP TRIGGER {name}")
    try:
        errors = _audit_errors()
        assert len(errors) == 1
        assert f"audit_auditrecord.{name}" in errors[0].msg
        assert triggers.missing(connection) == [f"audit_auditrecord.{name}"]
    finally:
        triggers.install(connection)
    assert _audit_errors() == []


def test_the_system_check_reports_a_trigger_disabled_on_postgres() -> None:
    """A trigger that exists but is no longer ``ENABLE ALWAYS`` counts as missing."""
    if not on_postgres():
        pytest.skip("trigger enable modes are a PostgreSQL feature")
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditrecord DISABLE TRIGGER audit_auditrecord_no_delete")
    try:
        assert [e.msg for e in _audit_errors()] == [
            "append-only triggers missing on database 'default': "
            "audit_auditrecord.audit_auditrecord_no_delete"
        ]
    finally:
        triggers.install(connection)
    assert _audit_errors() == []

"""Database triggers that refuse UPDATE, DELETE and (PostgreSQL) TRUNCATE on audit tables,
and on SQLite the one that advances a log's head as its records are inserted.

Migrations install them on SQLite and PostgreSQL. On SQLite a migration that rebuilds a table
(AlterField and friends) silently drops its triggers, so such migrations call ``install``
again, and the system check in ``audit.checks`` reports any that are missing.
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

APPEND_ONLY_TABLES = ("audit_auditrecord", "audit_checkpoint", "audit_treenode")
RECORD_TABLE = "audit_auditrecord"
HEAD_TRIGGER = "audit_auditrecord_advance_head"

# SQLite cannot put an INSERT inside a statement that also updates, as PostgreSQL's
# data-modifying CTE does, so there the head follows each inserted row that extends it:
# seq equal to the head's size and prev equal to its tip. A row that does not extend the head
# leaves it alone (and UNIQUE(log, seq) and UNIQUE(log, prev) refuse a fork), as on PostgreSQL.
SQLITE_HEAD_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS audit_auditrecord_advance_head AFTER INSERT ON audit_auditrecord
BEGIN
    UPDATE audit_loghead
    SET size = NEW.seq + 1, tip = NEW.leaf, last_ts = json_extract(NEW.body, '$.ts')
    WHERE log = NEW.log AND size = NEW.seq AND tip = NEW.prev;
END
"""

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""


def trigger_names(table: str) -> list[str]:
    """The names of the triggers that protect ``table``."""
    return [f"{table}_no_update", f"{table}_no_delete", f"{table}_no_truncate"]


def _sqlite_statements(table: str) -> list[str]:
    no_update, no_delete, _ = trigger_names(table)
    return [
        f"CREATE TRIGGER IF NOT EXISTS {no_update} BEFORE UPDATE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'audit log is append-only: UPDATE on {table} refused'); END",
        f"CREATE TRIGGER IF NOT EXISTS {no_delete} BEFORE DELETE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'audit log is append-only: DELETE on {table} refused'); END",
    ]


def _postgres_statements(table: str) -> list[str]:
    no_update, no_delete, no_truncate = trigger_names(table)
    return [
        f"DROP TRIGGER IF EXISTS {no_update} ON {table}",
        f"DROP TRIGGER IF EXISTS {no_delete} ON {table}",
        f"DROP TRIGGER IF EXISTS {no_truncate} ON {table}",
        f"CREATE TRIGGER {no_update} BEFORE UPDATE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()",
        f"CREATE TRIGGER {no_delete} BEFORE DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()",
        f"CREATE TRIGGER {no_truncate} BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()",
        # ALWAYS: the triggers fire even under session_replication_role = replica.
        f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {no_update}",
        f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {no_delete}",
        f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {no_truncate}",
    ]


def install(connection: BaseDatabaseWrapper, tables: tuple[str, ...] = APPEND_ONLY_TABLES) -> None:
    """Create (or re-create) the append-only triggers on ``tables`` (on SQLite with the
    records' table also the trigger that advances the head)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(PG_FUNCTION)
            for table in tables:
                for statement in _postgres_statements(table):
                    cursor.execute(statement)
        elif connection.vendor == "sqlite":
            for table in tables:
                for statement in _sqlite_statements(table):
                    cursor.execute(statement)
            if RECORD_TABLE in tables:
                cursor.execute(SQLITE_HEAD_TRIGGER)
        else:
            raise NotImplementedError(f"append-only triggers for {connection.vendor}")


def uninstall(
    connection: BaseDatabaseWrapper, tables: tuple[str, ...] = APPEND_ONLY_TABLES
) -> None:
    """Drop the triggers (migrations reversing, and test fixtures as the database owner)."""
    with connection.cursor() as cursor:
        for table in tables:
            for name in trigger_names(table):
                if connection.vendor == "postgresql":
                    cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
                else:
                    cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
            if table == RECORD_TABLE and connection.vendor == "sqlite":
                cursor.execute(f"DROP TRIGGER IF EXISTS {HEAD_TRIGGER}")


def expected(connection: BaseDatabaseWrapper, table: str) -> list[str]:
    """The trigger names ``table`` must have on this database."""
    names = trigger_names(table)
    if connection.vendor == "postgresql":
        return names
    return names[:2] + ([HEAD_TRIGGER] if table == RECORD_TABLE else [])


def present(connection: BaseDatabaseWrapper, table: str) -> set[str]:
    """The names of the append-only triggers currently enabled on ``table``."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass "
                "AND NOT tgisinternal AND tgenabled = 'A'",
                [table],
            )
        else:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table]
            )
        return {row[0] for row in cursor.fetchall()}


def missing(connection: BaseDatabaseWrapper) -> list[str]:
    """Every expected trigger that is absent or not enabled ALWAYS."""
    gaps: list[str] = []
    for table in APPEND_ONLY_TABLES:
        have = present(connection, table)
        gaps.extend(f"{table}.{name}" for name in expected(connection, table) if name not in have)
    return gaps

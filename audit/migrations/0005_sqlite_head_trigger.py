"""On SQLite, a trigger that advances the log's head with each record that extends it, so
that an append writes the records and the head in one statement (PostgreSQL does it with a
data-modifying CTE and needs no trigger)."""

from django.db import migrations

# Named here rather than taken from audit.triggers, so that this migration keeps doing the
# same thing if that module changes.
HEAD_TRIGGER = "audit_auditrecord_advance_head"
CREATE = f"""
CREATE TRIGGER IF NOT EXISTS {HEAD_TRIGGER} AFTER INSERT ON audit_auditrecord
BEGIN
    UPDATE audit_loghead
    SET size = NEW.seq + 1, tip = NEW.leaf, last_ts = json_extract(NEW.body, '$.ts')
    WHERE log = NEW.log AND size = NEW.seq AND tip = NEW.prev;
END
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(CREATE)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {HEAD_TRIGGER}")


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_auditexport")]

    operations = [migrations.RunPython(install, uninstall)]

"""Install the triggers that refuse UPDATE, DELETE and TRUNCATE on audit records."""

from django.db import migrations

# The table this migration protects, named here: later tables join
# audit.triggers.APPEND_ONLY_TABLES in the migrations that create them.
TABLES = ("audit_auditrecord",)


def install(apps, schema_editor):
    from audit import triggers

    triggers.install(schema_editor.connection, TABLES)


def uninstall(apps, schema_editor):
    from audit import triggers

    triggers.uninstall(schema_editor.connection, TABLES)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.RunPython(install, uninstall),
        migrations.AlterModelOptions(
            name="auditrecord",
            options={
                "ordering": ["log", "seq"],
                "permissions": [("export_auditrecord", "Can export the audit log")],
            },
        ),
    ]

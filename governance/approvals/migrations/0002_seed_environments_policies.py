"""Seed the environments dev, test, prod and the version-1 sign-off policies of each risk tier."""

from django.db import migrations

from governance.approvals.defaults import seed


def seed_defaults(apps, schema_editor):
    seed(
        apps.get_model("approvals", "Environment"),
        apps.get_model("approvals", "SignOffPolicy"),
        using=schema_editor.connection.alias,
    )


class Migration(migrations.Migration):
    dependencies = [("approvals", "0001_initial")]

    operations = [migrations.RunPython(seed_defaults, migrations.RunPython.noop)]

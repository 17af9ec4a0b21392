"""Seed the role groups; their permissions are kept in sync after every migrate."""

from django.db import migrations

ROLES = [
    "data_scientist",
    "ml_engineer",
    "validator",
    "risk_officer",
    "compliance_officer",
    "auditor",
    "admin",
]


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.using(schema_editor.connection.alias).get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]

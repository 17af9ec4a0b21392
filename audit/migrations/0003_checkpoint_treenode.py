"""Signed checkpoints and the cached Merkle tree nodes, both append-only like the records."""

import django.utils.timezone
from django.db import migrations, models

# Named here rather than taken from audit.triggers.APPEND_ONLY_TABLES, so that this migration
# keeps doing the same thing when later tables join that list.
TABLES = ("audit_checkpoint", "audit_treenode")


def install(apps, schema_editor):
    from audit import triggers

    triggers.install(schema_editor.connection, TABLES)


def uninstall(apps, schema_editor):
    from audit import triggers

    triggers.uninstall(schema_editor.connection, TABLES)


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0002_append_only_triggers'),
    ]

    operations = [
        migrations.CreateModel(
            name='Checkpoint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('log', models.CharField(max_length=200)),
                ('size', models.BigIntegerField()),
                ('root', models.CharField(help_text='Merkle tree hash (RFC 9162), hex', max_length=64)),
                ('note', models.TextField(help_text='the exact signed note (C2SP tlog-checkpoint)')),
                ('key_names', models.JSONField(default=list, help_text='names of the keys that signed')),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
            ],
            options={
                'ordering': ['log', 'size'],
                'get_latest_by': 'size',
                'constraints': [models.UniqueConstraint(fields=('log', 'size'), name='audit_checkpoint_unique_size')],
            },
        ),
        migrations.CreateModel(
            name='TreeNode',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('log', models.CharField(max_length=200)),
                ('level', models.PositiveSmallIntegerField()),
                ('index', models.BigIntegerField()),
                ('hash', models.CharField(help_text='SHA-256 node hash, hex', max_length=64)),
            ],
            options={
                'ordering': ['log', 'level', 'index'],
                'constraints': [models.UniqueConstraint(fields=('log', 'level', 'index'), name='audit_treenode_unique_node')],
            },
        ),
        migrations.RunPython(install, uninstall),
    ]

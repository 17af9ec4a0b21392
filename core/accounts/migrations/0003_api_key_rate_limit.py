import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_role_groups"),
    ]

    operations = [
        migrations.AddField(
            model_name="apikey",
            name="rate_limit",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="requests a minute; empty for the installation's default",
                null=True,
                validators=[django.core.validators.MinValueValidator(1)],
            ),
        ),
        migrations.AddConstraint(
            model_name="apikey",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("rate_limit__isnull", True), ("rate_limit__gte", 1), _connector="OR"
                ),
                name="api_key_rate_limit_positive",
            ),
        ),
    ]

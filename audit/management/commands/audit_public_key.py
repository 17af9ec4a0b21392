"""``manage.py audit_public_key``: the verification keys, one line each."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit import keys


class Command(BaseCommand):
    help = (
        "Print the trusted verification key lines (<name>+<hex id>+<base64>): "
        "AUDIT_VERIFICATION_KEYS, then the public half of each configured signing key."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            lines = keys.verification_key_lines()
        except keys.KeyConfigurationError as exc:
            raise CommandError(str(exc)) from exc
        if not lines:
            raise CommandError(
                "no verification key: set AUDIT_VERIFICATION_KEYS or AUDIT_SIGNING_KEY_FILE"
            )
        for line in lines:
            self.stdout.write(line)

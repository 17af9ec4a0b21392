"""``manage.py audit_keygen --name NAME --out FILE``: a new checkpoint signing key."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import keys


class Command(BaseCommand):
    help = (
        "Generate an Ed25519 checkpoint signing key into a new file (mode 0600; an existing "
        "file is never overwritten) and print its verification key line on stdout."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--name",
            default=None,
            help="the key's name (default AUDIT_KEY_NAME, else the origin's host); a rotated "
            "key needs a new name",
        )
        parser.add_argument("--out", required=True, help="the key file to create")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["out"])
        name = options["name"] or keys.default_key_name()
        try:
            verifier_key = keys.generate_key_file(path, name)
        except FileExistsError:
            raise CommandError(f"{path} exists: refusing to overwrite a key file") from None
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from exc
        except keys.KeyConfigurationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(verifier_key)

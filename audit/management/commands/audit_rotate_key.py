"""``manage.py audit_rotate_key --new-key-file FILE``: record a signing key rotation.

The procedure (README, "Signed checkpoints"): generate the new key with a new name
(``audit_keygen``), publish its verification key, add its file to ``AUDIT_SIGNING_KEY_FILE``
after the old one, then run this: it appends an ``audit.key_rotated`` record naming the old and
new keys and signs a checkpoint covering it with both. Later, drop the old file from
``AUDIT_SIGNING_KEY_FILE`` and keep its verification key in ``AUDIT_VERIFICATION_KEYS``.
"""

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import keys
from audit.checkpoints import CheckpointRefused, signing_key_rotate
from audit.management.commands.audit_checkpoint import ALARM_EXIT


class Command(BaseCommand):
    help = "Record a checkpoint signing key rotation and sign a checkpoint with old and new keys."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--new-key-file", required=True, help="the new key's file (0600)")
        parser.add_argument("--reason", default=None, help="why the key is rotated")
        parser.add_argument("--database", default="default", help="database alias")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            record, result = signing_key_rotate(
                new_key_file=Path(options["new_key_file"]),
                reason=options["reason"],
                using=options["database"],
            )
        except keys.KeyConfigurationError as exc:
            raise CommandError(str(exc)) from exc
        except CheckpointRefused as exc:
            self.stderr.write(f"the rotation is recorded, but no checkpoint: {exc.message}")
            sys.exit(ALARM_EXIT)
        self.stdout.write(f"recorded audit.key_rotated as seq {record.seq}")
        if result.checkpoint is not None:
            self.stdout.write(
                f"checkpoint {result.checkpoint.size} signed by "
                f"{', '.join(result.checkpoint.key_names)}"
            )
            self.stdout.write("")
            self.stdout.write(result.checkpoint.note, ending="")

"""``manage.py audit_checkpoint``: sign a checkpoint of the log now.

Exit 0 when a checkpoint was signed or there was nothing new to sign, 2 on an alarm (a fork,
a truncation, records or checkpoints that do not verify: nothing is signed, the notes that
show the problem are printed), 1 on a configuration error (no usable key).
"""

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import keys
from audit.checkpoints import CheckpointRefused, IntegrityAlarm, checkpoint_create

ALARM_EXIT = 2


class Command(BaseCommand):
    help = "Sign, store and publish a checkpoint of the audit log at its current size."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default="default", help="database alias")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = checkpoint_create(using=options["database"])
        except keys.KeyConfigurationError as exc:
            raise CommandError(str(exc)) from exc
        except CheckpointRefused as exc:
            kind = "ALARM" if isinstance(exc, IntegrityAlarm) else "REFUSED"
            self.stderr.write(f"{kind} ({type(exc).__name__}): {exc.message}")
            for note in exc.notes:
                self.stderr.write(f"\n{note}")
            sys.exit(ALARM_EXIT if isinstance(exc, IntegrityAlarm) else 1)
        checkpoint = result.checkpoint
        self.stdout.write(result.detail)
        if checkpoint is not None:
            self.stdout.write(f"size {checkpoint.size}")
            self.stdout.write(f"root {checkpoint.root}")
            self.stdout.write("")
            self.stdout.write(checkpoint.note, ending="")

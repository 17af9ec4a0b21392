"""How the export commands (``audit_export``, ``regulator_package``) report a failed export."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.exports import ExportFailed
from audit.management.commands.audit_checkpoint import ALARM_EXIT
from core.errors import DomainError


@contextlib.contextmanager
def export_errors(command: BaseCommand, out: Path) -> Iterator[None]:
    """A refusal or a failed export is the command's error (exit 1); a checkpointer alarm is
    written with its notes and exits ``ALARM_EXIT`` (2); a file that cannot be written says
    which."""
    try:
        yield
    except DomainError as exc:
        raise CommandError(exc.message) from exc
    except ExportFailed as exc:
        if not exc.alarm:
            raise CommandError(exc.message) from exc
        command.stderr.write(f"ALARM: {exc.message}")
        for note in exc.notes:
            command.stderr.write(f"\n{note}")
        sys.exit(ALARM_EXIT)
    except OSError as exc:
        raise CommandError(f"cannot write {out}: {exc}") from exc

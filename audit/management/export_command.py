"""What the export commands (``audit_export``, ``regulator_package``) share: how they read a
time option and how they report a failed export."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.exports import ExportFailed
from audit.management.commands.audit_checkpoint import ALARM_EXIT
from core.errors import DomainError

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_time(option: str, value: str | None, *, dates: bool = False) -> dt.datetime | None:
    """An ISO 8601 time with a zone (with ``dates``, also a bare date: midnight UTC);
    ``CommandError`` otherwise."""
    if value is None:
        return None
    text = value.strip()
    if dates and _DATE_ONLY.match(text):
        text += "T00:00:00+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        example = "2026-01-31 or 2026-01-31T00:00:00Z" if dates else "2026-01-31T00:00:00Z"
        kind = "time or date" if dates else "time"
        raise CommandError(
            f"{option} {value!r} is not an ISO 8601 {kind} (e.g. {example})"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise CommandError(
            f"{option} {value!r} has no time zone: add Z or an offset such as +02:00"
        )
    return parsed


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

"""``manage.py audit_export --out FILE.zip [--model NAME] [--since T] [--until T]
[--prior-size N] [--as USERNAME]``: write an export bundle (docs/audit-bundle.md).

Without a filter the bundle is a full export, ending at a checkpoint signed first (so this
runs where the signing key is, like ``audit_checkpoint``); ``--model``, ``--since``
(inclusive) and ``--until`` (exclusive) make it partial. Times are ISO 8601 with a time zone
(``2026-01-31T00:00:00Z``, ``...+02:00``); a time without one is refused. The file is written
next to ``--out`` under a temporary name and then given its name; an existing file is never
overwritten. The export is recorded in the log (``audit.exported``) with the bundle's SHA-256.

Who exports: ``--as USERNAME`` names an active user holding ``audit.export_auditrecord`` (as
``create_service_account --as`` names its administrator; recorded with ``auth`` ``cli``);
without it, the operating-system user running the command, as a ``system`` actor.

Prints one line: the file, kind, record count, checkpoint, size and SHA-256. Exit 0 on
success, 1 on any refusal or error (the message says why), 2 when the checkpointer raised an
alarm (a fork, a truncation, records that do not verify), as ``audit_checkpoint`` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.exports import bundle_export, export_permitted, operator_actor
from audit.management.export_command import export_errors, parse_time
from core.accounts.callers import Caller
from core.accounts.models import User
from core.actors import Actor


class Command(BaseCommand):
    help = "Write an audit export bundle (zip) and record the export in the log."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", required=True, help="the zip to write (must not exist)")
        parser.add_argument("--model", default=None, help="only records of this model")
        parser.add_argument("--since", default=None, help="only records at or after (ISO 8601)")
        parser.add_argument("--until", default=None, help="only records before (ISO 8601)")
        parser.add_argument(
            "--prior-size",
            type=int,
            default=None,
            help="a signed checkpoint size to prove consistency from",
        )
        parser.add_argument(
            "--as",
            dest="operator",
            default=None,
            help="the user exporting (default: the operating-system user, as a system actor)",
        )
        parser.add_argument("--database", default="default", help="database alias")

    def _actor(self, username: str | None) -> Actor:
        if username is None:
            return operator_actor()
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {username!r}")
        if not export_permitted(user):
            raise CommandError(
                f"{username} may not export the audit log (needs audit.export_auditrecord)"
            )
        return Caller(user=user, auth="cli").actor

    def handle(self, *args: Any, **options: Any) -> None:
        since = parse_time("--since", options["since"])
        until = parse_time("--until", options["until"])
        actor = self._actor(options["operator"])
        out = Path(options["out"])
        with export_errors(self, out):
            bundle, record = bundle_export(
                out=out,
                actor=actor,
                model=options["model"],
                since=since,
                until=until,
                prior_size=options["prior_size"],
                using=options["database"],
            )
        self.stdout.write(
            f"wrote {out}: {bundle.kind} export, {bundle.records} records, checkpoint "
            f"{bundle.checkpoint_size}, {bundle.size_bytes} bytes, sha256 {bundle.sha256} "
            f"(recorded as seq {record.seq})"
        )

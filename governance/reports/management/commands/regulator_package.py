"""``manage.py regulator_package (--model NAME | --all) [--since T] [--until T] --out FILE.pdf
[--as USERNAME]``: the regulator's package, one PDF/A-3b (``governance.reports.package``).

``--model`` packages one model (a filtered export: each record proven in the log, not that
none is missing, and the first page says so); ``--all`` the whole log (complete unless a
range is given). ``--since`` is inclusive and ``--until`` exclusive, ISO 8601 with a time zone
(``2026-01-31T00:00:00Z``) or a date (midnight UTC). A checkpoint is signed first, so this runs
where the signing key is, like ``audit_export``. The package is written beside ``--out`` and
renamed there, then recorded (``regulator_package.exported``, with its SHA-256).

Who: ``--as USERNAME`` names an active user who may make that package (for a model: who sees
it and reads the log; for the whole log: auditors, officers, administrators); without it, the
operating-system user, as a system actor. Prints the file, the record count, the
verification and the SHA-256. Exit 0 when written and the bundle verifies, 1 on a refusal or
bad input (the message says why) or a bundle that does not verify (the PDF says so), 2 when
the checkpointer raised an alarm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.exports import operator_actor
from audit.management.export_command import export_errors, parse_time
from core.accounts.callers import Caller
from core.accounts.models import User
from core.actors import Actor
from core.errors import DomainError
from governance.reports.package import (
    PackageScope,
    full_log_permitted,
    package_export,
    package_permitted,
    package_scope,
)
from registry.models import RegisteredModel


class Command(BaseCommand):
    help = "Write the regulator's package (PDF/A-3b with the audit export bundle embedded)."

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--model", default=None, help="the model to package")
        which.add_argument("--all", action="store_true", help="package the whole audit log")
        parser.add_argument("--since", default=None, help="records at or after (ISO 8601)")
        parser.add_argument("--until", default=None, help="records before (ISO 8601)")
        parser.add_argument("--out", required=True, help="the PDF to write")
        parser.add_argument(
            "--as",
            dest="operator",
            default=None,
            help="the user packaging (default: the operating-system user, as a system actor)",
        )
        parser.add_argument("--database", default="default", help="database alias")

    def _actor(self, username: str | None, scope: PackageScope) -> Actor:
        if username is None:
            return operator_actor()
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {username!r}")
        if scope.model is None:
            allowed = full_log_permitted(user)
        else:
            allowed = package_permitted(user, RegisteredModel.objects.get(name=scope.model))
        if not allowed:
            what = f"model {scope.model}" if scope.model else "the whole audit log"
            raise CommandError(f"{username} may not make the regulator's package of {what}")
        return Caller(user=user, auth="cli").actor

    def handle(self, *args: Any, **options: Any) -> None:
        since = parse_time("--since", options["since"], dates=True)
        until = parse_time("--until", options["until"], dates=True)
        out = Path(options["out"])
        if out.suffix.lower() != ".pdf":
            raise CommandError(f"--out {out}: the package is a PDF; name it FILE.pdf")
        try:
            scope = package_scope(
                model=options["model"], full=options["all"], since=since, until=until
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        actor = self._actor(options["operator"], scope)
        with export_errors(self, out):
            built, record = package_export(
                out=out, scope=scope, actor=actor, using=options["database"]
            )
        self.stdout.write(
            f"wrote {out}: package of {scope.describe()}, {built.records} records, "
            f"{'verified' if built.verified else 'FAILED verification'}, checkpoint "
            f"{built.checkpoint_size}, {built.size_bytes} bytes, sha256 {built.sha256} "
            f"(recorded as seq {record.seq})"
        )
        if not built.verified:
            raise CommandError(f"the bundle embedded in {out} does not verify")

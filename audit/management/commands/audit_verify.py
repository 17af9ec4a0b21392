"""``manage.py audit_verify [--json] [--no-record]``: exit 0 when the log is intact, 1
otherwise. A failure is recorded in the log it checked (``audit.verified`` with the first bad
seq and its code) and alerted (``audit.verification_failed``), unless ``--no-record`` (a
read-only copy or replica)."""

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from audit.verification import VerificationTrigger, verification_record, verify_log


class Command(BaseCommand):
    help = "Re-check the whole audit log: canonical bodies, seq, hash chain, times, log head."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print a machine report")
        parser.add_argument("--database", default="default", help="database alias")
        parser.add_argument(
            "--workers",
            type=int,
            default=1,
            help="processes that check bodies in parallel (the chain is checked in order)",
        )
        parser.add_argument(
            "--no-record",
            action="store_true",
            help="do not record a failure in the log (a read-only copy or replica)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify_log(using=options["database"], workers=options["workers"])
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            for finding in report.findings:
                where = "log" if finding.seq is None else f"seq {finding.seq}"
                self.stdout.write(f"{finding.code} at {where}: {finding.message}")
            first = report.first_error
            if first is None:
                self.stdout.write(f"OK: {report.records} records verified, tip {report.tip}")
            else:
                self.stdout.write(
                    f"FAILED: {len(report.findings)} finding(s); first bad seq {first.seq} "
                    f"({first.code})"
                )
        if not report.ok:
            if not options["no_record"]:
                verification_record(
                    report=report, trigger=VerificationTrigger.COMMAND, using=options["database"]
                )
            sys.exit(1)

"""``manage.py audit_export_pdf BUNDLE --key VKEY --out OUT.pdf``: the regulator's PDF of an
audit export bundle (AUDIT_SPEC section 6), without a database.

The bundle is verified with the offline verifier against the keys given (never the bundle's
own), then rendered as PDF/A-3b: the verdict and every finding, the signed checkpoints, what
the records are (by action, actor and model), the electronic signatures, the records, and the
bundle itself embedded byte for byte so the regulator can detach and re-verify it. Exit 0 when
the bundle verifies, 1 when it does not (the PDF is written either way and says so), 2 when
the bundle or a key cannot be read.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.reports.management.commands.report import BAD_INPUT, write_atomically
from governance.reports.regulator import BundleUnreadable, export_document, regulator_pdf

FAILED = 1


class Command(BaseCommand):
    help = "Verify an audit export bundle and render it as the regulator's PDF/A-3b."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bundle", metavar="BUNDLE.zip")
        parser.add_argument(
            "--key", action="append", required=True, metavar="VKEY",
            help="a trusted verification key, or a file of them (repeatable)",
        )  # fmt: skip
        parser.add_argument("--prior", metavar="NOTE", help="a checkpoint note kept earlier")
        parser.add_argument("--out", required=True, metavar="OUT.pdf")
        parser.add_argument("--json", action="store_true", help="print the document as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        bundle = Path(options["bundle"])
        prior = None
        if options["prior"]:
            try:
                prior = Path(options["prior"]).read_bytes()
            except OSError as exc:
                raise CommandError(
                    f"--prior {options['prior']}: cannot read ({exc.strerror})",
                    returncode=BAD_INPUT,
                ) from exc
        try:
            document = export_document(bundle, options["key"], prior=prior)
        except BundleUnreadable as exc:
            raise CommandError(str(exc), returncode=BAD_INPUT) from exc
        # One serialisation: what --json prints is what the PDF embeds.
        payload = json.dumps(document, ensure_ascii=False, allow_nan=False)
        pdf = regulator_pdf(
            payload,
            bundle,
            report_id=f"export-{uuid.uuid4()}",
            generated_at=dt.datetime.now(dt.UTC),
        )
        write_atomically(Path(options["out"]), pdf, option="--out")
        if options["json"]:
            self.stdout.write(payload)
        else:
            self.stdout.write(
                f"{options['out']}: {document['summary']['records']:,} records, "
                f"{'verified' if document['verdict'] == 'pass' else 'FAILED verification'}"
            )
            for reason in document["verdict_reasons"]:
                self.stderr.write(f"  {reason}")
        if document["verdict"] != "pass":
            raise CommandError(
                f"{bundle} does not verify ({len(document['verdict_reasons'])} error(s))",
                returncode=FAILED,
            )

"""``manage.py report fairness|drift ...`` (METRICS_SPEC.md section 5), without a database.

The command reads its input files, computes with the engine and prints the result: with
``--json`` one JSON document on stdout (numbers as JSON numbers, ``null`` when not
estimable), otherwise a short table. ``--pdf FILE`` also renders the PDF/A-3b report (the
printed JSON embedded verbatim when ``--json`` is given), its cover naming the subject given
with ``--model``/``--model-version``/``--artifact-digest`` (or "not registered"), the inputs'
SHA-256, and the engine's default thresholds. Bad input exits 2 with one line on stderr naming the
file, the column and the fault. It runs no system checks and opens no database connection,
so it works on a laptop with only the input files.

The arguments, the computation and the output are :mod:`governance.reports.cli`'s, which
``manage.py`` also runs directly, without starting Django, for a report printed without a PDF.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.reports import cli
from governance.reports.engine import InputError

if TYPE_CHECKING:
    from governance.reports.computation import Computed
    from governance.reports.pdf.context import PolicyThreshold

BAD_INPUT = cli.BAD_INPUT


def printed_bytes(result: dict[str, Any]) -> bytes:
    return json.dumps(result, allow_nan=False, ensure_ascii=False).encode()


def write_atomically(target: Path, data: bytes, *, option: str) -> None:
    """Write ``data`` beside ``target`` and rename it there: a reader never sees half a
    file. A target that cannot be written is bad input (exit 2)."""
    try:
        handle, temporary = tempfile.mkstemp(dir=target.parent or None, suffix=".part")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, target)
    except OSError as exc:
        raise CommandError(
            f"{option} {target}: cannot write ({exc.strerror})", returncode=BAD_INPUT
        ) from exc


class Command(BaseCommand):
    help = "Compute a fairness or drift report from CSV or Parquet files (no database needed)."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        cli.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            computed, thresholds = cli.compute(options)
        except InputError as exc:
            raise CommandError(exc.message, returncode=BAD_INPUT) from exc
        result = computed.result
        printed = cli.printed(result)
        if options["pdf"]:
            self._write_pdf(options, computed, thresholds, printed if options["json"] else None)
        if options["json"]:
            self.stdout.write(printed)
        else:
            for line in cli.summary_lines(result):
                self.stdout.write(line)

    def _write_pdf(
        self,
        options: dict[str, Any],
        computed: Computed,
        thresholds: list[PolicyThreshold],
        printed: str | None,
    ) -> None:
        from governance.reports.computation import UNREGISTERED, render_pdf
        from governance.reports.pdf.context import ReportSubject

        subject = UNREGISTERED
        if options["model"]:
            subject = ReportSubject(
                model=options["model"],
                version=options["model_version"] or "-",
                artifact_digest=options["artifact_digest"] or "-",
            )
        payload = printed.encode() if printed is not None else None
        digest = hashlib.sha256(payload or printed_bytes(computed.result)).hexdigest()
        pdf = render_pdf(
            computed,
            report_id=f"cli-{digest[:16]}",
            generated_at=dt.datetime.now(dt.UTC),
            subject=subject,
            thresholds=thresholds,
            result_json=payload,
        )
        write_atomically(Path(options["pdf"]), pdf, option="--pdf")

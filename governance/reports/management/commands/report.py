"""``manage.py report fairness|drift ...`` (METRICS_SPEC.md section 5), without a database.

The command reads its input files, computes with the engine and prints the result: with
``--json`` one JSON document on stdout (numbers as JSON numbers, ``null`` when not
estimable), otherwise a short table. ``--pdf FILE`` also renders the PDF/A-3b report (the
printed JSON embedded verbatim when ``--json`` is given), its cover naming the subject given
with ``--model``/``--model-version``/``--artifact-digest`` (or "not registered"), the inputs'
SHA-256, and the engine's default thresholds. Bad input exits 2 with one line on stderr naming the
file, the column and the fault. It runs no system checks and opens no database connection,
so it works on a laptop with only the input files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.reports.computation import (
    UNREGISTERED,
    Computed,
    InputFile,
    drift_from_files,
    drift_thresholds,
    fairness_from_file,
    fairness_thresholds,
    render_pdf,
)
from governance.reports.engine import DriftOptions, FairnessOptions, InputError
from governance.reports.engine.options import ColumnType
from governance.reports.pdf import PolicyThreshold, ReportSubject

BAD_INPUT = 2


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


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


def _subject_arguments(parser: CommandParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--pdf", metavar="OUT.pdf", help="also write the PDF/A-3b report")
    parser.add_argument("--model", metavar="NAME", help="the model named on the PDF's cover")
    parser.add_argument("--model-version", metavar="N", help="its version (with --model)")
    parser.add_argument("--artifact-digest", metavar="sha256:HEX", help="its artifact digest")


class Command(BaseCommand):
    help = "Compute a fairness or drift report from CSV or Parquet files (no database needed)."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        kinds = parser.add_subparsers(dest="kind", required=True, metavar="fairness|drift")
        fairness = kinds.add_parser("fairness", help="group fairness of a binary classifier")
        fairness.add_argument("--input", required=True, metavar="FILE")
        fairness.add_argument("--label", required=True, metavar="COL")
        fairness.add_argument("--prediction", required=True, metavar="COL")
        fairness.add_argument("--positive-label", metavar="V")
        fairness.add_argument("--prediction-positive", metavar="V[,V...]")
        fairness.add_argument("--favorable-label", metavar="V")
        fairness.add_argument("--sensitive", required=True, metavar="COL[,COL...]")
        fairness.add_argument(
            "--privileged", nargs="+", action="extend", default=[], metavar="COL=VALUE"
        )
        _subject_arguments(fairness)
        drift = kinds.add_parser("drift", help="data drift of a current table against a reference")
        drift.add_argument("--reference", required=True, metavar="FILE")
        drift.add_argument("--current", required=True, metavar="FILE")
        drift.add_argument("--columns", metavar="COL:TYPE,...")
        drift.add_argument("--exclude", metavar="COL,...")
        _subject_arguments(drift)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["kind"] == "fairness":
                computed, thresholds = self._fairness(options)
            else:
                computed, thresholds = self._drift(options)
        except InputError as exc:
            raise CommandError(exc.message, returncode=BAD_INPUT) from exc
        result = computed.result
        printed = json.dumps(result, allow_nan=False, ensure_ascii=False)
        if options["pdf"]:
            self._write_pdf(options, computed, thresholds, printed if options["json"] else None)
        if options["json"]:
            self.stdout.write(printed)
        else:
            self._summary(result)

    def _write_pdf(
        self,
        options: dict[str, Any],
        computed: Computed,
        thresholds: list[PolicyThreshold],
        printed: str | None,
    ) -> None:
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

    def _fairness(self, options: dict[str, Any]) -> tuple[Computed, list[PolicyThreshold]]:
        privileged: dict[str, str] = {}
        for item in options["privileged"]:
            column, sep, value = item.partition("=")
            if not sep or not column:
                raise InputError(f"--privileged {item!r}: expected COL=VALUE")
            privileged[column.strip()] = value.strip()
        settings = FairnessOptions(
            label=options["label"],
            prediction=options["prediction"],
            sensitive=_split(options["sensitive"]),
            positive_label=options["positive_label"],
            prediction_positive=_split(options["prediction_positive"]) or None,
            favorable_label=options["favorable_label"],
            privileged=privileged,
        )
        path = options["input"]
        source = InputFile(path=path, name=Path(path).name, role="evaluation", label=path)
        return fairness_from_file(source, settings), fairness_thresholds(settings)

    def _drift(self, options: dict[str, Any]) -> tuple[Computed, list[PolicyThreshold]]:
        types: dict[str, str] = {}
        for item in _split(options["columns"]):
            column, sep, kind = item.rpartition(":")
            if not sep or not column:
                raise InputError(f"--columns {item!r}: expected COL:TYPE")
            if kind not in {t.value for t in ColumnType}:
                raise InputError(
                    f"--columns {item!r}: type must be numerical, categorical or ignore"
                )
            types[column] = kind
        settings = DriftOptions(
            column_types=types, columns=list(types) or None, exclude=_split(options["exclude"])
        )
        reference, current = options["reference"], options["current"]
        computed = drift_from_files(
            InputFile(path=reference, name=Path(reference).name, role="reference", label=reference),
            InputFile(path=current, name=Path(current).name, role="current", label=current),
            settings,
        )
        return computed, drift_thresholds(settings)

    def _summary(self, result: dict[str, Any]) -> None:
        def show(value: Any) -> str:
            if value is None:
                return "-"
            return f"{value:.4g}" if isinstance(value, float) else str(value)

        if result["kind"] == "drift":
            self.stdout.write(
                f"{'column':<24} {'type':<12} {'method':<14} {'statistic':>10} {'p':>10} drifted"
            )
            for c in result["columns"]:
                self.stdout.write(
                    f"{c['name']:<24} {c['type']:<12} {show(c['method']):<14} "
                    f"{show(c['statistic']):>10} {show(c['p_value']):>10} "
                    f"{'yes' if c['drifted'] else ('n/a' if c['status'] != 'ok' else 'no')}"
                )
            self.stdout.write(
                f"drifted {result['drifted_count']} of {result['evaluated_count']} "
                f"(share {show(result['share'])}), dataset drift: {result['dataset_drift']}"
            )
            return
        self.stdout.write(f"{'group':<40} {'n':>7} {'sel':>7} {'tpr':>7} {'fpr':>7} {'impact':>7}")
        for group, rule in zip(result["groups"], result["four_fifths"], strict=True):
            name = ", ".join(f"{k}={v}" for k, v in group["attributes"].items())
            mark = " unstable" if group["unstable"] else ""
            self.stdout.write(
                f"{name:<40} {group['n']:>7} {show(group['selection_rate']):>7} "
                f"{show(group['tpr']):>7} {show(group['fpr']):>7} "
                f"{show(rule['impact_ratio']):>7}{mark}"
            )
        for key, value in result["metrics"].items():
            self.stdout.write(f"{key}: {show(value)}")
        self.stdout.write(f"verdict: {result['verdict']}")
        for reason in result["verdict_reasons"]:
            self.stdout.write(f"  {reason}")

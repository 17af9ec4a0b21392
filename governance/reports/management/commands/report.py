"""``manage.py report fairness|drift ...`` (METRICS_SPEC.md section 5), without a database.

The command reads its input files, computes with the engine and prints the result: with
``--json`` one JSON document on stdout (numbers as JSON numbers, ``null`` when not
estimable), otherwise a short table. Bad input exits 2 with one line on stderr naming the
file, the column and the fault. It runs no system checks and opens no database connection,
so it works on a laptop with only the input files.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.reports.engine import (
    DriftOptions,
    FairnessOptions,
    InputError,
    compute_drift,
    compute_fairness,
    read_table,
    table_columns,
)
from governance.reports.engine.drift import ColumnType, drift_columns

BAD_INPUT = 2


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


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
        fairness.add_argument("--json", action="store_true", help="print one JSON document")
        fairness.add_argument("--pdf", metavar="OUT.pdf")
        drift = kinds.add_parser("drift", help="data drift of a current table against a reference")
        drift.add_argument("--reference", required=True, metavar="FILE")
        drift.add_argument("--current", required=True, metavar="FILE")
        drift.add_argument("--columns", metavar="COL:TYPE,...")
        drift.add_argument("--exclude", metavar="COL,...")
        drift.add_argument("--json", action="store_true", help="print one JSON document")
        drift.add_argument("--pdf", metavar="OUT.pdf")

    def handle(self, *args: Any, **options: Any) -> None:
        if options.get("pdf"):
            raise CommandError(
                "--pdf: PDF rendering is not available in this version; use --json",
                returncode=BAD_INPUT,
            )
        try:
            if options["kind"] == "fairness":
                result = self._fairness(options)
            else:
                result = self._drift(options)
        except InputError as exc:
            raise CommandError(exc.message, returncode=BAD_INPUT) from exc
        if options["json"]:
            self.stdout.write(json.dumps(result, allow_nan=False, ensure_ascii=False))
        else:
            self._summary(result)

    def _fairness(self, options: dict[str, Any]) -> dict[str, Any]:
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
        table = read_table(options["input"], settings.columns(), label=options["input"])
        return compute_fairness(table.frame, settings, inputs=[table.describe()]).to_dict()

    def _drift(self, options: dict[str, Any]) -> dict[str, Any]:
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
        reference_path, current_path = options["reference"], options["current"]
        names = drift_columns(
            table_columns(reference_path, label=reference_path),
            table_columns(current_path, label=current_path),
            settings,
        )
        if not names:
            raise InputError("the reference and current files have no column in common")
        reference = read_table(reference_path, names, label=reference_path)
        current = read_table(current_path, names, label=current_path)
        result = compute_drift(
            reference.frame,
            current.frame,
            settings,
            labels=(reference_path, current_path),
            inputs=[
                {"role": "reference", **reference.describe()},
                {"role": "current", **current.describe()},
            ],
        )
        return result.to_dict()

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

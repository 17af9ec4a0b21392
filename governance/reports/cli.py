"""The ``report`` command's arguments, computation and output, free of Django.

``manage.py report fairness|drift ...`` (METRICS_SPEC.md section 5) computes from files alone.
Both of its paths use this module: the Django command (``management/commands/report.py``),
which also renders ``--pdf``, and :func:`run_from_files`, which ``manage.py`` calls first for
a report printed without a PDF, so that such a run loads the engine and the reader and
nothing else: no app registry, no models, no Celery, no WeasyPrint or matplotlib. Either
path prints the same bytes and exits with the same code; anything :func:`run_from_files` does
not handle itself (``--pdf``, ``--help``, Django's own options, any argument error) it leaves
to Django, which answers as it always has.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from governance.reports.engine.errors import InputError
from governance.reports.engine.options import ColumnType, DriftOptions, FairnessOptions

if TYPE_CHECKING:
    from governance.reports.computation import Computed
    from governance.reports.pdf.context import PolicyThreshold

BAD_INPUT = 2


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _subject_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--pdf", metavar="OUT.pdf", help="also write the PDF/A-3b report")
    parser.add_argument("--model", metavar="NAME", help="the model named on the PDF's cover")
    parser.add_argument("--model-version", metavar="N", help="its version (with --model)")
    parser.add_argument("--artifact-digest", metavar="sha256:HEX", help="its artifact digest")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``fairness`` and ``drift`` subcommands and their options."""
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


def fairness_options(options: dict[str, Any]) -> FairnessOptions:
    """The engine's options from the parsed arguments (``InputError`` for a bad one)."""
    privileged: dict[str, str] = {}
    for item in options["privileged"]:
        column, sep, value = item.partition("=")
        if not sep or not column:
            raise InputError(f"--privileged {item!r}: expected COL=VALUE")
        privileged[column.strip()] = value.strip()
    return FairnessOptions(
        label=options["label"],
        prediction=options["prediction"],
        sensitive=_split(options["sensitive"]),
        positive_label=options["positive_label"],
        prediction_positive=_split(options["prediction_positive"]) or None,
        favorable_label=options["favorable_label"],
        privileged=privileged,
    )


def drift_options(options: dict[str, Any]) -> DriftOptions:
    """The engine's options from the parsed arguments (``InputError`` for a bad one)."""
    types: dict[str, str] = {}
    for item in _split(options["columns"]):
        column, sep, kind = item.rpartition(":")
        if not sep or not column:
            raise InputError(f"--columns {item!r}: expected COL:TYPE")
        if kind not in {t.value for t in ColumnType}:
            raise InputError(f"--columns {item!r}: type must be numerical, categorical or ignore")
        types[column] = kind
    return DriftOptions(
        column_types=types, columns=list(types) or None, exclude=_split(options["exclude"])
    )


def compute(options: dict[str, Any]) -> tuple[Computed, list[PolicyThreshold]]:
    """Read the input files, compute the report and list the thresholds it was judged
    against; the drift charts' binning only when a PDF is asked for."""
    from governance.reports import computation

    if options["kind"] == "fairness":
        fairness = fairness_options(options)
        path = options["input"]
        name = Path(path).name
        source = computation.InputFile(path=path, name=name, role="evaluation", label=path)
        return (
            computation.fairness_from_file(source, fairness),
            computation.fairness_thresholds(fairness),
        )
    drift = drift_options(options)
    reference, current = options["reference"], options["current"]
    computed = computation.drift_from_files(
        computation.InputFile(
            path=reference, name=Path(reference).name, role="reference", label=reference
        ),
        computation.InputFile(path=current, name=Path(current).name, role="current", label=current),
        drift,
        charts=bool(options.get("pdf")),
    )
    return computed, computation.drift_thresholds(drift)


def printed(result: dict[str, Any]) -> str:
    """The JSON document ``--json`` prints (numbers as JSON numbers, ``null`` when not
    estimable)."""
    return json.dumps(result, allow_nan=False, ensure_ascii=False)


def summary_lines(result: dict[str, Any]) -> Iterator[str]:
    """The short table printed without ``--json``."""

    def show(value: Any) -> str:
        if value is None:
            return "-"
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    if result["kind"] == "drift":
        yield f"{'column':<24} {'type':<12} {'method':<14} {'statistic':>10} {'p':>10} drifted"
        for c in result["columns"]:
            yield (
                f"{c['name']:<24} {c['type']:<12} {show(c['method']):<14} "
                f"{show(c['statistic']):>10} {show(c['p_value']):>10} "
                f"{'yes' if c['drifted'] else ('n/a' if c['status'] != 'ok' else 'no')}"
            )
        yield (
            f"drifted {result['drifted_count']} of {result['evaluated_count']} "
            f"(share {show(result['share'])}), dataset drift: {result['dataset_drift']}"
        )
        return
    yield f"{'group':<40} {'n':>7} {'sel':>7} {'tpr':>7} {'fpr':>7} {'impact':>7}"
    for group, rule in zip(result["groups"], result["four_fifths"], strict=True):
        name = ", ".join(f"{k}={v}" for k, v in group["attributes"].items())
        mark = " unstable" if group["unstable"] else ""
        yield (
            f"{name:<40} {group['n']:>7} {show(group['selection_rate']):>7} "
            f"{show(group['tpr']):>7} {show(group['fpr']):>7} "
            f"{show(rule['impact_ratio']):>7}{mark}"
        )
    for key, value in result["metrics"].items():
        yield f"{key}: {show(value)}"
    yield f"verdict: {result['verdict']}"
    for reason in result["verdict_reasons"]:
        yield f"  {reason}"


class _NotHandled(Exception):
    """An argument list :func:`run_from_files` leaves to Django."""


class _Parser(argparse.ArgumentParser):
    """The command's arguments without ``--help`` and without Django's options, an error
    raising :class:`_NotHandled` instead of exiting (Django words and exits it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["add_help"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise _NotHandled(message)


def _write(stream: Any, text: str) -> None:
    # As Django's OutputWrapper writes a line.
    stream.write(text if text.endswith("\n") else text + "\n")


def _error_line(message: str) -> str:
    """The stderr line of a refused input, as Django's ``run_from_argv`` prints a
    ``CommandError`` (coloured, as Django colours it, only on a terminal)."""
    line = f"CommandError: {message}"
    if sys.stderr.isatty():
        from django.core.management.color import color_style

        return color_style().ERROR(line)
    return line


def run_from_files(argv: Sequence[str]) -> int | None:
    """Run ``manage.py report ...`` (``argv`` as ``sys.argv``) without starting Django, when it
    reads files and prints, without a PDF; ``None`` when Django should run it instead.

    Prints what the Django command prints and returns its exit code: 0, or 2 for bad input
    with ``CommandError: <file, column, fault>`` on stderr."""
    if len(argv) < 2 or argv[1] != "report":
        return None
    parser = _Parser(prog=f"{Path(argv[0]).name} report")
    add_arguments(parser)
    try:
        options = vars(parser.parse_args(list(argv[2:])))
    except _NotHandled:
        return None
    if options["pdf"]:
        return None
    try:
        computed, _thresholds = compute(options)
    except InputError as exc:
        _write(sys.stderr, _error_line(exc.message))
        return BAD_INPUT
    if options["json"]:
        _write(sys.stdout, printed(computed.result))
    else:
        for line in summary_lines(computed.result):
            _write(sys.stdout, line)
    return 0

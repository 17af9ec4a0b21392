"""From input files to a rendered report, without a database: what the ``report`` command and
the report task share.

:func:`fairness_from_file` and :func:`drift_from_files` read the columns needed, compute with
the engine and keep what the PDF needs besides the result (the input digests and, for drift,
the binned distributions of each column); :func:`render_pdf` turns that into PDF/A-3b bytes.
Every refusal is an :class:`~governance.reports.engine.InputError` naming file and column.

The drift engine (and with it scipy) is imported by the drift functions, WeasyPrint and
matplotlib by :func:`render_pdf`, the charts' binning by a drift computation that will be
charted: never with this module, so that a report printed as JSON does not load them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from governance.reports.engine import DriftOptions, FairnessOptions, InputError
from governance.reports.engine.fairness import compute_fairness
from governance.reports.engine.readers import _NULL_VALUES as NULL_VALUES
from governance.reports.engine.readers import (
    PARQUET_MAGIC,
    PARSE_OPTIONS,
    read_table,
    table_columns,
)
from governance.reports.pdf.context import (
    ColumnDistribution,
    InputDigest,
    LineageGraph,
    PolicyInfo,
    PolicyThreshold,
    ReportContext,
    ReportSubject,
)
from governance.reports.summary import passed

UNREGISTERED = ReportSubject(model="(not registered)", version="-", artifact_digest="-")


@dataclass(frozen=True)
class InputFile:
    """A file to read: its path, the name shown on the PDF, its role, and how error
    messages name it (``label``, default the name)."""

    path: str
    name: str
    role: str
    label: str = ""

    @property
    def shown(self) -> str:
        return self.label or self.name


@dataclass
class Computed:
    """An engine result (METRICS_SPEC section 5) and what its PDF needs besides it."""

    result: dict[str, Any]
    inputs: list[InputDigest]
    distributions: dict[str, ColumnDistribution] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return passed(self.result)


def fairness_from_file(source: InputFile, options: FairnessOptions) -> Computed:
    """Read the label, prediction and sensitive columns of ``source`` and compute fairness."""
    table = read_table(source.path, options.columns(), label=source.shown)
    described = {**table.describe(), "file": source.name, "role": source.role}
    result = compute_fairness(table.frame, options, inputs=[described]).to_dict()
    digest = InputDigest(source.role, source.name, table.sha256, table.rows)
    return Computed(result=result, inputs=[digest])


def drift_from_files(
    reference: InputFile, current: InputFile, options: DriftOptions, *, charts: bool = True
) -> Computed:
    """Read the compared columns of both files, compute drift and, unless ``charts`` is
    false (no PDF will be rendered), bin each column for the charts."""
    from governance.reports.engine.drift import compute_drift, drift_columns, prepare_frames

    names = drift_columns(
        table_columns(reference.path, label=reference.shown),
        table_columns(current.path, label=current.shown),
        options,
    )
    if not names:
        raise InputError(
            f"{reference.shown} and {current.shown} have no column in common to compare"
        )
    ref = read_table(reference.path, names, label=reference.shown)
    cur = read_table(current.path, names, label=current.shown)
    # The charts bin what the engine compared: a date declared numerical as days.
    ref_frame, cur_frame = prepare_frames(ref.frame, cur.frame, options)
    result = compute_drift(
        ref_frame,
        cur_frame,
        options,
        labels=(reference.shown, current.shown),
        inputs=[
            {**ref.describe(), "file": reference.name, "role": reference.role},
            {**cur.describe(), "file": current.name, "role": current.role},
        ],
    ).to_dict()
    distributions: dict[str, ColumnDistribution] = {}
    if charts:
        from governance.reports.pdf.distributions import column_distributions

        distributions = column_distributions(ref_frame, cur_frame, result)
    return Computed(
        result=result,
        inputs=[
            InputDigest(reference.role, reference.name, ref.sha256, ref.rows),
            InputDigest(current.role, current.name, cur.sha256, cur.rows),
        ],
        distributions=distributions,
    )


def fairness_thresholds(options: FairnessOptions) -> list[PolicyThreshold]:
    """The thresholds a fairness verdict was judged against, as the cover lists them."""
    return [
        PolicyThreshold(
            "Four-fifths rule", f"impact ratio \u2265 {options.min_impact_ratio:g} per stable group"
        ),
        PolicyThreshold(
            "Equalized odds difference", f"\u2264 {options.max_equalized_odds_difference:g}"
        ),
        PolicyThreshold(
            "Stable group",
            f"n \u2265 {options.min_group_size}, at least {options.min_outcomes} positives "
            f"and {options.min_outcomes} negatives",
        ),
    ]


def drift_thresholds(options: DriftOptions) -> list[PolicyThreshold]:
    """The dataset-level drift threshold (per-column rules are listed by the PDF itself)."""
    return [
        PolicyThreshold("Column drift", "per-method defaults of METRICS_SPEC section 1"),
        PolicyThreshold(
            "Dataset drift", f"share of drifted columns \u2265 {options.drift_share:g}"
        ),
    ]


def render_pdf(
    computed: Computed,
    *,
    report_id: str,
    generated_at: dt.datetime,
    subject: ReportSubject = UNREGISTERED,
    policy_version: str = "none: engine defaults",
    thresholds: Sequence[PolicyThreshold] = (),
    lineage: LineageGraph | None = None,
    result_json: bytes | None = None,
    audit_seq: int | None = None,
) -> bytes:
    """The PDF/A-3b of ``computed`` with the result embedded (``result_json`` verbatim when
    given, else its canonical JSON)."""
    from governance.reports.pdf.render import render_report

    context = ReportContext(
        report_id=report_id,
        subject=subject,
        generated_at=generated_at,
        policy=PolicyInfo(policy_version, tuple(thresholds)),
        inputs=computed.inputs,
        lineage=lineage,
        distributions=computed.distributions,
        result_json=result_json,
        audit_seq=audit_seq,
    )
    return render_report(computed.result, context)


SAMPLE_ROWS = 2000


def _sample(source: InputFile, columns: Sequence[str]) -> pd.DataFrame:
    """The first rows of ``columns`` of a CSV or Parquet file, typed as :func:`read_table`
    would type them (the same pyarrow readers), for checks before a job is queued."""
    header = table_columns(source.path, label=source.shown)
    for name in columns:
        if name not in header:
            shown = ", ".join(repr(h) for h in header[:12]) + (", ..." if len(header) > 12 else "")
            raise InputError(f"not found (the file has {shown})", source=source.shown, column=name)
    with Path(source.path).open("rb") as handle:
        is_parquet = handle.read(len(PARQUET_MAGIC)) == PARQUET_MAGIC
    try:
        if is_parquet:
            batches = pq.ParquetFile(source.path).iter_batches(
                batch_size=SAMPLE_ROWS, columns=list(columns)
            )
            batch = next(iter(batches), None)
        else:
            options = pa_csv.ConvertOptions(
                include_columns=list(columns), null_values=NULL_VALUES, strings_can_be_null=True
            )
            reader = pa_csv.open_csv(
                source.path, parse_options=PARSE_OPTIONS, convert_options=options
            )
            batch = next(iter(reader), None)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"is not a readable table ({first})", source=source.shown) from exc
    if batch is None or batch.num_rows == 0:
        raise InputError("has no data rows", source=source.shown)
    return batch.to_pandas()


def check_fairness(source: InputFile, options: FairnessOptions) -> None:
    """Refuse now what the job would refuse later, where that is cheap: the header, the
    columns, and the engine run on the first rows (label values, types)."""
    compute_fairness(_sample(source, options.columns()), options)


def check_drift(reference: InputFile, current: InputFile, options: DriftOptions) -> None:
    """The drift counterpart of :func:`check_fairness`."""
    from governance.reports.engine.drift import compute_drift, drift_columns

    names = drift_columns(
        table_columns(reference.path, label=reference.shown),
        table_columns(current.path, label=current.shown),
        options,
    )
    if not names:
        raise InputError(
            f"{reference.shown} and {current.shown} have no column in common to compare"
        )
    compute_drift(
        _sample(reference, names),
        _sample(current, names),
        options,
        labels=(reference.shown, current.shown),
    )

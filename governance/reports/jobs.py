"""One run of a report's job: claim, read, compute, render, store, complete.

Called by the Celery task with the report id; every write goes through
``governance.reports.services``. Bad input ends the report ``failed`` with the engine's one
clear message; a worker that lost its lease stops without writing anything.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from audit.exports import audit_export_file
from audit.keys import verification_key_lines
from core.errors import DomainError
from governance.reports import computation, lineage, regulator, services
from governance.reports.engine import InputError
from governance.reports.engine.common import to_record
from governance.reports.models import InputRole, Report, ReportInput, ReportKind
from governance.reports.pdf import ReportSubject
from governance.reports.summary import passed, result_summary

log = logging.getLogger(__name__)
INTERNAL_ERROR = "internal_error"


class ReportInconsistent(RuntimeError):
    """A report row that breaks the database's own checks: a fault of Warden's, which ends
    the report ``failed`` with ``internal_error`` (``report_run``)."""


def worker_name() -> str:
    """This process, as leases name it: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _input_file(item: ReportInput) -> computation.InputFile:
    if item.dataset_version is not None and not item.path:
        path = str(services.dataset_file(item.dataset_version))
    else:
        path = str(Path(settings.REPORTS_UPLOAD_DIR) / item.path)
    return computation.InputFile(path=path, name=item.name, role=item.role)


ProgressHook = Callable[[Report, int], None]

# Called with the report and its progress after each step of a job is recorded (the lease
# extended). Production registers none; a test appends one to stop a worker at a known point
# (``tests/reports/worker_pause.py``).
progress_hooks: list[ProgressHook] = []


def report_run(report_id: str, *, worker: str | None = None) -> str:
    """Run the report's job once: ``done``/``failed`` when this worker finished it,
    ``skipped`` when there was nothing to do (done, failed, or another worker's live lease),
    ``lost`` when another worker took it over meanwhile. Bad input and faults of Warden's alike
    end ``failed`` with ``error: {code, message}``; nothing is raised."""
    worker = worker or worker_name()
    report = services.report_claim(report_id=report_id, worker=worker)
    if report is None:
        return "skipped"
    try:
        return _run(report, worker)
    except services.LeaseLost:
        log.warning("report %s: lease lost by %s", report_id, worker)
        return "lost"
    except Exception as exc:
        # A fault of ours, not of the input: logged with its traceback and recorded, so the
        # report does not stay running to be retried for ever by the requeue sweep. Not
        # raised again: run eagerly (no broker), it would turn the request into a 500.
        log.exception("report %s failed", report_id)
        services.report_fail(
            report=report,
            worker=worker,
            message=f"internal error ({type(exc).__name__}): {exc}",
            code=INTERNAL_ERROR,
        )
        return "failed"


def _step(report: Report, worker: str, progress: int, stage: str) -> None:
    services.report_progress(report=report, worker=worker, progress=progress, stage=stage)
    for hook in progress_hooks:
        hook(report, progress)


def _run(report: Report, worker: str) -> str:
    if report.kind == ReportKind.REGULATOR_EXPORT:
        return _run_regulator_export(report, worker)
    inputs = {item.role: item for item in report.inputs.select_related("dataset_version")}
    version = report.model_version
    if version is None:  # the database's check makes this impossible: every other kind has one
        raise ReportInconsistent(f"report {report.pk}: a {report.kind} report has no model version")
    try:
        _step(report, worker, 10, "reading")
        # The lineage as of now: the page every report has, and all of a lineage report.
        document = lineage.lineage_result(version, now=timezone.now())
        if report.kind == ReportKind.LINEAGE:
            computed = computation.Computed(result=document, inputs=[])
            thresholds = lineage.thresholds()
        elif report.kind == ReportKind.FAIRNESS:
            options = services.fairness_options(report.parameters, report.thresholds)
            computed = computation.fairness_from_file(
                _input_file(inputs[InputRole.EVALUATION]), options
            )
            thresholds = computation.fairness_thresholds(options)
        else:
            drift = services.drift_options(report.parameters, report.thresholds)
            computed = computation.drift_from_files(
                _input_file(inputs[InputRole.REFERENCE]),
                _input_file(inputs[InputRole.CURRENT]),
                drift,
            )
            thresholds = computation.drift_thresholds(drift)
    except InputError as exc:
        services.report_fail(report=report, worker=worker, message=exc.message)
        return "failed"
    _step(report, worker, 50, "rendering")
    result_json = json.dumps(computed.result, allow_nan=False, ensure_ascii=False)
    audit_seq = services.audit_seq_now()
    pdf = computation.render_pdf(
        computed,
        report_id=str(report.pk),
        generated_at=timezone.now(),
        subject=ReportSubject(
            model=version.model.name,
            version=str(version.version),
            artifact_digest=version.artifact_digest,
            risk_tier=version.model.risk_tier,
        ),
        policy_version=report.policy_label
        + (" (thresholds overridden)" if report.thresholds_overridden else ""),
        thresholds=thresholds,
        lineage=lineage.graph_of(document),
        audit_seq=audit_seq,
        result_json=result_json.encode(),
    )
    _finish(report, worker, result_json, computed.result, pdf=pdf, audit_seq=audit_seq)
    return "done"


def _finish(
    report: Report,
    worker: str,
    result_json: str,
    result: dict[str, Any],
    *,
    pdf: bytes,
    audit_seq: int | None,
) -> None:
    _step(report, worker, 80, "storing")
    pdf_path, pdf_sha256 = services.store_pdf(report, pdf)
    services.report_complete(
        report=report,
        worker=worker,
        result_json=result_json,
        passed=passed(result),
        pdf_path=pdf_path,
        pdf_sha256=pdf_sha256,
        audit_seq=audit_seq,
        summary=to_record(result_summary(result)),
    )


def _run_regulator_export(report: Report, worker: str) -> str:
    """Verify the export's bundle with the log's verification keys and render it."""
    export = report.audit_export
    if export is None:  # the database's check makes this impossible
        raise ReportInconsistent(f"report {report.pk}: a regulator export names no export")
    _step(report, worker, 10, "verifying")
    try:
        bundle = audit_export_file(export=export)
        document = regulator.export_document(
            bundle, verification_key_lines(), name=f"warden-audit-{export.pk}.zip"
        )
    except DomainError as exc:
        services.report_fail(report=report, worker=worker, message=exc.message, code=exc.code)
        return "failed"
    except regulator.BundleUnreadable as exc:
        services.report_fail(report=report, worker=worker, message=str(exc))
        return "failed"
    _step(report, worker, 50, "rendering")
    result_json = json.dumps(document, allow_nan=False, ensure_ascii=False)
    audit_seq = services.audit_seq_now()
    pdf = regulator.regulator_pdf(
        result_json,
        bundle,
        report_id=str(report.pk),
        generated_at=timezone.now(),
        audit_seq=audit_seq,
    )
    _finish(report, worker, result_json, document, pdf=pdf, audit_seq=audit_seq)
    return "done"

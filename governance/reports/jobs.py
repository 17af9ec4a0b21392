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
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from governance.reports import computation, services
from governance.reports.engine import InputError
from governance.reports.engine.common import to_record
from governance.reports.models import InputRole, Report, ReportInput, ReportKind
from governance.reports.pdf import LineageEdge, LineageGraph, LineageNode, ReportSubject

log = logging.getLogger(__name__)


def worker_name() -> str:
    """This process, as leases name it: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _input_file(item: ReportInput) -> computation.InputFile:
    if item.dataset_version is not None and not item.path:
        path = str(services.dataset_file(item.dataset_version))
    else:
        path = str(Path(settings.REPORTS_UPLOAD_DIR) / item.path)
    return computation.InputFile(path=path, name=item.name, role=item.role)


def lineage_graph(report: Report) -> LineageGraph:
    """Datasets -> the version (and its parent) -> its deployments, for the PDF."""
    version = report.model_version
    me = f"mv:{version.pk}"
    nodes = [
        LineageNode(
            me, f"{version.model.name} v{version.version}", "model_version",
            version.artifact_digest[:19],
        )
    ]  # fmt: skip
    edges: list[LineageEdge] = []
    if version.parent is not None:
        parent = version.parent
        nodes.append(
            LineageNode(
                f"mv:{parent.pk}", f"{parent.model.name} v{parent.version}", "model_version"
            )
        )
        edges.append(LineageEdge(f"mv:{parent.pk}", me, "parent"))
    for usage in version.dataset_usages.select_related("dataset_version__dataset"):
        dataset = usage.dataset_version
        node = f"ds:{dataset.pk}"
        if all(n.id != node for n in nodes):
            detail = f"{dataset.row_count:,} rows" + (", PII" if dataset.pii else "")
            nodes.append(LineageNode(node, str(dataset), "dataset", detail))
        edges.append(LineageEdge(node, me, usage.role))
    seen: set[str] = set()
    for deployment in version.deployments.select_related("environment").order_by("occurred_at"):
        node = f"env:{deployment.environment.name}"
        if node not in seen:
            seen.add(node)
            nodes.append(
                LineageNode(
                    node, deployment.environment.name, "deployment",
                    f"{deployment.event} {deployment.occurred_at:%Y-%m-%d}",
                )
            )  # fmt: skip
            edges.append(LineageEdge(me, node, "deployed"))
    return LineageGraph(nodes=nodes, edges=edges)


def _pause_for_tests(progress: int) -> None:
    """Test only (``REPORTS_TEST_PAUSE_AT``): announce the pause in the upload directory and
    block until this process is killed."""
    if settings.REPORTS_TEST_PAUSE_AT and progress == settings.REPORTS_TEST_PAUSE_AT:
        marker = Path(settings.REPORTS_UPLOAD_DIR) / f"paused-{os.getpid()}"
        marker.write_text("paused\n")
        while True:
            time.sleep(3600)


def report_run(report_id: str, *, worker: str | None = None) -> str:
    """Run the report's job once: ``done``/``failed`` when this worker finished it,
    ``skipped`` when there was nothing to do (done, failed, or another worker's live lease),
    ``lost`` when another worker took it over meanwhile."""
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
        # A fault of ours, not of the input: recorded, so the report does not stay running
        # to be retried for ever by the requeue sweep.
        log.exception("report %s failed", report_id)
        services.report_fail(
            report=report, worker=worker, message=f"internal error ({type(exc).__name__}): {exc}"
        )
        raise


def _step(report: Report, worker: str, progress: int, stage: str) -> None:
    services.report_progress(report=report, worker=worker, progress=progress, stage=stage)
    _pause_for_tests(progress)


def _run(report: Report, worker: str) -> str:
    inputs = {item.role: item for item in report.inputs.select_related("dataset_version")}
    try:
        _step(report, worker, 10, "reading")
        if report.kind == ReportKind.FAIRNESS:
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
    version = report.model_version
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
        lineage=lineage_graph(report),
        result_json=result_json.encode(),
    )
    _step(report, worker, 80, "storing")
    pdf_path, pdf_sha256 = services.store_pdf(report, pdf)
    services.report_complete(
        report=report,
        worker=worker,
        result_json=result_json,
        passed=computed.passed,
        pdf_path=pdf_path,
        pdf_sha256=pdf_sha256,
        audit_seq=audit_seq,
        summary=to_record(computation.result_summary(computed.result)),
    )
    return "done"

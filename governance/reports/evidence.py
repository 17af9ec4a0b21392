"""The reports' side of the evidence seam (``governance.approvals.evidence``): the newest
done report of a kind that counts for a version, offered as ``Evidence``.

A report counts (DESIGN.md section 3, Evidence) when it was computed with the policy's
thresholds (no overrides, and the same values as the requirement names), on the version's
registered dataset versions (fairness: its validation or test data; drift: a reference that
is one of its registered dataset versions), and, for fairness, over every sensitive attribute
the model declares. Its ``passed`` is the report's verdict; freshness is judged by approvals.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from governance.approvals.evidence import Evidence, EvidenceRequirement
from governance.reports.models import InputRole, Report, ReportKind, ReportStatus, Verdict
from registry.models import LineageRole, ModelVersion

EVALUATION_ROLES = (LineageRole.VALIDATION, LineageRole.TEST)


def _same(required: Any, used: Any) -> bool:
    try:
        return Decimal(str(required)) == Decimal(str(used))
    except InvalidOperation:
        return False


def _thresholds_match(report: Report, requirement: EvidenceRequirement) -> bool:
    for key, value in requirement.thresholds.items():
        if key in report.thresholds and not _same(value, report.thresholds[key]):
            return False
    return True


def _counts(report: Report, version: ModelVersion, requirement: EvidenceRequirement) -> bool:
    if report.thresholds_overridden or not _thresholds_match(report, requirement):
        return False
    inputs = {item.role: item for item in report.inputs.all()}
    usages = version.dataset_usages.all()
    if report.kind == ReportKind.FAIRNESS:
        evaluation = inputs.get(InputRole.EVALUATION)
        allowed = {u.dataset_version_id for u in usages if u.role in EVALUATION_ROLES}
        if evaluation is None or evaluation.dataset_version_id not in allowed:
            return False
        declared = set(version.model.sensitive_attributes or [])
        return declared <= set(report.parameters.get("sensitive") or [])
    reference = inputs.get(InputRole.REFERENCE)
    registered = {u.dataset_version_id for u in usages}
    return reference is not None and reference.dataset_version_id in registered


def _provider(kind: str) -> Any:
    def provide(*, version: ModelVersion, requirement: EvidenceRequirement) -> Evidence | None:
        reports = (
            Report.objects.filter(model_version=version, kind=kind, status=ReportStatus.DONE)
            .prefetch_related("inputs")
            .order_by("-finished_at")
        )
        for report in reports:
            finished_at = report.finished_at  # set with the done status; never counts without
            if finished_at is not None and _counts(report, version, requirement):
                return Evidence(
                    kind=kind,
                    report_id=str(report.pk),
                    sha256=report.pdf_sha256,
                    computed_at=finished_at,
                    passed=report.verdict == Verdict.PASS,
                )
        return None

    provide.__doc__ = f"The newest counting {kind} report of a version (EvidenceProvider)."
    return provide


fairness_evidence = _provider(ReportKind.FAIRNESS)
drift_evidence = _provider(ReportKind.DRIFT)

"""The reports' side of the evidence seam (``governance.approvals.evidence``): each done
fairness or drift report is written to the evidence index (``EvidenceEntry``) in the
transaction that marks it done, with the facts approvals judges it by.

A report is eligible (DESIGN.md section 3, Evidence) when its thresholds were not overridden
and it was computed on the version's registered dataset versions (fairness: its validation or
test data; drift: a reference that is one of its registered dataset versions). A fairness
report covers the sensitive attributes it was computed over; approvals checks them against the
ones the model declares when asked, as it checks the policy's threshold values and freshness.
"""

from __future__ import annotations

from governance.approvals.models import EvidenceEntry
from governance.reports.models import InputRole, Report, ReportKind, Verdict
from registry.models import LineageRole

EVALUATION_ROLES = (LineageRole.VALIDATION, LineageRole.TEST)
EVIDENCE_KINDS = (ReportKind.FAIRNESS, ReportKind.DRIFT)


def _on_registered_data(report: Report) -> bool:
    version = report.model_version
    if version is None:
        return False
    inputs = {item.role: item.dataset_version_id for item in report.inputs.all()}
    usages = list(version.dataset_usages.all())
    if report.kind == ReportKind.FAIRNESS:
        allowed = {u.dataset_version_id for u in usages if u.role in EVALUATION_ROLES}
        return inputs.get(InputRole.EVALUATION) in allowed
    return inputs.get(InputRole.REFERENCE) in {u.dataset_version_id for u in usages}


def evidence_entry_write(report: Report) -> EvidenceEntry | None:
    """Index a done fairness or drift report as evidence (inside the caller's transaction);
    other kinds, and reports without a version or a finish time, are not evidence."""
    if (
        report.kind not in EVIDENCE_KINDS
        or report.model_version_id is None
        or report.finished_at is None
    ):
        return None
    covers = None
    if report.kind == ReportKind.FAIRNESS:
        covers = [str(name) for name in report.parameters.get("sensitive") or []]
    return EvidenceEntry.objects.create(
        report_id=str(report.pk),
        model_version_id=report.model_version_id,
        kind=report.kind,
        sha256=report.pdf_sha256,
        computed_at=report.finished_at,
        passed=report.verdict == Verdict.PASS,
        eligible=not report.thresholds_overridden and _on_registered_data(report),
        thresholds=dict(report.thresholds or {}),
        covers=covers,
    )

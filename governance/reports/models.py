"""Reports: a fairness or drift computation requested for a model version, its inputs, and
the bookkeeping of the job that computes it.

``Report`` and ``ReportInput`` are governed: they change only through
``governance.reports.services``, each change with its audit record (``report.requested``,
``report.started``, ``report.completed``, ``report.failed``). ``ReportJob`` holds the lease
and the progress of the job: it changes at every progress step and heartbeat, which are
operational, not governed, and not audited.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from registry.models import DatasetVersion, GovernedModel, ModelVersion, RegisteredModel


class ReportKind(models.TextChoices):
    FAIRNESS = "fairness", "Fairness"
    DRIFT = "drift", "Drift"
    LINEAGE = "lineage", "Lineage"
    REGULATOR_EXPORT = "regulator_export", "Regulator export"


class ReportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Verdict(models.TextChoices):
    PASS = "pass", "Pass"
    FAIL = "fail", "Fail"


class InputRole(models.TextChoices):
    EVALUATION = "evaluation", "Evaluation"
    REFERENCE = "reference", "Reference"
    CURRENT = "current", "Current"


class Report(GovernedModel):
    """A report about one model version, or (``regulator_export``) about one audit export
    bundle: the regulator's PDF of it.

    ``status`` runs ``queued -> running -> done | failed``; a running report whose job's
    lease expired is taken over (``running -> running``, a new attempt). A done report is
    never computed again. ``result_json`` is the exact text embedded in the PDF, whose
    SHA-256 is ``pdf_sha256``; ``audit_seq`` is the last audit record's seq when the PDF was
    generated. ``thresholds`` are those the verdict was judged against (decimal strings),
    taken from ``policy`` unless ``thresholds_overridden``.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=20, choices=ReportKind.choices)
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="reports", null=True, blank=True
    )
    audit_export = models.ForeignKey(
        "audit.AuditExport",
        on_delete=models.PROTECT,
        related_name="reports",
        null=True,
        blank=True,
        help_text="the bundle a regulator_export report renders",
    )
    parameters = models.JSONField(default=dict)
    thresholds = models.JSONField(default=dict)
    thresholds_overridden = models.BooleanField(default=False)
    policy = models.ForeignKey(
        "approvals.SignOffPolicy", on_delete=models.PROTECT, null=True, blank=True
    )
    policy_label = models.CharField(max_length=100, blank=True)
    status = models.CharField(
        max_length=10, choices=ReportStatus.choices, default=ReportStatus.QUEUED
    )
    attempts = models.PositiveIntegerField(default=0)
    result_json = models.TextField(blank=True)
    verdict = models.CharField(max_length=4, choices=Verdict.choices, blank=True)
    pdf_path = models.CharField(max_length=500, blank=True)
    pdf_sha256 = models.CharField(max_length=64, blank=True)
    audit_seq = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    error_code = models.CharField(
        max_length=40, blank=True, help_text="the error format's code of a failed report"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reports"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["model_version", "kind", "status"])]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(
                        kind="regulator_export",
                        audit_export__isnull=False,
                        model_version__isnull=True,
                    )
                    | (
                        ~models.Q(kind="regulator_export")
                        & models.Q(audit_export__isnull=True, model_version__isnull=False)
                    )
                ),
                name="report_subject_of_its_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} report {self.id} ({self.status})"


class ReportInput(GovernedModel):
    """One input of a report: an uploaded file stored under ``REPORTS_UPLOAD_DIR`` (``path``
    relative to it) or a registered dataset version read from its ``source_uri``; either
    way with the SHA-256 of its bytes."""

    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="inputs")
    role = models.CharField(max_length=10, choices=InputRole.choices)
    name = models.CharField(max_length=255)
    path = models.CharField(max_length=500, blank=True)
    dataset_version = models.ForeignKey(
        DatasetVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="reports"
    )
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()

    class Meta:
        ordering = ["report", "role"]
        constraints = [
            models.UniqueConstraint(fields=["report", "role"], name="report_input_role_unique")
        ]

    def __str__(self) -> str:
        return f"{self.role} {self.name} of {self.report_id}"


class ReportJob(models.Model):
    """The job computing a report: who holds it (``worker``) until ``lease_expires_at``,
    and how far it got. A job is claimed by a conditional UPDATE (free, or lease expired,
    and not ``finished``), so one worker wins; a heartbeat extends the lease only for the
    holder."""

    report = models.OneToOneField(
        Report, on_delete=models.CASCADE, primary_key=True, related_name="job"
    )
    worker = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    stage = models.CharField(max_length=50, blank=True)
    finished = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"job of {self.report_id} ({self.progress}%)"


class PackageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class RegulatorPackage(models.Model):
    """A regulator's package requested from the pages: the job that writes it
    (``governance.reports.package.package_run``) and where its PDF is.

    ``status`` runs ``queued -> running -> done | failed``; ``progress`` says what the job is
    doing. ``model`` is None for a package of the whole log (``full``). The row is the job's
    bookkeeping; what is governed is the export, recorded as ``regulator_package.exported``
    (with ``sha256``, the PDF's) in the transaction that makes the row ``done``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model = models.ForeignKey(
        RegisteredModel,
        on_delete=models.PROTECT,
        related_name="regulator_packages",
        null=True,
        blank=True,
    )
    full = models.BooleanField(default=False)
    since = models.DateTimeField(null=True, blank=True)
    until = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=PackageStatus.choices, default=PackageStatus.QUEUED
    )
    progress = models.CharField(max_length=200, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="regulator_packages"
    )
    file = models.CharField(max_length=200, blank=True, help_text="under REPORTS_DIR/packages")
    sha256 = models.CharField(max_length=64, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    record_count = models.PositiveIntegerField(null=True, blank=True)
    bundle_sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(full=True, model__isnull=True)
                | models.Q(full=False, model__isnull=False),
                name="regulator_package_model_or_full",
            )
        ]

    def __str__(self) -> str:
        subject = self.model.name if self.model else "the whole log"
        return f"regulator's package of {subject} ({self.status})"

"""Reads of reports, scoped to what the user may see: a report is visible to whoever can
see its model version (the registry's selectors), and the regulator's PDF of an export to
whoever may see that export (its requester, holding the export permission); out of scope is
404."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.db.models import Q, QuerySet

from audit.exports import EXPORT_PERMISSION, audit_export_list
from core.accounts.models import User
from core.errors import Conflict, NotFound
from governance.reports.models import Report, ReportStatus
from registry.selectors import model_list


def report_list(
    *,
    user: User,
    model: str | None = None,
    version: int | None = None,
    kind: str | None = None,
    status: str | None = None,
) -> QuerySet[Report]:
    """Reports the user may see, newest first (``model`` and ``version`` keep those of that
    model or version)."""
    visible = Q(model_version__model__in=model_list(user=user))
    if user.has_perm(EXPORT_PERMISSION):
        visible |= Q(audit_export__in=audit_export_list(user=user))
    reports = Report.objects.filter(visible).select_related(
        "model_version__model", "audit_export", "requested_by", "job"
    )
    if model:
        reports = reports.filter(model_version__model__name=model)
    if version is not None:
        reports = reports.filter(model_version__version=version)
    if kind:
        reports = reports.filter(kind=kind)
    if status:
        reports = reports.filter(status=status)
    return reports.prefetch_related("inputs").order_by("-created_at")


def report_get(*, user: User, report_id: uuid.UUID | str) -> Report:
    """One visible report, else ``NotFound``."""
    found = report_list(user=user).filter(pk=report_id).first()
    if found is None:
        raise NotFound(f"report {report_id} not found")
    return found


def report_pdf(*, report: Report) -> Path:
    """The PDF file of a done report; ``Conflict`` (409) before that."""
    if report.status != ReportStatus.DONE or not report.pdf_path:
        raise Conflict(f"report {report.pk} is {report.status}: its PDF exists once it is done")
    return Path(settings.REPORTS_DIR) / report.pdf_path

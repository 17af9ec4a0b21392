"""Report pages: request a report, follow its progress, read its PDF.

Reads go through the reports' and the registry's selectors (a report on a model the person
may not see is a 404); a request goes through the API's serializer and the one service
(``services.report_request``), so the page validates, refuses and audits as the API does.
"""

from __future__ import annotations

import ast
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any, cast

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods
from rest_framework import serializers as drf

from core.accounts.callers import Caller
from core.accounts.models import User
from core.errors import Conflict, DomainError, NotFound
from core.roles import has_role
from governance.approvals.evidence import ago
from governance.approvals.forms import add_domain_error
from governance.reports import selectors, services
from governance.reports.forms import DATASET_FIELDS, PAGE_KINDS, ReportRequestForm
from governance.reports.models import InputRole, Report, ReportKind, ReportStatus
from governance.reports.serializers import ReportRequestSerializer
from governance.reports.summary import result_summary
from registry import selectors as registry_selectors
from registry.models import DatasetVersion, LineageRole, ModelVersion

INPUT_ORDER = [InputRole.EVALUATION, InputRole.REFERENCE, InputRole.CURRENT]
STAGES = {
    "": "Waiting for a worker",
    "claimed": "A worker has taken the job",
}


def may_request_reports(user: User) -> bool:
    """Whether ``user`` may request fairness, drift and lineage reports (on the versions
    they can see): the roles the service accepts."""
    return any(has_role(user, role) for role in services.REQUESTING_ROLES)


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _problem(request: HttpRequest, title: str, message: str, status: int) -> HttpResponse:
    return render(
        request,
        "reports/pages/problem.html",
        {"title": title, "message": message},
        status=status,
    )


def _visible_dataset_versions(user: User) -> list[DatasetVersion]:
    return list(
        DatasetVersion.objects.filter(dataset__in=registry_selectors.dataset_list(user=user))
        .select_related("dataset")
        .order_by("dataset__name", "version")
    )


def _put_serializer_errors(form: ReportRequestForm, errors: Any) -> None:
    for name, messages in dict(errors).items():
        target = name if name in form.fields else None
        for message in messages if isinstance(messages, list) else [messages]:
            text = str(message)
            form.add_error(target, text if target else f"{name}: {text}")


def _submit(request: HttpRequest, form: ReportRequestForm, version: ModelVersion) -> Report | None:
    """The request through the API's serializer and the service; None with the errors on
    the form when either refuses."""
    user = _user(request)
    data = form.request_data(model=version.model.name, version=version.version)
    query = ReportRequestSerializer(data=data)
    if not query.is_valid():
        _put_serializer_errors(form, query.errors)
        return None
    try:
        parameters, overrides = query.parameters(), query.overrides()
    except drf.ValidationError as error:
        _put_serializer_errors(form, error.detail)
        return None
    visible = registry_selectors.dataset_list(user=user)
    datasets: dict[str, DatasetVersion] = {}
    for name in DATASET_FIELDS[form.kind]:
        role = name.removesuffix("_dataset_version")
        found = (
            DatasetVersion.objects.filter(pk=data[name], dataset__in=visible)
            .select_related("dataset")
            .first()
        )
        if found is None:
            form.add_error(name, "That dataset version does not exist or is not visible to you.")
            return None
        datasets[role] = found
    try:
        return services.report_request(
            caller=Caller(user=user, auth="session"),
            version=version,
            kind=form.kind,
            parameters=parameters,
            uploads={},
            datasets=datasets,
            overrides=overrides,
        )
    except DomainError as error:
        add_domain_error(form, error)
        return None


@login_required
@require_http_methods(["GET", "POST"])
def report_new(request: HttpRequest) -> HttpResponse:
    """The form to request a fairness, drift or lineage report on a visible version
    (``?model=NAME&version=N[&kind=...]``), offered only to those who may request one."""
    user = _user(request)
    params = request.GET
    name, number = params.get("model", ""), params.get("version", "")
    if not name or not number.isdigit() or int(number) < 1:
        return _problem(
            request,
            "Which model version?",
            "The address needs a model name and a version number, for example "
            "/reports/new/?model=recidivism-risk&version=1.",
            400,
        )
    try:
        version = registry_selectors.model_version_get(
            user=user, model_name=name, version=int(number)
        )
    except NotFound as error:
        raise Http404(error.message) from error
    kind = params.get("kind") or ReportKind.FAIRNESS.value
    if kind not in PAGE_KINDS:
        return _problem(
            request,
            "Unknown kind of report",
            f"“{kind}” is not a kind of report. Choose fairness, drift or lineage.",
            400,
        )
    if not may_request_reports(user):
        return _problem(
            request,
            "You cannot request reports",
            "Requesting a report needs a data science, engineering, validation, officer or "
            "admin role. Auditors read reports but do not request them.",
            403,
        )
    _, policy_label, thresholds = (
        (None, services.LINEAGE_POLICY_LABEL, {})
        if kind == ReportKind.LINEAGE
        else services.policy_thresholds(version, kind)
    )
    form = ReportRequestForm(
        request.POST if request.method == "POST" else None,
        kind=kind,
        version=version,
        others=_visible_dataset_versions(user) if kind == ReportKind.DRIFT else [],
        thresholds=thresholds,
    )
    status = 200
    if request.method == "POST":
        report = _submit(request, form, version) if form.is_valid() else None
        if report is not None:
            return HttpResponseRedirect(reverse("report_pages:detail", args=[report.pk]))
        status = 400
    kinds = [
        {
            "value": k.value,
            "label": k.label,
            "url": f"{reverse('report_pages:new')}?model={version.model.name}"
            f"&version={version.version}&kind={k.value}",
        }
        for k in PAGE_KINDS
    ]
    return render(
        request,
        "reports/pages/new.html",
        {
            "form": form,
            "kind": ReportKind(kind),
            "kinds": kinds,
            "version": version,
            "model": version.model,
            "usages": list(version.dataset_usages.all()),
            "policy_label": policy_label,
            "thresholds": sorted(thresholds.items()),
        },
        status=status,
    )


def _get(request: HttpRequest, report_id: uuid.UUID) -> Report:
    try:
        return selectors.report_get(user=_user(request), report_id=report_id)
    except NotFound as error:
        raise Http404(error.message) from error


@dataclass(frozen=True)
class Standing:
    """Whether a report is eligible as sign-off evidence (the reports app's rules), and why
    not; a report that is eligible stands as evidence whatever its verdict."""

    eligible: bool
    reasons: list[str]


def _standing(report: Report) -> Standing | None:
    """The reports app's rules (``governance.reports.evidence``) in words; the policy's
    threshold values and freshness are judged on the review page, when a request asks."""
    version = report.model_version
    if version is None or report.kind not in (ReportKind.FAIRNESS, ReportKind.DRIFT):
        return None
    reasons = []
    if report.thresholds_overridden:
        reasons.append("it was computed with threshold overrides")
    inputs = {item.role: item.dataset_version_id for item in report.inputs.all()}
    usages = list(version.dataset_usages.all())
    if report.kind == ReportKind.FAIRNESS:
        allowed = {
            u.dataset_version_id
            for u in usages
            if u.role in (LineageRole.VALIDATION, LineageRole.TEST)
        }
        if inputs.get(InputRole.EVALUATION) not in allowed:
            reasons.append("its data is not the version's registered validation or test data")
        declared = version.model.sensitive_attributes or []
        covered = set(report.parameters.get("sensitive") or [])
        missing = [name for name in declared if name not in covered]
        if missing:
            reasons.append(
                "it does not cover the sensitive "
                + ("attribute" if len(missing) == 1 else "attributes")
                + " the model declares: "
                + ", ".join(missing)
            )
    elif inputs.get(InputRole.REFERENCE) not in {u.dataset_version_id for u in usages}:
        reasons.append("its reference data is not one of the version's registered datasets")
    return Standing(eligible=not reasons, reasons=reasons)


def _when(moment: Any) -> dict[str, Any] | None:
    if moment is None:
        return None
    return {"at": moment, "ago": ago(timezone.now() - moment)}


GROUP = re.compile(r"\{[^{}]*\}")


def readable_reason(reason: str) -> str:
    """A verdict reason with the groups it names written as words: ``for {'race': 'Asian'}``
    reads ``for race Asian``. Text that is not such a mapping is left as it is."""

    def words(match: re.Match[str]) -> str:
        try:
            group = ast.literal_eval(match.group(0))
        except (ValueError, SyntaxError):
            return match.group(0)
        if not isinstance(group, dict):
            return match.group(0)
        return ", ".join(f"{key} {value}" for key, value in group.items())

    return GROUP.sub(words, reason)


def column_list(items: list[Any]) -> str:
    """Columns as text; those given with a reason (``{"name", "reason"}``) grouped by it:
    ``"identifier: id, c_case_number; date: c_jail_in"``."""
    names = [str(item) for item in items if not isinstance(item, dict)]
    grouped: dict[str, list[str]] = {}
    for item in items:
        if isinstance(item, dict):
            grouped.setdefault(str(item.get("reason") or "other"), []).append(
                str(item.get("name") or item.get("column") or "")
            )
    parts = [", ".join(names)] if names else []
    parts += [f"{reason}: {', '.join(columns)}" for reason, columns in grouped.items()]
    return "; ".join(parts)


def _drift_figures(figures: dict[str, Any]) -> dict[str, Any]:
    return {
        **figures,
        "share_percent": round(float(figures.get("share") or 0) * 100),
        "drift_share_percent": round(float(figures.get("drift_share") or 0) * 100),
        "drifted_text": column_list(figures.get("drifted_columns") or []),
        "not_evaluable_text": column_list(figures.get("not_evaluable") or []),
        "excluded_text": column_list(figures.get("excluded") or []),
    }


PARAMETER_NAMES = {
    "label": "Label column",
    "prediction": "Prediction column",
    "sensitive": "Sensitive attributes",
    "positive_label": "Positive label value",
    "prediction_positive": "Positive prediction values",
    "favorable_label": "Favorable outcome value",
    "privileged": "Privileged groups",
    "column_types": "Column types",
    "columns": "Columns",
    "exclude": "Columns left out",
}


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key} = {item}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)


def _parameters(report: Report) -> list[tuple[str, str]]:
    """The report's parameters as labelled text, the empty ones left out."""
    return [
        (PARAMETER_NAMES.get(name, name.replace("_", " ").capitalize()), _text(value))
        for name, value in (report.parameters or {}).items()
        if value not in (None, "", [], {}) and name != "columns"
    ]


@login_required
@require_http_methods(["GET"])
def report_detail(request: HttpRequest, report_id: uuid.UUID) -> HttpResponse:
    """A report on a visible version: what was asked, by whom and when; its progress while
    queued or running (the page reloads itself every 2 seconds); its verdict, summary and PDF
    when done; the error when failed."""
    report = _get(request, report_id)
    summary = json.loads(report.result_json) if report.result_json else None
    figures = result_summary(summary) if summary else None
    if figures is not None and report.kind == ReportKind.DRIFT:
        figures = _drift_figures(figures)
    job = getattr(report, "job", None)
    active = report.status in (ReportStatus.QUEUED, ReportStatus.RUNNING)
    version = report.model_version
    return render(
        request,
        "reports/pages/detail.html",
        {
            "report": report,
            "version": version,
            "model": version.model if version else None,
            "inputs": sorted(report.inputs.all(), key=lambda item: INPUT_ORDER.index(item.role)),
            "active": active,
            "progress": int(job.progress) if job else 0,
            "stage": (STAGES.get(job.stage, job.stage.replace("_", " ")) if job else "")
            if active
            else "",
            "summary": figures,
            "reasons": [
                readable_reason(str(item)) for item in (figures or {}).get("verdict_reasons") or []
            ],
            "parameters": _parameters(report),
            "standing": _standing(report),
            "requested": _when(report.created_at),
            "started": _when(report.started_at),
            "finished": _when(report.finished_at),
            "has_pdf": report.status == ReportStatus.DONE and bool(report.pdf_path),
            "may_request": version is not None and may_request_reports(_user(request)),
        },
    )


def pdf_filename(report: Report) -> str:
    """A readable name for the PDF: ``<model>-v<N>-<kind>-<date>.pdf``."""
    stamp = (report.finished_at or report.created_at).strftime("%Y-%m-%d")
    if report.model_version is not None:
        subject = f"{report.model_version.model.name}-v{report.model_version.version}"
    else:
        subject = "audit-export"
    return f"{subject}-{report.kind.replace('_', '-')}-report-{stamp}.pdf"


@login_required
@require_http_methods(["GET"])
def report_pdf(request: HttpRequest, report_id: uuid.UUID) -> HttpResponseBase:
    """The stored PDF of a done report on a visible version; 409 (as the API) while the report
    is not done, 404 for a report the person may not see or whose file is missing."""
    report = _get(request, report_id)
    try:
        path = selectors.report_pdf(report=report)
    except Conflict as error:
        return _problem(request, "The PDF is not ready", error.message, 409)
    if not path.is_file():
        raise Http404(f"the PDF of report {report.pk} is missing")
    response = FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=pdf_filename(report),
        content_type="application/pdf",
    )
    response["X-Content-SHA256"] = report.pdf_sha256
    return response

"""Server-rendered approval pages, mounted at ``/approvals/``: the list of deployment
requests, "request a deployment", the review page of a request, and the sign, withdraw and
revoke forms.

Views are thin: reads go through ``selectors`` (a request outside the user's scope is a 404),
writes through ``services`` (a refusal is shown on the form with the service's reason, with
its HTTP status: 403 for separation of duties or a failed re-authentication, 409 for a
conflict). Every page needs a login; every form is CSRF-protected by the middleware.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from core.accounts.callers import Caller
from core.accounts.models import User
from core.errors import DomainError, NotFound
from core.roles import may_request_reports
from governance.approvals import readable, selectors, services
from governance.approvals.forms import (
    DeploymentRequestForm,
    EmergencyForm,
    FindingForm,
    ReasonForm,
    RequestFilterForm,
    RetrospectiveForm,
    SignForm,
    add_domain_error,
    shown_content_values,
)
from governance.approvals.models import BLOCKING_SEVERITIES, DeploymentRequest
from governance.approvals.workflow import (
    Decision,
    EvidenceStatus,
    Meaning,
    RequestState,
    current_step,
    steps_from,
)
from registry import selectors as registry_selectors
from registry.models import ModelVersion

PAGE_SIZE = 25


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _caller(request: HttpRequest) -> Caller:
    return Caller(user=_user(request), auth="session")


def _get_request(request: HttpRequest, request_id: int) -> DeploymentRequest:
    try:
        return selectors.deployment_request_get(user=_user(request), request_id=request_id)
    except NotFound as error:
        raise Http404(error.message) from error


def _review_url(request_id: int) -> str:
    return reverse("approval_pages:review", args=[request_id])


@login_required
@require_http_methods(["GET"])
def request_list(request: HttpRequest) -> HttpResponse:
    """Requests the user may see, filtered by state and environment, or only those awaiting
    the user's signature."""
    user = _user(request)
    form = RequestFilterForm(request.GET or None, user=user)
    state = environment = ""
    awaiting = False
    if form.is_valid():
        state = form.cleaned_data["state"]
        environment = form.cleaned_data["environment"]
        awaiting = form.cleaned_data["awaiting"]
    found: Any
    if awaiting:
        found = [
            r
            for r in selectors.deployment_requests_awaiting(user=user)
            if (not state or r.state == state)
            and (not environment or r.environment.name == environment)
        ]
    else:
        found = selectors.deployment_request_list(
            user=user, state=state or None, environment=environment or None
        )
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    for row in page.object_list:
        row.blocked_by = _blocked_by(row)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "approvals/request_list.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "awaiting_count": len(selectors.deployment_requests_awaiting(user=user)),
            "filtered": bool(state or environment or awaiting),
            "may_request": selectors.deployment_request_allowed(user),
            "nav": "list",
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def finding_create(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """Raise a finding against a version: for the holders of a finding role on it (the
    service's rule, checked before the form is shown); 404 for a version the person may not
    see. Done, back to the model's page."""
    user = _user(request)
    try:
        found = registry_selectors.model_version_get(user=user, model_name=name, version=version)
        services.finding_open_authorize(caller=_caller(request), version=found)
    except NotFound as error:
        raise Http404(error.message) from error
    except DomainError as error:
        return render(
            request,
            "approvals/finding_form.html",
            {"version": found, "refusal": error.message},
            status=error.http_status,
        )
    status = 200
    if request.method == "POST":
        form = FindingForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                finding = services.finding_open(
                    caller=_caller(request),
                    version=found,
                    title=data["title"],
                    severity=data["severity"],
                    owner=data["owner"],
                    description=data["description"],
                    due_date=data["due_date"],
                )
            except DomainError as error:
                add_domain_error(form, error)
                status = error.http_status
            else:
                messages.success(
                    request,
                    f"Finding #{finding.pk} raised against {found}"
                    + (
                        ": it blocks the gate until it is resolved."
                        if finding.severity in BLOCKING_SEVERITIES
                        else "."
                    ),
                )
                return HttpResponseRedirect(
                    reverse("workspace:model", args=[found.model.name]) + "#findings"
                )
        else:
            status = 400
    else:
        form = FindingForm(initial={"owner": found.model.owner_id})
    return render(
        request, "approvals/finding_form.html", {"form": form, "version": found}, status=status
    )


@login_required
@require_http_methods(["GET", "POST"])
def request_create(request: HttpRequest) -> HttpResponse:
    """Choose a visible model version and an environment, give a justification; the service
    refuses what the promotion order, the model's state or the user's rights do not allow."""
    user = _user(request)
    status = 200
    if request.method == "POST":
        form = DeploymentRequestForm(request.POST, user=user)
        if form.is_valid():
            try:
                created = services.deployment_request_submit(
                    caller=_caller(request),
                    version=form.cleaned_data["model_version"],
                    environment=form.cleaned_data["environment"],
                    reason=form.cleaned_data["reason"],
                )
            except DomainError as error:
                add_domain_error(form, error)
                status = error.http_status
            else:
                messages.success(
                    request,
                    f"Request #{created.pk} submitted: {created.get_state_display().lower()}.",
                )
                return HttpResponseRedirect(_review_url(created.pk))
        else:
            status = 400
    else:
        form = DeploymentRequestForm(
            initial={
                "model_version": request.GET.get("version"),
                "environment": request.GET.get("environment"),
            },
            user=user,
        )
    return render(
        request, "approvals/request_form.html", {"form": form, "nav": "create"}, status=status
    )


@dataclass(frozen=True)
class FieldDiff:
    """One parameter or metric of the live version compared with the requested one."""

    name: str
    live: Any
    requested: Any
    change: str  # "same", "changed", "added", "removed"


def _diff(live: dict[str, Any], requested: dict[str, Any]) -> list[FieldDiff]:
    rows = []
    for name in sorted(set(live) | set(requested)):
        if name not in live:
            change = "added"
        elif name not in requested:
            change = "removed"
        else:
            change = "same" if live[name] == requested[name] else "changed"
        rows.append(FieldDiff(name, live.get(name), requested.get(name), change))
    return rows


def _lineage(user: User, version: ModelVersion) -> dict[str, Any]:
    graph = registry_selectors.lineage_get(
        user=user, model_name=version.model.name, version=version.version
    )
    me = f"model_version:{version.model.name}:{version.version}"
    nodes = {node["id"]: node for node in graph["nodes"]}
    datasets = [
        {**nodes[edge["from"]], "role": edge["role"]}
        for edge in graph["edges"]
        if edge["to"] == me and edge["role"] != "parent"
    ]
    parents = [nodes[edge["from"]] for edge in graph["edges"] if edge["role"] == "parent"]
    return {"datasets": datasets, "ancestry": parents}


def _trail(found: DeploymentRequest) -> list[dict[str, Any]]:
    rows = []
    for record in selectors.deployment_request_audit_trail(request=found):
        body = json.loads(record.body)
        data = body.get("data") or {}
        # Refusals and failed re-authentications are security events: say which rule.
        security = record.action.endswith((".refused", "_failed"))
        rows.append(
            {
                "seq": record.seq,
                "ts": record.ts,
                "actor": (body.get("actor") or {}).get("name") or record.actor_id,
                "action": record.action,
                "refusal": data.get("code") if security else None,
                "message": data.get("message") if security else "",
            }
        )
    return rows


def _blocked_by(found: DeploymentRequest, gate: selectors.GateDecision | None = None) -> str:
    """For an approved request the gate denies on its own account, why in words; else ""."""
    if found.state != RequestState.APPROVED:
        return ""
    gate = gate or selectors.gate_preview(found)
    if gate.allowed or gate.request_id != found.pk:
        return ""
    return readable.reasons_text(gate.reasons)


def _finding_ids(reasons: list[str]) -> set[int]:
    """The findings the gate names as blocking (``open_finding:<id>``)."""
    prefix = "open_finding:"
    return {
        int(r[len(prefix) :])
        for r in reasons
        if r.startswith(prefix) and r[len(prefix) :].isdigit()
    }


@login_required
@require_http_methods(["GET"])
def request_review(request: HttpRequest, request_id: int) -> HttpResponse:
    """Everything a signer reviews: the version, its lineage, the evidence and its verdicts,
    the difference from the live version, the policy's steps and signatures, the gate's
    current answer and the request's audit trail."""
    user = _user(request)
    found = _get_request(request, request_id)
    version = found.model_version
    live = selectors.live_version(found)
    refusal = selectors.signing_refusal(user=user, request=found)
    gate = selectors.gate_preview(found)
    pending = found.state == RequestState.PENDING
    emergency = found.state == RequestState.EMERGENCY
    blocking = _finding_ids(gate.reasons)
    findings = [
        {"finding": f, "blocks": f.pk in blocking} for f in selectors.open_findings(version)
    ]
    signoffs = list(found.signoffs.all())
    retrospective_refusal = (
        selectors.retrospective_refusal(user=user, request=found) if emergency else None
    )
    return render(
        request,
        "approvals/request_review.html",
        {
            "req": found,
            "version": version,
            "model": version.model,
            "lineage": _lineage(user, version),
            "evidence": selectors.evidence_for(found),
            "live": live,
            "diffs": [
                ("Parameters", _diff(live.parameters, version.parameters)),
                ("Metrics", _diff(live.metrics, version.metrics)),
            ]
            if live
            else [],
            "steps": selectors.step_progress(found),
            "signoffs": signoffs,
            "gate": gate,
            "blocked_by": _blocked_by(found, gate),
            "findings": findings,
            "blocking_findings": [row for row in findings if row["blocks"]],
            "trail": _trail(found),
            "signing_refusal": refusal,
            "show_signing_refusal": pending
            and refusal is not None
            and selectors.holds_signing_role(user, version.model),
            "can_sign": pending and refusal is None,
            "can_withdraw": pending and found.requester_id == user.pk,
            "can_revoke": found.state in (RequestState.APPROVED, RequestState.EMERGENCY)
            and selectors.revoke_allowed(user),
            "can_review_retrospective": emergency and retrospective_refusal is None,
            "retrospective": selectors.retrospective_of(found) if emergency else None,
            "retrospective_refusal": retrospective_refusal,
            "may_request_report": may_request_reports(user),
        },
    )


def _previews(
    found: DeploymentRequest, user: User
) -> dict[tuple[str, str], services.SignOffPreview]:
    """What a signature would sign now for each decision the form offers, with the step's
    meaning (``services.signoff_preview``); empty when there is nothing to sign."""
    if found.state != RequestState.PENDING:
        return {}
    try:
        shown = [
            services.signoff_preview(user=user, request=found, decision=d) for d in Decision.values
        ]
    except DomainError:
        return {}
    return {(preview.decision, preview.meaning): preview for preview in shown}


def _shown(preview: services.SignOffPreview | None) -> dict[str, Any] | None:
    if preview is None:
        return None
    return {
        "step": preview.step,
        "content": preview.content,
        "json": json.dumps(preview.content, indent=2, sort_keys=True),
        "sha256": preview.sha256,
    }


@login_required
@require_http_methods(["GET", "POST"])
def request_sign(request: HttpRequest, request_id: int) -> HttpResponse:
    """Sign the current step with decision, comment and password; the meaning is the step's.
    Approving while required evidence is not passing needs the acknowledgement box. A refusal
    keeps the form and says why (the service has recorded it as a security event)."""
    user = _user(request)
    found = _get_request(request, request_id)
    step = current_step(steps_from(found.policy.steps), selectors.request_signatures(found))
    evidence = selectors.evidence_for(found)
    shortfalls = _shortfalls(evidence)
    step_meaning = step.meaning if step else None
    status = 200
    if request.method == "POST":
        form = SignForm(request.POST, step_meaning=step_meaning, shortfalls=shortfalls)
        if form.is_valid():
            try:
                signoff = services.signoff_sign(
                    caller=_caller(request),
                    request=found,
                    decision=form.cleaned_data["decision"],
                    meaning=form.cleaned_data["meaning"] or None,
                    comment=form.cleaned_data["comment"],
                    password=form.cleaned_data["password"],
                    expected_content_sha256=form.cleaned_data["expected_content_sha256"],
                    acknowledge_evidence=form.cleaned_data["acknowledge_evidence"],
                )
            except DomainError as error:
                add_domain_error(form, error)
                status = error.http_status
                found = _get_request(request, request_id)
                evidence = selectors.evidence_for(found)
            else:
                found.refresh_from_db()
                messages.success(
                    request,
                    f"Your signature on step “{signoff.step}” ({signoff.decision}) is recorded "
                    f"with SHA-256 {signoff.signed_sha256}. The request is now "
                    f"{found.get_state_display().lower()}.",
                )
                return HttpResponseRedirect(_review_url(found.pk))
        else:
            status = 400
    else:
        form = SignForm(
            initial={"decision": Decision.APPROVE, "meaning": step_meaning or ""},
            step_meaning=step_meaning,
            shortfalls=shortfalls,
        )
    decision = form.data.get("decision") or Decision.APPROVE
    if decision not in Decision.values:
        decision = Decision.APPROVE
    meaning = step_meaning or Meaning.APPROVAL
    previews = _previews(found, user)
    return render(
        request,
        "approvals/sign_form.html",
        {
            "req": found,
            "version": found.model_version,
            "form": form,
            "step": step,
            "preview": _shown(previews.get((decision, meaning))),
            "shown_content": shown_content_values(
                {choice: preview.sha256 for choice, preview in previews.items()}
            ),
            "evidence": evidence,
            "shortfalls": shortfalls,
            "signing_refusal": selectors.signing_refusal(user=user, request=found),
        },
        status=status,
    )


def _shortfalls(evidence: list[Any]) -> list[str]:
    """The required evidence not passing, in words (``fairness: missing``)."""
    return [
        f"{result.requirement.kind}: {readable.evidence_status_text(result.status)}"
        for result in evidence
        if result.status != EvidenceStatus.PASSED
    ]


def _close_view(
    request: HttpRequest, request_id: int, *, title: str, verb: str, apply: Any
) -> HttpResponse:
    found = _get_request(request, request_id)
    status = 200
    if request.method == "POST":
        form = ReasonForm(request.POST)
        if form.is_valid():
            try:
                closed = apply(
                    caller=_caller(request), request=found, reason=form.cleaned_data["reason"]
                )
            except DomainError as error:
                add_domain_error(form, error)
                status = error.http_status
            else:
                messages.success(request, f"Request #{closed.pk} {verb}.")
                return HttpResponseRedirect(_review_url(closed.pk))
        else:
            status = 400
    else:
        form = ReasonForm()
    return render(
        request,
        "approvals/close_form.html",
        {"req": found, "version": found.model_version, "form": form, "title": title},
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def request_withdraw(request: HttpRequest, request_id: int) -> HttpResponse:
    """The requester withdraws a pending request, with a reason."""
    return _close_view(
        request,
        request_id,
        title="Withdraw the request",
        verb="withdrawn",
        apply=services.deployment_request_withdraw,
    )


@login_required
@require_http_methods(["GET", "POST"])
def request_revoke(request: HttpRequest, request_id: int) -> HttpResponse:
    """A risk or compliance officer revokes an approval, with a reason."""
    return _close_view(
        request,
        request_id,
        title="Revoke the approval",
        verb="revoked",
        apply=services.deployment_request_revoke,
    )


def _may_break_glass(user: User) -> bool:
    return selectors.break_glass_allowed(user)


@login_required
@require_http_methods(["GET", "POST"])
def request_emergency(request: HttpRequest) -> HttpResponse:
    """Break-glass: a holder of the break-glass permission (the risk officers by default)
    allows a deployment without sign-off, with a mandatory justification and the password.
    Anyone else gets 403 (and a POST is refused and recorded by the service)."""
    user = _user(request)
    status = 200 if _may_break_glass(user) else 403
    if request.method == "POST":
        form = EmergencyForm(request.POST, user=user)
        if form.is_valid():
            try:
                created = services.deployment_emergency(
                    caller=_caller(request),
                    version=form.cleaned_data["model_version"],
                    environment=form.cleaned_data["environment"],
                    reason=form.cleaned_data["reason"],
                    password=form.cleaned_data["password"],
                )
            except DomainError as error:
                add_domain_error(form, error)
                status = error.http_status
            else:
                messages.warning(
                    request,
                    f"Emergency request #{created.pk} opened: the deployment is allowed without "
                    "sign-off. A retrospective review is due by "
                    f"{created.retrospective_due_at:%Y-%m-%d %H:%M} UTC.",
                )
                return HttpResponseRedirect(_review_url(created.pk))
        elif status == 200:
            status = 400
    else:
        form = EmergencyForm(
            initial={
                "model_version": request.GET.get("version"),
                "environment": request.GET.get("environment"),
            },
            user=user,
        )
    return render(
        request,
        "approvals/emergency_form.html",
        {"form": form, "allowed": _may_break_glass(user), "nav": "emergency"},
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def request_retrospective(request: HttpRequest, request_id: int) -> HttpResponse:
    """The retrospective review of a break-glass request, signed with the password by a
    validator or officer who neither broke the glass nor wrote the version (the service
    refuses anyone else, recorded as a security event)."""
    user = _user(request)
    found = _get_request(request, request_id)
    status = 200
    if request.method == "POST":
        form = RetrospectiveForm(request.POST)
        if form.is_valid():
            try:
                services.signoff_retrospective(
                    caller=_caller(request),
                    request=found,
                    decision=form.cleaned_data["decision"],
                    comment=form.cleaned_data["comment"],
                    password=form.cleaned_data["password"],
                )
            except DomainError as error:
                add_domain_error(form, error)
                status = error.http_status
            else:
                messages.success(request, f"The retrospective review of #{found.pk} is signed.")
                return HttpResponseRedirect(_review_url(found.pk))
        else:
            status = 400
    else:
        form = RetrospectiveForm()
    return render(
        request,
        "approvals/retrospective_form.html",
        {
            "req": found,
            "version": found.model_version,
            "form": form,
            "review": selectors.retrospective_of(found),
            "refusal": selectors.retrospective_refusal(user=user, request=found),
            "evidence": selectors.evidence_for(found),
        },
        status=status,
    )

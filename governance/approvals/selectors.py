"""Reads of environments, policies, requests and deployments, scoped to what the user may see.

A request or deployment is visible exactly when its model is (``registry.selectors``); out of
scope is 404.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Permission
from django.db.models import QuerySet
from django.utils import timezone
from guardian.shortcuts import get_objects_for_user

from audit import selectors as audit_selectors
from audit.models import AuditRecord
from core.accounts.models import User
from core.errors import DomainError, NotFound
from core.roles import SIGNING_ROLES, Role, has_role
from governance.approvals import decision
from governance.approvals.evidence import Candidate, EvidenceResult, judge_all
from governance.approvals.models import (
    Deployment,
    DeploymentEvent,
    DeploymentRequest,
    Environment,
    EvidenceEntry,
    Finding,
    FindingStatus,
    SignOff,
    SignOffPolicy,
)
from governance.approvals.workflow import (
    Decision,
    Parties,
    RequestState,
    Signature,
    Step,
    check_retrospective_signer,
    check_signer,
    current_step,
    live_versions,
    steps_from,
)
from registry import selectors as registry_selectors
from registry.models import ModelVersion, RegisteredModel

# The gate's decision, in one statement (``governance.approvals.decision``).
GateDecision = decision.GateDecision
gate_decide = decision.gate_decide
gate_question = decision.gate_question

# Who may sign the retrospective review of a break-glass request (besides separation of duties).
RETROSPECTIVE_ROLES = (Role.VALIDATOR, Role.RISK_OFFICER, Role.COMPLIANCE_OFFICER)


def role_grants(user: User, perm: str) -> bool:
    """Whether one of the user's groups holds ``perm`` (superuser status does not count)."""
    if not user.is_active:
        return False
    app_label, codename = perm.split(".", 1)
    return Permission.objects.filter(
        group__user=user, content_type__app_label=app_label, codename=codename
    ).exists()


def break_glass_allowed(user: User) -> bool:
    """Whether ``user`` may open a break-glass request (``approvals.break_glass`` through a
    role; the risk officers by default). For display: the service decides."""
    return role_grants(user, "approvals.break_glass")


# The per-model permission that lets a team request (and report) deployments of its models.
REQUEST_PERMISSION = "registry.register_version_registeredmodel"


def deployment_request_allowed(user: User) -> bool:
    """Whether ``user`` may request a deployment of some model: a person holding the
    request permission on a model they may see, or an administrator. For display (the
    navigation's "Request a deployment"): ``services.deployment_request_submit`` decides."""
    if not user.is_active or user.is_service_account:
        return False
    if has_role(user, Role.ADMIN):
        return True
    models = get_objects_for_user(
        user,
        REQUEST_PERMISSION,
        klass=registry_selectors.model_list(user=user),
        accept_global_perms=False,
    )
    return bool(models.exists())


def revoke_allowed(user: User) -> bool:
    """Whether ``user`` may revoke approvals (``approvals.revoke_deploymentrequest`` through a
    role: risk and compliance officers). For display: the service decides."""
    return role_grants(user, "approvals.revoke_deploymentrequest")


def holds_signing_role(user: User, model: RegisteredModel) -> bool:
    """Whether ``user`` holds a role sign-off steps are made of, globally or for ``model``."""
    return bool(user_roles(user, model) & set(SIGNING_ROLES))


def environment_list(*, user: User) -> QuerySet[Environment]:
    """Every environment, in promotion order (anyone who may use the API sees them)."""
    return Environment.objects.order_by("position")


def environment_get(*, user: User, name: str) -> Environment:
    found = environment_list(user=user).filter(name=name).first()
    if found is None:
        raise NotFound(f"environment {name!r} not found")
    return found


def previous_environment(environment: Environment) -> Environment | None:
    """The environment a version must be deployed to before ``environment``."""
    return (
        Environment.objects.filter(position__lt=environment.position).order_by("-position").first()
    )


def policy_list(*, user: User) -> QuerySet[SignOffPolicy]:
    """Every published version of every policy (holders of ``view_signoffpolicy``)."""
    if not user.has_perm("approvals.view_signoffpolicy"):
        return SignOffPolicy.objects.none()
    return SignOffPolicy.objects.select_related("environment", "published_by").order_by(
        "environment__position", "risk_tier", "-version"
    )


def policy_current(*, environment: Environment, risk_tier: str) -> SignOffPolicy:
    """The newest published policy of an environment and risk tier (new requests use it)."""
    found = (
        SignOffPolicy.objects.filter(environment=environment, risk_tier=risk_tier)
        .order_by("-version")
        .first()
    )
    if found is None:
        raise NotFound(f"no sign-off policy for {environment.name}/{risk_tier}")
    return found


def deployment_request_list(
    *,
    user: User,
    model: str | None = None,
    environment: str | None = None,
    state: str | None = None,
) -> QuerySet[DeploymentRequest]:
    """Requests for the models the user may see, newest first."""
    queryset = DeploymentRequest.objects.filter(
        model_version__model__in=registry_selectors.model_list(user=user)
    ).select_related(
        "model_version__model",
        "model_version__author",
        "environment",
        "policy__environment",
        "requester",
        "closed_by",
    )
    if model:
        queryset = queryset.filter(model_version__model__name=model)
    if environment:
        queryset = queryset.filter(environment__name=environment)
    if state:
        queryset = queryset.filter(state=state)
    return queryset.prefetch_related("signoffs__signer").order_by("-created_at", "-id")


def deployment_request_get(*, user: User, request_id: int) -> DeploymentRequest:
    found = deployment_request_list(user=user).filter(pk=request_id).first()
    if found is None:
        raise NotFound(f"deployment request {request_id} not found")
    return found


def deployed_in(*, version: ModelVersion, environment: Environment) -> bool:
    """Deployed to ``environment`` and not rolled back since (retiring it later still counts:
    it was deployed there)."""
    last = (
        Deployment.objects.filter(
            model_version=version,
            environment=environment,
            event__in=[DeploymentEvent.DEPLOYED, DeploymentEvent.ROLLED_BACK],
        )
        .order_by("-occurred_at", "-id")
        .first()
    )
    return last is not None and last.event == DeploymentEvent.DEPLOYED


def live_in(
    *, environment: Environment, at: dt.datetime, model_ids: Any = None
) -> dict[int, ModelVersion]:
    """Model id -> the version live in ``environment`` at the instant ``at``."""
    events = Deployment.objects.filter(environment=environment, occurred_at__lte=at)
    if model_ids is not None:
        events = events.filter(model_version__model_id__in=model_ids)
    rows = list(
        events.order_by("occurred_at", "id").values_list(
            "model_version__model_id", "model_version_id", "event"
        )
    )
    live = live_versions(rows)
    versions = ModelVersion.objects.select_related("model").in_bulk(list(live.values()))
    return {model_id: versions[version_id] for model_id, version_id in live.items()}


def live_list(*, user: User, environment_name: str, at: dt.datetime) -> list[dict[str, Any]]:
    """Which version of each model the user may see was live in the environment at ``at``."""
    environment = environment_get(user=user, name=environment_name)
    visible = registry_selectors.model_list(user=user).values("pk")
    live = live_in(environment=environment, at=at, model_ids=visible)
    return [
        {
            "model": version.model.name,
            "version": version.version,
            "artifact_digest": version.artifact_digest,
        }
        for version in sorted(live.values(), key=lambda v: v.model.name)
    ]


def deployment_history(
    *, user: User, model_name: str, environment_name: str | None = None
) -> QuerySet[Deployment]:
    """The deployment events of a visible model, oldest first, optionally in one environment."""
    model = registry_selectors.model_get(user=user, name=model_name)
    queryset = Deployment.objects.filter(model_version__model=model).select_related(
        "model_version__model", "environment", "reported_by", "gate_check"
    )
    if environment_name:
        environment = environment_get(user=user, name=environment_name)
        queryset = queryset.filter(environment=environment)
    return queryset.order_by("environment__position", "occurred_at", "id")


# Read-only views of one request for the approval forms: nothing here writes or records.


def request_signatures(request: DeploymentRequest) -> list[Signature]:
    """The step signatures already given on ``request`` (the retrospective review aside)."""
    return decision.step_signatures(request.signoffs.all())


def user_roles(user: User, model: RegisteredModel | None = None) -> frozenset[str]:
    """The roles ``user`` holds through group membership and, for ``model``, through a
    per-model signing grant to them or their team (superuser status counts for neither)."""
    if not user.is_active:
        return frozenset()
    roles = frozenset(set(user.groups.values_list("name", flat=True)) & set(Role.values))
    if model is not None:
        roles |= registry_selectors.signing_roles_granted(user, model)
    return roles


def signing_refusal(*, user: User, request: DeploymentRequest) -> str | None:
    """Why ``user`` may not sign ``request`` now, or None when the workflow would let them
    (re-authentication is still checked when they sign). For display only: the service
    decides, under its row lock."""
    if request.state != RequestState.PENDING:
        return f"the request is {request.get_state_display().lower()}"
    version = request.model_version
    try:
        check_signer(
            steps=steps_from(request.policy.steps),
            signatures=request_signatures(request),
            parties=Parties(
                requester_id=request.requester_id,
                author_id=version.author_id,
                owner_id=version.model.owner_id,
            ),
            signer_id=user.pk,
            signer_roles=user_roles(user, version.model),
            signer_is_person=not user.is_service_account,
        )
    except DomainError as error:
        return error.message
    return None


def retrospective_of(request: DeploymentRequest) -> SignOff | None:
    """The signed retrospective review of a break-glass request, if any."""
    return next((s for s in request.signoffs.all() if s.step == SignOff.RETROSPECTIVE), None)


def retrospective_refusal(*, user: User, request: DeploymentRequest) -> str | None:
    """Why ``user`` may not sign the retrospective review of ``request`` now, or None. For
    display only: ``services.signoff_retrospective`` decides, under its row lock."""
    if request.state != RequestState.EMERGENCY:
        return "only a break-glass request has a retrospective review"
    if retrospective_of(request) is not None:
        return "the retrospective review is already signed"
    version = request.model_version
    try:
        check_retrospective_signer(
            parties=Parties(
                requester_id=request.requester_id,
                author_id=version.author_id,
                owner_id=version.model.owner_id,
            ),
            signer_id=user.pk,
            signer_roles=user_roles(user, version.model),
            roles=RETROSPECTIVE_ROLES,
        )
    except DomainError as error:
        return error.message
    return None


def deployment_requests_awaiting(*, user: User) -> list[DeploymentRequest]:
    """Pending requests the user may see whose current step the user may sign now."""
    pending = deployment_request_list(user=user, state=RequestState.PENDING)
    return [r for r in pending if signing_refusal(user=user, request=r) is None]


@dataclass(frozen=True)
class StepProgress:
    """A policy step of a request: its definition, its signatures and where it stands."""

    step: Step
    signoffs: list[SignOff]
    approvals: int
    status: str  # "complete", "current", "waiting" or "rejected"


def step_progress(request: DeploymentRequest) -> list[StepProgress]:
    """The request's policy steps in order, each with the signatures given on it."""
    steps = steps_from(request.policy.steps)
    signoffs = list(request.signoffs.all())
    current = current_step(steps, request_signatures(request))
    out: list[StepProgress] = []
    for step in steps:
        mine = [s for s in signoffs if s.step == step.name]
        approved = sum(1 for s in mine if s.decision == Decision.APPROVE)
        if any(s.decision == Decision.REJECT for s in mine):
            status = "rejected"
        elif approved >= step.required:
            status = "complete"
        elif current is not None and current.name == step.name:
            status = "current"
        else:
            status = "waiting"
        out.append(StepProgress(step=step, signoffs=mine, approvals=approved, status=status))
    return out


def evidence_for(
    request: DeploymentRequest, *, now: dt.datetime | None = None
) -> list[EvidenceResult]:
    """The evidence the request's policy requires, judged now (what signers are shown)."""
    return evidence_judged(
        version=request.model_version, policy=request.policy, now=now or timezone.now()
    )


def evidence_candidates(version: ModelVersion) -> list[Candidate]:
    """Every report indexed as evidence for ``version`` (``EvidenceEntry``)."""
    rows = EvidenceEntry.objects.filter(model_version=version).values(*Candidate.FIELDS)
    return [Candidate.of(row) for row in rows]


def evidence_judged(
    *, version: ModelVersion, policy: SignOffPolicy, now: dt.datetime
) -> list[EvidenceResult]:
    """The evidence ``policy`` requires of ``version``, judged at ``now``."""
    return judge_all(
        requirements=policy.evidence or [],
        candidates=evidence_candidates(version),
        declared=version.model.sensitive_attributes or [],
        now=now,
    )


def finding_list(*, user: User, model_name: str, version: int) -> QuerySet[Finding]:
    """The findings of a visible version, newest first."""
    found = registry_selectors.model_version_get(user=user, model_name=model_name, version=version)
    return Finding.objects.filter(model_version=found).select_related(
        "model_version__model", "owner", "raised_by", "resolved_by"
    )


def open_findings(version: ModelVersion) -> list[Finding]:
    """The open findings of ``version`` (already visible to the reader), most severe first,
    then oldest due date first."""
    order = {severity: rank for rank, severity in enumerate(("critical", "high", "medium", "low"))}
    found = list(
        Finding.objects.filter(model_version=version, status=FindingStatus.OPEN).select_related(
            "owner", "raised_by"
        )
    )
    return sorted(found, key=lambda f: (order.get(f.severity, 9), f.due_date or dt.date.max, f.pk))


def finding_get(*, user: User, finding_id: int) -> Finding:
    """One finding on a version of a model the user may see, else ``NotFound``."""
    found = (
        Finding.objects.filter(
            pk=finding_id, model_version__model__in=registry_selectors.model_list(user=user)
        )
        .select_related("model_version__model", "owner", "raised_by", "resolved_by")
        .first()
    )
    if found is None:
        raise NotFound(f"finding {finding_id} not found")
    return found


def gate_preview(request: DeploymentRequest) -> GateDecision:
    """The gate's current answer for the request's registered artifact in its environment
    (``decision.gate_decide``), for the review page; not recorded."""
    return gate_decide(
        version=request.model_version,
        environment=request.environment,
        digest=request.model_version.artifact_digest,
    )


def live_version(request: DeploymentRequest) -> ModelVersion | None:
    """The version of the request's model live now in the request's environment."""
    live = live_in(
        environment=request.environment,
        at=timezone.now(),
        model_ids=[request.model_version.model_id],
    )
    return live.get(request.model_version.model_id)


def deployment_request_audit_trail(*, request: DeploymentRequest) -> list[AuditRecord]:
    """The audit records of a request (already scoped by ``deployment_request_get``) and of
    its sign-offs, including refusals recorded as security events, in log order."""
    signoff_ids = [str(pk) for pk in request.signoffs.values_list("pk", flat=True)]
    return audit_selectors.records_about(
        [("deployment_request", [str(request.pk)]), ("signoff", signoff_ids)]
    )

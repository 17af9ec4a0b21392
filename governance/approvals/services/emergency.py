"""Break-glass deployments and their retrospective review."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import Subject
from core.accounts.callers import Caller
from core.actors import SYSTEM_ACTOR
from core.errors import Conflict, Forbidden
from core.reasons import reason_required
from governance.approvals import selectors
from governance.approvals.models import DeploymentRequest, SignOff
from governance.approvals.services._common import (
    check_deployable,
    each_request,
    environment_named,
    group_grants,
    lock_request,
    parties_of,
    reauthenticate,
    record_request,
    recording_refusals,
    request_subject,
    scope_of,
)
from governance.approvals.services.signoffs import (
    check_comment,
    content_signed_at,
    content_to_sign,
    record_signoff,
    store_signoff,
)
from governance.approvals.workflow import (
    Decision,
    Meaning,
    RequestAction,
    RequestState,
    check_retrospective_signer,
    next_state,
)
from registry.models import ModelVersion

RETROSPECTIVE_DUE = dt.timedelta(hours=getattr(settings, "DEPLOYMENTS_RETROSPECTIVE_HOURS", 72))
RETROSPECTIVE_ROLES = selectors.RETROSPECTIVE_ROLES


def deployment_emergency(
    *, caller: Caller, version: ModelVersion, environment: str, reason: str, password: str | None
) -> DeploymentRequest:
    """Break-glass: a holder of ``break_glass`` (through a role, the risk officers by default)
    allows a deployment without sign-off, re-authenticating. The request is ``emergency`` and
    a retrospective review must be signed by someone else before ``retrospective_due_at``."""
    env = environment_named(environment)
    note = reason_required(reason)
    scope = scope_of(version, env)
    subject = Subject(type="model_version", id=str(version.pk), label=str(version))
    with recording_refusals(
        caller, action=AuditAction.DEPLOYMENT_REQUEST_REFUSED, subject=subject, scope=scope
    ):
        if not group_grants(caller.user, "approvals.break_glass"):
            raise Forbidden("break-glass deployment needs the break_glass permission")
        reauthenticate(caller, password, subject=subject, scope=scope)
        with transaction.atomic(durable=True):
            version = (
                ModelVersion.objects.select_for_update(no_key=True)
                .select_related("model")
                .get(pk=version.pk)
            )
            check_deployable(version)
            policy = selectors.policy_current(environment=env, risk_tier=version.model.risk_tier)
            now = timezone.now()
            request = DeploymentRequest(
                model_version=version,
                environment=env,
                policy=policy,
                requester=caller.user,
                reason=note,
                state=RequestState.EMERGENCY,
                approved_at=now,
                effective_at=now,
                expires_at=now + dt.timedelta(days=policy.approval_expiry_days),
                retrospective_due_at=now + RETROSPECTIVE_DUE,
            )
            request.save()
            record_request(
                AuditAction.DEPLOYMENT_REQUEST_EMERGENCY_OPENED, request, caller.actor, reason=note
            )
    return request


def signoff_retrospective(
    *,
    caller: Caller,
    request: DeploymentRequest,
    password: str | None,
    decision: str = Decision.APPROVE,
    comment: str = "",
) -> SignOff:
    """The retrospective review of a break-glass deployment, signed (with re-authentication)
    by a validator or officer other than the one who broke the glass and the version's author.
    A ``reject`` decision revokes the break-glass request: what is live stays live, and the
    gate allows no further deployment under it (``revoked``); it needs a comment saying why."""
    subject = request_subject(request)
    scope = scope_of(request.model_version, request.environment)
    with recording_refusals(
        caller, action=AuditAction.SIGNOFF_REFUSED, subject=subject, scope=scope
    ):
        reauthenticate(caller, password, subject=subject, scope=scope)
        with transaction.atomic(durable=True):
            request = lock_request(request)
            if request.state != RequestState.EMERGENCY:
                raise Conflict("only a break-glass request has a retrospective review")
            if SignOff.objects.filter(request=request).exists():
                raise Conflict("the retrospective review is already signed")
            signer = caller.user
            check_retrospective_signer(
                parties=parties_of(request),
                signer_id=signer.pk,
                signer_roles=selectors.user_roles(signer, request.model_version.model),
                roles=RETROSPECTIVE_ROLES,
            )
            check_comment(decision, comment)
            now = timezone.now()
            content = content_signed_at(
                content_to_sign(
                    request=request,
                    step=SignOff.RETROSPECTIVE,
                    decision=decision,
                    meaning=Meaning.REVIEW,
                    signer=signer,
                    now=now,
                    acknowledging=False,
                ),
                now,
            )
            signoff = store_signoff(
                request=request,
                step=SignOff.RETROSPECTIVE,
                signer=signer,
                decision=decision,
                meaning=Meaning.REVIEW,
                comment=comment,
                content=content,
                signed_at=now,
            )
            if decision == Decision.REJECT:
                request.state = next_state(request.state, RequestAction.REJECT)
                request.save(update_fields=["state"])
            record_signoff(caller, signoff, scope=scope, request_state=request.state)
    return signoff


def retrospective_flag_overdue(*, request: DeploymentRequest) -> DeploymentRequest:
    """Raise the alert for a break-glass request whose retrospective review was not signed
    by its due time: ``deployment_request.retrospective_overdue`` in the audit log and to
    webhook subscribers, once per request. The request stays ``emergency``: the review can
    still be signed late, and the lineage report shows it was late."""
    with transaction.atomic(durable=True):
        request = lock_request(request)
        now = timezone.now()
        if (
            request.state != RequestState.EMERGENCY
            or request.retrospective_due_at is None
            or request.retrospective_due_at > now
        ):
            raise Conflict(f"the retrospective review of request #{request.pk} is not overdue")
        if request.retrospective_overdue_at is not None:
            raise Conflict(f"request #{request.pk} was already raised as overdue")
        if SignOff.objects.filter(request=request, step=SignOff.RETROSPECTIVE).exists():
            raise Conflict(f"the retrospective review of request #{request.pk} is signed")
        request.retrospective_overdue_at = now
        request.save(update_fields=["retrospective_overdue_at"])
        record_request(
            AuditAction.DEPLOYMENT_REQUEST_RETROSPECTIVE_OVERDUE,
            request,
            SYSTEM_ACTOR,
            alert="retrospective_review_overdue",
        )
    return request


def retrospectives_flag_overdue() -> int:
    """Raise every overdue retrospective review not raised yet, each in its own
    transaction; how many were raised."""
    due = DeploymentRequest.objects.filter(
        state=RequestState.EMERGENCY,
        retrospective_due_at__lte=timezone.now(),
        retrospective_overdue_at__isnull=True,
    ).exclude(signoffs__step=SignOff.RETROSPECTIVE)
    return each_request(due, retrospective_flag_overdue)

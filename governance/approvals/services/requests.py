"""Deployment requests: submitting, withdrawing, revoking and expiring them."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import Subject
from core.accounts.callers import Caller
from core.actors import SYSTEM_ACTOR
from core.errors import Conflict, Forbidden
from core.reasons import reason_required
from governance.approvals import selectors
from governance.approvals.models import DeploymentRequest, Environment
from governance.approvals.services._common import (
    approval_times,
    check_deployable,
    each_request,
    environment_named,
    group_grants,
    lock_request,
    may_request,
    record_request,
    recording_refusals,
    request_subject,
    scope_of,
)
from governance.approvals.workflow import RequestAction, RequestState, next_state
from registry.models import ModelVersion


def _check_promotion(version: ModelVersion, environment: Environment) -> None:
    previous = selectors.previous_environment(environment)
    if previous is not None and not selectors.deployed_in(version=version, environment=previous):
        raise Conflict(
            f"{version} must be deployed to {previous.name} before it is requested for "
            f"{environment.name} (previous_environment_missing)"
        )


def _open_request(version: ModelVersion, environment: Environment) -> DeploymentRequest | None:
    now = timezone.now()
    for found in DeploymentRequest.objects.filter(
        model_version=version,
        environment=environment,
        state__in=[RequestState.PENDING, RequestState.APPROVED, RequestState.EMERGENCY],
    ):
        if found.state == RequestState.PENDING or (found.expires_at and found.expires_at > now):
            return found
    return None


def deployment_request_submit(
    *, caller: Caller, version: ModelVersion, environment: str, reason: str
) -> DeploymentRequest:
    """Ask for ``version`` to be deployed to ``environment`` under the current policy of the
    environment and the model's risk tier. The request keeps that policy version. A policy
    with no steps approves at once (the request is still recorded)."""
    env = environment_named(environment)
    note = reason_required(reason)
    scope = scope_of(version, env)
    subject = Subject(type="model_version", id=str(version.pk), label=str(version))
    with recording_refusals(
        caller, action=AuditAction.DEPLOYMENT_REQUEST_REFUSED, subject=subject, scope=scope
    ):
        if caller.user.is_service_account:
            raise Forbidden("a deployment is requested by a person, not a service account")
        if not may_request(caller.user, version):
            raise Forbidden(f"you may not request deployments of {version.model.name}")
        with transaction.atomic(durable=True):
            version = (
                ModelVersion.objects.select_for_update(no_key=True)
                .select_related("model")
                .get(pk=version.pk)
            )
            check_deployable(version)
            _check_promotion(version, env)
            existing = _open_request(version, env)
            if existing is not None:
                raise Conflict(
                    f"{version} already has an open request for {env.name} (#{existing.pk})"
                )
            policy = selectors.policy_current(environment=env, risk_tier=version.model.risk_tier)
            request = DeploymentRequest(
                model_version=version,
                environment=env,
                policy=policy,
                requester=caller.user,
                reason=note,
            )
            if not policy.steps:
                request.state = next_state(RequestState.PENDING, RequestAction.APPROVE)
                request.policy = policy
                request.approved_at, request.effective_at, request.expires_at = approval_times(
                    request, timezone.now()
                )
            request.save()
            record_request(
                AuditAction.DEPLOYMENT_REQUEST_SUBMITTED, request, caller.actor, reason=note
            )
    return request


def _close(
    caller: Caller,
    request: DeploymentRequest,
    *,
    action: str,
    event: str,
    reason: str,
    allowed: Any,
) -> DeploymentRequest:
    with _request_refusals(caller, request):
        allowed(request)
        note = reason_required(reason)
        with transaction.atomic(durable=True):
            request = lock_request(request)
            request.state = next_state(request.state, action)
            request.closed_at, request.closed_by, request.close_reason = (
                timezone.now(),
                caller.user,
                note,
            )
            request.save()
            record_request(event, request, caller.actor, reason=note)
    return request


def _request_refusals(caller: Caller, request: DeploymentRequest) -> Any:
    """``recording_refusals`` for an act on ``request`` (``deployment_request.refused``)."""
    return recording_refusals(
        caller,
        action=AuditAction.DEPLOYMENT_REQUEST_REFUSED,
        subject=request_subject(request),
        scope=scope_of(request.model_version, request.environment),
    )


def _may_withdraw(caller: Caller, request: DeploymentRequest) -> None:
    if request.requester_id != caller.user.pk:
        raise Forbidden("only the requester may withdraw a request")


def deployment_request_withdraw_authorize(*, caller: Caller, request: DeploymentRequest) -> None:
    """``Forbidden`` (recorded) unless the caller may withdraw ``request``: interfaces ask,
    as every ``*_authorize`` here, before they judge the input."""
    with _request_refusals(caller, request):
        _may_withdraw(caller, request)


def deployment_request_withdraw(
    *, caller: Caller, request: DeploymentRequest, reason: str
) -> DeploymentRequest:
    """The requester withdraws a pending request."""
    return _close(
        caller,
        request,
        action=RequestAction.WITHDRAW,
        event=AuditAction.DEPLOYMENT_REQUEST_WITHDRAWN,
        reason=reason,
        allowed=lambda found: _may_withdraw(caller, found),
    )


def _may_revoke(caller: Caller) -> None:
    if not group_grants(caller.user, "approvals.revoke_deploymentrequest"):
        raise Forbidden("only a risk or compliance officer may revoke an approval")


def deployment_request_revoke_authorize(*, caller: Caller, request: DeploymentRequest) -> None:
    """``Forbidden`` (recorded) unless the caller may revoke approvals."""
    with _request_refusals(caller, request):
        _may_revoke(caller)


def deployment_request_revoke(
    *, caller: Caller, request: DeploymentRequest, reason: str
) -> DeploymentRequest:
    """Revoke an approval (holders of ``revoke_deploymentrequest`` through their role: risk
    and compliance officers). What is live stays live; new deployments are denied."""
    return _close(
        caller,
        request,
        action=RequestAction.REVOKE,
        event=AuditAction.DEPLOYMENT_REQUEST_REVOKED,
        reason=reason,
        allowed=lambda found: _may_revoke(caller),
    )


def deployment_request_expire(*, request: DeploymentRequest) -> DeploymentRequest:
    """Warden expires an approval whose time has passed (the gate already denies it)."""
    with transaction.atomic(durable=True):
        request = lock_request(request)
        if request.expires_at is None or request.expires_at > timezone.now():
            raise Conflict(f"request #{request.pk} has not expired yet")
        request.state = next_state(request.state, RequestAction.EXPIRE)
        request.closed_at = timezone.now()
        request.save()
        record_request(AuditAction.DEPLOYMENT_REQUEST_EXPIRED, request, SYSTEM_ACTOR)
    return request


def deployment_requests_expire_due() -> int:
    """Expire every approval past its time, each in its own transaction; how many."""
    due = DeploymentRequest.objects.filter(
        state=RequestState.APPROVED, expires_at__lte=timezone.now()
    )
    return each_request(due, deployment_request_expire)

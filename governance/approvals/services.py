"""The only code that changes deployment requests, sign-offs, policies, gate checks and
deployments. One function per use case.

Each service checks the caller and the invariants, asks ``governance.approvals.workflow`` under
a row lock (``select_for_update``), changes the rows and appends exactly one audit record as the
last step of one durable transaction. A refusal (``Forbidden`` or ``Conflict``) rolls back and
is then recorded as a security event in a transaction of its own.

Rows that other tables reference (environments, model versions, requests) are locked ``FOR NO
KEY UPDATE``: a transaction holding the log's head checks its foreign keys to them at commit,
and ``FOR UPDATE`` would block that check while waiting for the head itself (a deadlock).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from audit.canonical import CanonicalFormError, dumps, format_timestamp, to_profile
from audit.models import AuditRecord
from audit.services import (
    SYSTEM_ACTOR,
    Actor,
    AuditEvent,
    Subject,
    audit_append,
    audit_append_security_event,
)
from governance.accounts.callers import Caller
from governance.accounts.models import User
from governance.approvals import evidence as evidence_module
from governance.approvals import selectors
from governance.approvals.models import (
    Deployment,
    DeploymentEvent,
    DeploymentRequest,
    Environment,
    Finding,
    FindingStatus,
    GateCheck,
    SignOff,
    SignOffPolicy,
)
from governance.approvals.workflow import (
    Decision,
    Meaning,
    Parties,
    RequestAction,
    RequestState,
    Signature,
    Step,
    action_after_signature,
    check_retrospective_signer,
    check_signer,
    current_step,
    next_state,
    steps_from,
)
from governance.common.errors import (
    Conflict,
    ContentChanged,
    Forbidden,
    InvalidInput,
    NotFound,
    ReauthenticationFailed,
    SeparationOfDutiesViolation,
    TransitionNotAllowed,
)
from governance.common.events import emit
from governance.common.roles import Role, has_role, signing_codename
from registry.models import ModelStatus, ModelVersion, RegisteredModel, VersionStatus
from registry.selectors import SigningGrant, signing_grant_list

MAX_REASON = 2000
# Five failed re-authentications within the window lock signing for the user (11.300).
REAUTH_MAX_FAILURES = 5
REAUTH_WINDOW = dt.timedelta(minutes=getattr(settings, "DEPLOYMENTS_REAUTH_LOCK_MINUTES", 15))
RETROSPECTIVE_DUE = dt.timedelta(hours=getattr(settings, "DEPLOYMENTS_RETROSPECTIVE_HOURS", 72))
RETROSPECTIVE_ROLES = selectors.RETROSPECTIVE_ROLES
# CI clocks drift a little; a deployment further in the future is a mistake.
FUTURE_SKEW = dt.timedelta(minutes=5)


# Helpers ---------------------------------------------------------------------------------


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidInput("a reason is required", fields={"reason": ["This field is required."]})
    if len(text) > MAX_REASON:
        raise InvalidInput(
            "reason too long",
            fields={"reason": [f"Ensure this field has no more than {MAX_REASON} characters."]},
        )
    return text


def _group_grants(user: User, perm: str) -> bool:
    return selectors.role_grants(user, perm)


def _may_request(user: User, version: ModelVersion) -> bool:
    perm = "registry.register_version_registeredmodel"
    return user.has_perm(perm, version.model) or has_role(user, Role.ADMIN)


def _request_subject(request: DeploymentRequest) -> Subject:
    return Subject(type="deployment_request", id=str(request.pk), label=str(request))


def _scope(version: ModelVersion, environment: Environment) -> dict[str, Any]:
    return {
        "model": version.model.name,
        "version": version.version,
        "environment": environment.name,
    }


def request_snapshot(request: DeploymentRequest) -> dict[str, Any]:
    """The request as it appears in audit records."""
    policy = request.policy
    return {
        "id": request.pk,
        "model": request.model_version.model.name,
        "version": request.model_version.version,
        "artifact_digest": request.model_version.artifact_digest,
        "environment": request.environment.name,
        "policy": {
            "id": policy.pk,
            "environment": policy.environment.name,
            "risk_tier": policy.risk_tier,
            "version": policy.version,
        },
        "requester": {"id": str(request.requester_id), "name": request.requester.printed_name},
        "reason": request.reason,
        "state": request.state,
        "approved_at": request.approved_at,
        "effective_at": request.effective_at,
        "expires_at": request.expires_at,
        "retrospective_due_at": request.retrospective_due_at,
        "retrospective_overdue_at": request.retrospective_overdue_at,
    }


def _record_request(
    event: str, request: DeploymentRequest, actor: Actor, *, reason: str | None = None, **extra: Any
) -> None:
    """Record ``event`` about ``request`` (its snapshot, plus ``extra``) in the caller's
    transaction and announce it to the receivers of domain events (webhooks)."""
    audit_append(
        events=[
            AuditEvent(
                action=event,
                actor=actor,
                object=_request_subject(request),
                scope=_scope(request.model_version, request.environment),
                data={**request_snapshot(request), **extra},
                reason=reason,
            )
        ]
    )
    emit(event, request, actor)


@contextmanager
def _recording_refusals(
    caller: Caller, *, action: str, subject: Subject, scope: Mapping[str, Any]
) -> Iterator[None]:
    """Record a ``Forbidden`` or ``Conflict`` raised inside the block as a security event,
    after the block's transaction rolled back, then let it propagate."""
    try:
        yield
    except (Forbidden, Conflict) as error:
        if error.recorded:
            raise
        audit_append_security_event(
            event=AuditEvent(
                action=action,
                actor=caller.actor,
                object=subject,
                scope=scope,
                data={"code": error.code, "message": error.message},
            )
        )
        raise


def _lock(request: DeploymentRequest) -> DeploymentRequest:
    return (
        DeploymentRequest.objects.select_for_update(no_key=True)
        .select_related("model_version__model", "environment", "policy__environment", "requester")
        .get(pk=request.pk)
    )


def _signatures(request: DeploymentRequest) -> list[Signature]:
    return [
        Signature(step=s.step, signer_id=s.signer_id, decision=s.decision)
        for s in SignOff.objects.filter(request=request).exclude(step=SignOff.RETROSPECTIVE)
    ]


def _parties(request: DeploymentRequest) -> Parties:
    version = request.model_version
    return Parties(
        requester_id=request.requester_id,
        author_id=version.author_id,
        owner_id=version.model.owner_id,
    )


def _environment(name: str) -> Environment:
    found = Environment.objects.filter(name=name).first()
    if found is None:
        raise InvalidInput(
            f"environment {name!r} does not exist",
            fields={"environment": [f"Unknown environment {name!r}."]},
        )
    return found


def _approval_times(
    request: DeploymentRequest, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    policy = request.policy
    return (
        now,
        now + dt.timedelta(seconds=policy.wait_seconds),
        now + dt.timedelta(days=policy.approval_expiry_days),
    )


# Re-authentication -----------------------------------------------------------------------


def _reauthenticate(caller: Caller, password: str | None, *, subject: Subject, scope: Any) -> None:
    """Check the signer's password at this moment. Failures are security events; the fifth
    within the window locks signing for the user until the window has passed."""
    user = caller.user
    if user.is_service_account or caller.api_key is not None:
        raise SeparationOfDutiesViolation(
            "a signature is given by a person in a session, never with an API key",
            rule="person_required",
        )
    now = timezone.now()
    last_success = SignOff.objects.filter(signer=user).aggregate(m=Max("signed_at"))["m"]
    since = max(now - REAUTH_WINDOW, last_success) if last_success else now - REAUTH_WINDOW
    failures = AuditRecord.objects.filter(
        action="signoff.reauthentication_failed", actor_id=str(user.pk), ts__gte=since
    ).count()
    if failures >= REAUTH_MAX_FAILURES:
        raise ReauthenticationFailed(
            f"signing is locked after {REAUTH_MAX_FAILURES} failed re-authentications; "
            f"try again in {int(REAUTH_WINDOW.total_seconds() // 60)} minutes",
            code="signing_locked",
        )
    if password and user.check_password(password):
        return
    left = REAUTH_MAX_FAILURES - failures - 1
    error = ReauthenticationFailed(
        "re-authentication failed: your password is required to sign"
        if not password
        else "re-authentication failed: wrong password"
        + (f" ({left} attempts left)" if left > 0 else "; signing is now locked"),
        fields={"password": ["Enter your password to sign."]},
    )
    audit_append_security_event(
        event=AuditEvent(
            action="signoff.reauthentication_failed",
            actor=caller.actor,
            object=subject,
            scope=scope,
            data={
                "code": error.code,
                "message": error.message,
                "failures": failures + 1,
                # The failure that locks signing is the alert security monitoring keys on.
                "alert": "signing_locked" if left <= 0 else None,
            },
        ),
        alert="signoff.signing_locked" if left <= 0 else None,
    )
    error.recorded = True
    raise error


# Deployment requests ---------------------------------------------------------------------


def _check_deployable(version: ModelVersion) -> None:
    if version.model.status == ModelStatus.RETIRED:
        raise Conflict(f"model {version.model.name!r} is retired")
    if version.status in (VersionStatus.DEPRECATED, VersionStatus.RETIRED):
        raise Conflict(f"{version} is {version.status}")


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
    env = _environment(environment)
    note = _reason(reason)
    scope = _scope(version, env)
    subject = Subject(type="model_version", id=str(version.pk), label=str(version))
    with _recording_refusals(
        caller, action="deployment_request.refused", subject=subject, scope=scope
    ):
        if caller.user.is_service_account:
            raise Forbidden("a deployment is requested by a person, not a service account")
        if not _may_request(caller.user, version):
            raise Forbidden(f"you may not request deployments of {version.model.name}")
        with transaction.atomic(durable=True):
            version = (
                ModelVersion.objects.select_for_update(no_key=True)
                .select_related("model")
                .get(pk=version.pk)
            )
            _check_deployable(version)
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
                request.approved_at, request.effective_at, request.expires_at = _approval_times(
                    request, timezone.now()
                )
            request.save()
            _record_request("deployment_request.submitted", request, caller.actor, reason=note)
    return request


def _content_to_sign(
    *,
    request: DeploymentRequest,
    step: str,
    decision: str,
    meaning: str,
    signer: User,
    now: dt.datetime,
) -> dict[str, Any]:
    """What a signature signs but the moment of signing: everything that identifies the
    request, the step and the evidence shown (judged at ``now``), so the signature cannot be
    moved to another request or step. Signing adds ``signed_at``."""
    version = request.model_version
    shown = [
        {
            "kind": result.requirement.kind,
            "status": result.status,
            "report": result.evidence.report_id if result.evidence else None,
            "sha256": result.evidence.sha256 if result.evidence else None,
        }
        for result in selectors.evidence_judged(version=version, policy=request.policy, now=now)
    ]
    datasets = [
        {
            "dataset": usage.dataset_version.dataset.name,
            "version": usage.dataset_version.version,
            "role": usage.role,
            "content_digest": usage.dataset_version.content_digest,
        }
        for usage in version.dataset_usages.select_related("dataset_version__dataset").order_by(
            "dataset_version__dataset__name", "dataset_version__version", "role"
        )
    ]
    content = {
        "request": request.pk,
        "model": version.model.name,
        "version": version.version,
        "artifact_digest": version.artifact_digest,
        "environment": request.environment.name,
        "policy": {
            "id": request.policy.pk,
            "risk_tier": request.policy.risk_tier,
            "version": request.policy.version,
        },
        "step": step,
        "decision": decision,
        "meaning": meaning,
        "signer": {"id": str(signer.pk), "username": signer.username},
        "printed_name": signer.printed_name,
        "evidence": {"reports": shown, "datasets": datasets},
    }
    profiled: dict[str, Any] = to_profile(content)
    return profiled


def signed_sha256(content: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON (RFC 8785 profile of ``audit.canonical``) of ``content``."""
    return hashlib.sha256(dumps(dict(content))).hexdigest()


def _signed_content(content: Mapping[str, Any], signed_at: dt.datetime) -> dict[str, Any]:
    return {**content, "signed_at": format_timestamp(signed_at)}


@dataclass(frozen=True)
class SignOffPreview:
    """What a signer is shown before signing: the step, and the exact content a signature
    with this decision and meaning would sign now, without the moment of signing (added when
    the signature is made), with the SHA-256 of its canonical JSON. Passing that digest back
    as ``expected_content_sha256`` binds the signature to what was shown."""

    step: Step
    decision: str
    meaning: str
    content: dict[str, Any]
    sha256: str


def signoff_preview(
    *, user: User, request: DeploymentRequest, decision: str, meaning: str | None = None
) -> SignOffPreview:
    """The content ``user`` would sign on the current step of ``request`` with ``decision``
    and ``meaning`` (the step's own by default), judged now. Writes nothing and does not
    check separation of duties (``signoff_sign`` does); ``TransitionNotAllowed`` when the
    request has nothing to sign, ``InvalidInput`` for a bad decision or meaning."""
    if decision not in Decision.values:
        raise InvalidInput(
            f"decision {decision!r} is not one of {', '.join(Decision.values)}",
            fields={"decision": [f'"{decision}" is not a valid choice.']},
        )
    next_state(request.state, RequestAction.SIGN)
    step = current_step(steps_from(request.policy.steps), _signatures(request))
    if step is None:
        raise TransitionNotAllowed("every step of this request is already signed")
    chosen = _meaning(meaning, step)
    content = _content_to_sign(
        request=request,
        step=step.name,
        decision=decision,
        meaning=chosen,
        signer=user,
        now=timezone.now(),
    )
    return SignOffPreview(
        step=step, decision=decision, meaning=chosen, content=content, sha256=signed_sha256(content)
    )


def _meaning(meaning: str | None, step: Step) -> str:
    chosen = meaning or step.meaning
    if chosen not in Meaning.values:
        raise InvalidInput(
            f"meaning {chosen!r} is not one of {', '.join(Meaning.values)}",
            fields={"meaning": [f'"{chosen}" is not a valid choice.']},
        )
    return chosen


def signoff_sign(
    *,
    caller: Caller,
    request: DeploymentRequest,
    decision: str,
    password: str | None,
    meaning: str | None = None,
    comment: str = "",
    expected_content_sha256: str | None = None,
) -> SignOff:
    """Sign the current step of a pending request (approve or reject), re-authenticating
    with the password. Separation of duties decides who may sign (``workflow.check_signer``);
    one rejection rejects the request; the signature completing the last step approves it.
    Exactly one audit record (``signoff.signed``) carries the signed content and its digest.

    With ``expected_content_sha256`` (the ``sha256`` of ``signoff_preview`` the signer was
    shown) the signature is refused with ``ContentChanged`` (``content_changed``, recorded
    as a security event) unless the content to sign, but the moment of signing, is still
    exactly that."""
    if decision not in Decision.values:
        raise InvalidInput(
            f"decision {decision!r} is not one of {', '.join(Decision.values)}",
            fields={"decision": [f'"{decision}" is not a valid choice.']},
        )
    if len(comment or "") > MAX_REASON:
        raise InvalidInput("comment too long", fields={"comment": ["Too long."]})
    subject = _request_subject(request)
    scope = _scope(request.model_version, request.environment)
    with _recording_refusals(caller, action="signoff.refused", subject=subject, scope=scope):
        _reauthenticate(caller, password, subject=subject, scope=scope)
        with transaction.atomic(durable=True):
            request = _lock(request)
            next_state(request.state, RequestAction.SIGN)
            steps = steps_from(request.policy.steps)
            signatures = _signatures(request)
            signer = caller.user
            step = check_signer(
                steps=steps,
                signatures=signatures,
                parties=_parties(request),
                signer_id=signer.pk,
                signer_roles=selectors.user_roles(signer, request.model_version.model),
                signer_is_person=not signer.is_service_account,
            )
            chosen = _meaning(meaning, step)
            now = timezone.now()
            unsigned = _content_to_sign(
                request=request,
                step=step.name,
                decision=decision,
                meaning=chosen,
                signer=signer,
                now=now,
            )
            if (
                expected_content_sha256 is not None
                and signed_sha256(unsigned) != expected_content_sha256.strip().lower()
            ):
                raise ContentChanged(
                    "the content to sign has changed since it was shown to you (the evidence, "
                    "the request or the step): review it again before signing"
                )
            content = _signed_content(unsigned, now)
            digest = signed_sha256(content)
            signoff = SignOff.objects.create(
                request=request,
                step=step.name,
                signer=signer,
                decision=decision,
                meaning=chosen,
                printed_name=signer.printed_name,
                comment=(comment or "").strip(),
                signed_at=now,
                signed_content=content,
                signed_sha256=digest,
            )
            action = action_after_signature(
                steps=steps,
                signatures=[*signatures, Signature(step.name, signer.pk, decision)],
                decision=decision,
            )
            request.state = next_state(request.state, action)
            if action == RequestAction.APPROVE:
                request.approved_at, request.effective_at, request.expires_at = _approval_times(
                    request, now
                )
            elif action == RequestAction.REJECT:
                request.closed_at, request.closed_by = now, signer
            request.save()
            audit_append(
                events=[
                    AuditEvent(
                        action="signoff.signed",
                        actor=caller.actor,
                        object=Subject(type="signoff", id=str(signoff.pk), label=str(signoff)),
                        scope=scope,
                        data={
                            "signed_content": content,
                            "signed_sha256": digest,
                            "comment": signoff.comment,
                            "request_state": request.state,
                        },
                    )
                ]
            )
            emit("signoff.signed", signoff, caller.actor)
    return signoff


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
        note = _reason(reason)
        with transaction.atomic(durable=True):
            request = _lock(request)
            request.state = next_state(request.state, action)
            request.closed_at, request.closed_by, request.close_reason = (
                timezone.now(),
                caller.user,
                note,
            )
            request.save()
            _record_request(event, request, caller.actor, reason=note)
    return request


def _request_refusals(caller: Caller, request: DeploymentRequest) -> Any:
    """``_recording_refusals`` for an act on ``request`` (``deployment_request.refused``)."""
    return _recording_refusals(
        caller,
        action="deployment_request.refused",
        subject=_request_subject(request),
        scope=_scope(request.model_version, request.environment),
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
        event="deployment_request.withdrawn",
        reason=reason,
        allowed=lambda found: _may_withdraw(caller, found),
    )


def _may_revoke(caller: Caller) -> None:
    if not _group_grants(caller.user, "approvals.revoke_deploymentrequest"):
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
        event="deployment_request.revoked",
        reason=reason,
        allowed=lambda found: _may_revoke(caller),
    )


def deployment_request_expire(*, request: DeploymentRequest) -> DeploymentRequest:
    """Warden expires an approval whose time has passed (the gate already denies it)."""
    with transaction.atomic(durable=True):
        request = _lock(request)
        if request.expires_at is None or request.expires_at > timezone.now():
            raise Conflict(f"request #{request.pk} has not expired yet")
        request.state = next_state(request.state, RequestAction.EXPIRE)
        request.closed_at = timezone.now()
        request.save()
        _record_request("deployment_request.expired", request, SYSTEM_ACTOR)
    return request


def deployment_requests_expire_due() -> int:
    """Expire every approval past its time, each in its own transaction; how many."""
    due = DeploymentRequest.objects.filter(
        state=RequestState.APPROVED, expires_at__lte=timezone.now()
    )
    return _each_request(due, deployment_request_expire)


def _each_request(requests: Any, apply: Callable[..., DeploymentRequest]) -> int:
    """``apply(request=...)`` to each of ``requests``, each in its own transaction; how many
    it applied to (one that changed meanwhile is a ``Conflict`` and is skipped)."""
    done = 0
    for pk in list(requests.values_list("pk", flat=True)):
        try:
            apply(request=DeploymentRequest.objects.get(pk=pk))
        except Conflict:
            continue
        done += 1
    return done


# Break-glass -----------------------------------------------------------------------------


def deployment_emergency(
    *, caller: Caller, version: ModelVersion, environment: str, reason: str, password: str | None
) -> DeploymentRequest:
    """Break-glass: a holder of ``break_glass`` (through a role, the risk officers by default)
    allows a deployment without sign-off, re-authenticating. The request is ``emergency`` and
    a retrospective review must be signed by someone else before ``retrospective_due_at``."""
    env = _environment(environment)
    note = _reason(reason)
    scope = _scope(version, env)
    subject = Subject(type="model_version", id=str(version.pk), label=str(version))
    with _recording_refusals(
        caller, action="deployment_request.refused", subject=subject, scope=scope
    ):
        if not _group_grants(caller.user, "approvals.break_glass"):
            raise Forbidden("break-glass deployment needs the break_glass permission")
        _reauthenticate(caller, password, subject=subject, scope=scope)
        with transaction.atomic(durable=True):
            version = (
                ModelVersion.objects.select_for_update(no_key=True)
                .select_related("model")
                .get(pk=version.pk)
            )
            _check_deployable(version)
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
            _record_request(
                "deployment_request.emergency_opened", request, caller.actor, reason=note
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
    gate allows no further deployment under it (``revoked``)."""
    subject = _request_subject(request)
    scope = _scope(request.model_version, request.environment)
    with _recording_refusals(caller, action="signoff.refused", subject=subject, scope=scope):
        _reauthenticate(caller, password, subject=subject, scope=scope)
        with transaction.atomic(durable=True):
            request = _lock(request)
            if request.state != RequestState.EMERGENCY:
                raise Conflict("only a break-glass request has a retrospective review")
            if SignOff.objects.filter(request=request).exists():
                raise Conflict("the retrospective review is already signed")
            signer = caller.user
            check_retrospective_signer(
                parties=_parties(request),
                signer_id=signer.pk,
                signer_roles=selectors.user_roles(signer, request.model_version.model),
                roles=RETROSPECTIVE_ROLES,
            )
            now = timezone.now()
            content = _signed_content(
                _content_to_sign(
                    request=request,
                    step=SignOff.RETROSPECTIVE,
                    decision=decision,
                    meaning=Meaning.REVIEW,
                    signer=signer,
                    now=now,
                ),
                now,
            )
            digest = signed_sha256(content)
            signoff = SignOff.objects.create(
                request=request,
                step=SignOff.RETROSPECTIVE,
                signer=signer,
                decision=decision,
                meaning=Meaning.REVIEW,
                printed_name=signer.printed_name,
                comment=(comment or "").strip(),
                signed_at=now,
                signed_content=content,
                signed_sha256=digest,
            )
            if decision == Decision.REJECT:
                request.state = next_state(request.state, RequestAction.REJECT)
                request.save(update_fields=["state"])
            audit_append(
                events=[
                    AuditEvent(
                        action="signoff.signed",
                        actor=caller.actor,
                        object=Subject(type="signoff", id=str(signoff.pk), label=str(signoff)),
                        scope=scope,
                        data={
                            "signed_content": content,
                            "signed_sha256": digest,
                            "comment": signoff.comment,
                            "request_state": request.state,
                        },
                    )
                ]
            )
            emit("signoff.signed", signoff, caller.actor)
    return signoff


def retrospective_flag_overdue(*, request: DeploymentRequest) -> DeploymentRequest:
    """Raise the alert for a break-glass request whose retrospective review was not signed
    by its due time: ``deployment_request.retrospective_overdue`` in the audit log and to
    webhook subscribers, once per request. The request stays ``emergency``: the review can
    still be signed late, and the lineage report shows it was late."""
    with transaction.atomic(durable=True):
        request = _lock(request)
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
        _record_request(
            "deployment_request.retrospective_overdue",
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
    return _each_request(due, retrospective_flag_overdue)


# Findings --------------------------------------------------------------------------------

FINDING_ROLES = (Role.VALIDATOR, Role.RISK_OFFICER, Role.COMPLIANCE_OFFICER)


def _holds_finding_role(user: User, version: ModelVersion) -> bool:
    """A finding role through a group, or through a signing grant for the version's model."""
    return bool(selectors.user_roles(user, version.model) & set(FINDING_ROLES))


def finding_snapshot(finding: Finding) -> dict[str, Any]:
    """The finding as it appears in audit records."""
    return {
        "id": finding.pk,
        "model": finding.model_version.model.name,
        "version": finding.model_version.version,
        "title": finding.title,
        "description": finding.description,
        "severity": finding.severity,
        "owner": {"id": str(finding.owner_id), "name": finding.owner.printed_name},
        "due_date": finding.due_date.isoformat() if finding.due_date else None,
        "status": finding.status,
        "resolution": finding.resolution,
        "resolved_at": finding.resolved_at,
    }


def _finding_subject(finding: Finding) -> Subject:
    return Subject(
        type="finding", id=str(finding.pk), label=f"{finding.model_version}: {finding.title}"
    )


def _check_finding_text(title: str, description: str) -> tuple[str, str]:
    title, description = (title or "").strip(), (description or "").strip()
    problems: dict[str, list[str]] = {}
    if not title:
        problems["title"] = ["This field may not be blank."]
    elif len(title) > 200:
        problems["title"] = ["Ensure this field has no more than 200 characters."]
    if len(description) > 5000:
        problems["description"] = ["Ensure this field has no more than 5000 characters."]
    if problems:
        raise InvalidInput(f"invalid finding: {', '.join(problems)}", fields=problems)
    return title, description


def finding_open_authorize(*, caller: Caller, version: ModelVersion) -> None:
    """``Forbidden`` (recorded as ``finding.refused``) unless the caller holds a finding role
    for ``version``."""
    subject = Subject(type="model_version", id=str(version.pk), label=str(version))
    scope = {"model": version.model.name, "version": version.version}
    with _recording_refusals(caller, action="finding.refused", subject=subject, scope=scope):
        if not _holds_finding_role(caller.user, version):
            raise Forbidden("raising a finding needs the validator, risk or compliance role")


def finding_open(
    *,
    caller: Caller,
    version: ModelVersion,
    title: str,
    severity: str,
    owner: User,
    description: str = "",
    due_date: dt.date | None = None,
) -> Finding:
    """A validator or officer records a finding against ``version`` (``finding.opened``).
    An open high or critical finding blocks the gate for the version (``open_finding:<id>``)
    until it is resolved."""
    finding_open_authorize(caller=caller, version=version)
    title, description = _check_finding_text(title, description)
    subject = Subject(type="model_version", id=str(version.pk), label=str(version))
    scope = {"model": version.model.name, "version": version.version}
    with _recording_refusals(caller, action="finding.refused", subject=subject, scope=scope):
        if not owner.is_active:
            raise InvalidInput(
                f"{owner.get_username()} is not an active account",
                fields={"owner": ["Not an active account."]},
            )
        with transaction.atomic(durable=True):
            finding = Finding.objects.create(
                model_version=version,
                title=title,
                description=description,
                severity=severity,
                owner=owner,
                due_date=due_date,
                raised_by=caller.user,
            )
            audit_append(
                events=[
                    AuditEvent(
                        action="finding.opened",
                        actor=caller.actor,
                        object=_finding_subject(finding),
                        scope=scope,
                        data=finding_snapshot(finding),
                    )
                ]
            )
    return finding


def finding_resolve_authorize(*, caller: Caller, finding: Finding) -> None:
    """``Forbidden`` (recorded as ``finding.refused``) unless the caller holds a finding role
    for the finding's version (independence from the model is checked by the service)."""
    version = finding.model_version
    scope = {"model": version.model.name, "version": version.version}
    with _recording_refusals(
        caller, action="finding.refused", subject=_finding_subject(finding), scope=scope
    ):
        if not _holds_finding_role(caller.user, version):
            raise Forbidden("resolving a finding needs the validator, risk or compliance role")


def finding_resolve(*, caller: Caller, finding: Finding, resolution: str) -> Finding:
    """Someone independent of the model (a validator or officer who is neither the
    version's author nor the model's owner) resolves an open finding, saying how
    (``finding.resolved``); the gate stops counting it."""
    finding_resolve_authorize(caller=caller, finding=finding)
    resolution = (resolution or "").strip()
    if not resolution or len(resolution) > 2000:
        raise InvalidInput(
            "a resolution of 1 to 2000 characters is required",
            fields={"resolution": ["Say how the finding was resolved (at most 2000 characters)."]},
        )
    version = finding.model_version
    subject = _finding_subject(finding)
    scope = {"model": version.model.name, "version": version.version}
    with _recording_refusals(caller, action="finding.refused", subject=subject, scope=scope):
        user = caller.user
        if user.pk in (version.author_id, version.model.owner_id):
            raise SeparationOfDutiesViolation(
                "the model's owner and the version's author cannot resolve its findings",
                rule="finding_needs_independent_resolver",
            )
        with transaction.atomic(durable=True):
            finding = Finding.objects.select_for_update().get(pk=finding.pk)
            if finding.status != FindingStatus.OPEN:
                raise Conflict(f"finding #{finding.pk} is already {finding.status}")
            before = finding_snapshot(finding)
            finding.status = FindingStatus.RESOLVED
            finding.resolution = resolution
            finding.resolved_by = user
            finding.resolved_at = timezone.now()
            finding.save()
            audit_append(
                events=[
                    AuditEvent(
                        action="finding.resolved",
                        actor=caller.actor,
                        object=subject,
                        scope=scope,
                        data={"before": before, "after": finding_snapshot(finding)},
                        reason=resolution,
                    )
                ]
            )
    return finding


# Signing grants ---------------------------------------------------------------------------

GRANT_SIGNING = "approvals.grant_signing"


def _grantee(user: User | None, group: Group | None) -> tuple[User | Group, dict[str, str]]:
    """The one user or group a grant names, and how the audit record names it."""
    if user is not None and group is None:
        if not user.is_active or user.is_service_account:
            raise InvalidInput(
                f"{user.get_username()} cannot sign: only an active person can",
                fields={"user": ["Only an active person (not a service account) can sign."]},
            )
        return user, {"type": "user", "id": str(user.pk), "name": user.get_username()}
    if group is not None and user is None:
        return group, {"type": "group", "id": str(group.pk), "name": group.name}
    raise InvalidInput(
        "name exactly one of user or group",
        fields={"user": ["Name a user or a group, not both."]},
    )


def signing_change_authorize(*, caller: Caller, model: RegisteredModel) -> None:
    """``Forbidden`` (recorded as ``signing.refused``) unless the caller may grant or revoke
    signing rights (``approvals.grant_signing`` through a role)."""
    subject = Subject(type="registered_model", id=str(model.pk), label=model.name)
    with _recording_refusals(
        caller, action="signing.refused", subject=subject, scope={"model": model.name}
    ):
        if not _group_grants(caller.user, GRANT_SIGNING):
            raise Forbidden(
                "granting or revoking signing rights needs the grant_signing permission "
                "(risk officers and administrators)"
            )


def _signing_change(
    *,
    caller: Caller,
    model: RegisteredModel,
    role: str,
    reason: str,
    user: User | None,
    group: Group | None,
    grant: bool,
) -> SigningGrant:
    signing_change_authorize(caller=caller, model=model)
    text = _reason(reason)
    grantee, named = _grantee(user, group)
    perm = f"registry.{signing_codename(role)}"
    subject = Subject(type="registered_model", id=str(model.pk), label=model.name)
    scope = {"model": model.name}
    action = "signing.granted" if grant else "signing.revoked"
    with _recording_refusals(caller, action="signing.refused", subject=subject, scope=scope):
        if grant and (
            caller.user.pk == getattr(user, "pk", None)
            or (group is not None and caller.user.groups.filter(pk=group.pk).exists())
        ):
            raise SeparationOfDutiesViolation(
                "nobody grants signing rights to themselves or to a group they belong to",
                rule="grant_needs_another_person",
            )
        with transaction.atomic(durable=True):
            # The model's row lock orders concurrent grants and revocations of one model.
            model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
            held = any(
                g.role == role and (g.user == user if user else g.group == group)
                for g in signing_grant_list(model=model)
            )
            if grant and held:
                raise Conflict(f"{named['name']} may already sign for {model.name} as {role}")
            if not grant and not held:
                raise NotFound(f"{named['name']} has no grant to sign for {model.name} as {role}")
            if grant:
                assign_perm(perm, grantee, model)
            else:
                remove_perm(perm, grantee, model)
            audit_append(
                events=[
                    AuditEvent(
                        action=action,
                        actor=caller.actor,
                        object=subject,
                        scope=scope,
                        data={"role": role, "grantee": named},
                        reason=text,
                    )
                ]
            )
    return SigningGrant(role=role, user=user, group=group)


def signing_grant(
    *,
    caller: Caller,
    model: RegisteredModel,
    role: str,
    reason: str,
    user: User | None = None,
    group: Group | None = None,
) -> SigningGrant:
    """Let one person, or the members of one group, sign ``model``'s requests in ``role``
    (``signing.granted``): DESIGN's per-model grant, a guardian object permission. Holders
    of ``approvals.grant_signing`` through their role grant it, never to themselves or to a
    group of theirs; separation of duties still applies when the grantee signs."""
    return _signing_change(
        caller=caller, model=model, role=role, reason=reason, user=user, group=group, grant=True
    )


def signing_revoke(
    *,
    caller: Caller,
    model: RegisteredModel,
    role: str,
    reason: str,
    user: User | None = None,
    group: Group | None = None,
) -> SigningGrant:
    """Withdraw a per-model signing grant (``signing.revoked``). Signatures already given
    stand; the grantee signs no further step in that role for the model."""
    return _signing_change(
        caller=caller, model=model, role=role, reason=reason, user=user, group=group, grant=False
    )


# Policies --------------------------------------------------------------------------------


def signoff_policy_publish(
    *,
    caller: Caller,
    environment: str,
    risk_tier: str,
    steps: Sequence[Mapping[str, Any]],
    evidence: Sequence[Mapping[str, Any]] = (),
    approval_expiry_days: int = 30,
    wait_seconds: int = 0,
    note: str = "",
) -> SignOffPolicy:
    """Publish the next version of the policy of an environment and risk tier (administrators
    through their role). Published versions never change; open requests keep theirs."""
    env = _environment(environment)
    checked_steps = _check_steps(steps)
    checked_evidence = _check_evidence(evidence)
    subject = Subject(type="signoff_policy", id=f"{env.name}/{risk_tier}", label="")
    with _recording_refusals(
        caller, action="signoff_policy.refused", subject=subject, scope={"environment": env.name}
    ):
        if not _group_grants(caller.user, "approvals.publish_signoffpolicy"):
            raise Forbidden("only an administrator may publish a sign-off policy")
        with transaction.atomic(durable=True):
            latest = (
                SignOffPolicy.objects.select_for_update()
                .filter(environment=env, risk_tier=risk_tier)
                .aggregate(m=Max("version"))["m"]
                or 0
            )
            policy = SignOffPolicy.objects.create(
                environment=env,
                risk_tier=risk_tier,
                version=latest + 1,
                steps=checked_steps,
                evidence=checked_evidence,
                approval_expiry_days=approval_expiry_days,
                wait_seconds=wait_seconds,
                note=note,
                published_by=caller.user,
            )
            audit_append(
                events=[
                    AuditEvent(
                        action="signoff_policy.published",
                        actor=caller.actor,
                        object=Subject(type="signoff_policy", id=str(policy.pk), label=str(policy)),
                        scope={"environment": env.name},
                        data={
                            "environment": env.name,
                            "risk_tier": risk_tier,
                            "version": policy.version,
                            "steps": checked_steps,
                            "evidence": checked_evidence,
                            "approval_expiry_days": approval_expiry_days,
                            "wait_seconds": wait_seconds,
                            "note": note,
                        },
                    )
                ]
            )
    return policy


def _check_steps(steps: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    for index, data in enumerate(steps):
        try:
            step = Step.from_data(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(
                f"steps[{index}] is malformed", fields={"steps": [f"item {index}: {exc}"]}
            ) from exc
        unknown = set(step.roles) - set(Role.values)
        if not step.roles or unknown or step.required < 1 or step.name in names:
            raise InvalidInput(
                f"steps[{index}] needs a unique name, known roles and required >= 1",
                fields={"steps": [f"item {index}: bad step."]},
            )
        if step.meaning not in Meaning.values or step.name == SignOff.RETROSPECTIVE:
            raise InvalidInput(
                f"steps[{index}] has a bad meaning or a reserved name",
                fields={"steps": [f"item {index}: bad step."]},
            )
        names.add(step.name)
        out.append(step.as_data())
    return out


def _check_evidence(evidence: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for index, data in enumerate(evidence):
        try:
            item = evidence_module.EvidenceRequirement.from_data(data)
            thresholds = to_profile(dict(item.thresholds))
        except CanonicalFormError as exc:
            # Thresholds become objects of the audit record, whose keys are ASCII.
            raise InvalidInput(
                f"evidence[{index}] thresholds have a name that is not ASCII",
                fields={"evidence": [f"item {index}: threshold names must be ASCII."]},
            ) from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(
                f"evidence[{index}] is malformed", fields={"evidence": [f"item {index}: {exc}"]}
            ) from exc
        out.append({"kind": item.kind, "thresholds": thresholds, "max_age_days": item.max_age_days})
    return out


# The gate --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateAnswer:
    """The gate's answer and where it was recorded."""

    check: GateCheck
    request: DeploymentRequest | None
    audit_seq: int


def gate_check(
    *,
    caller: Caller,
    version: ModelVersion,
    environment: Environment,
    digest: str,
    pipeline_run: str = "",
    commit: str = "",
) -> GateAnswer:
    """May the artifact ``digest`` of ``version`` go to ``environment`` now? The decision is
    ``selectors.gate_decide`` (deny by default); this records it: every answer is kept as a
    ``GateCheck`` and recorded in the audit log (``gate.checked``)."""
    decision = selectors.gate_decide(version=version, environment=environment, digest=digest)
    request, reasons = decision.request, decision.reasons
    with transaction.atomic(durable=True):
        check = GateCheck.objects.create(
            check_id=uuid.uuid4(),
            model_version=version,
            environment=environment,
            digest=digest,
            allowed=decision.allowed,
            status=decision.status,
            reasons=reasons,
            request=request,
            asked_by=caller.user,
            asked_at=decision.decided_at,
            pipeline_run=pipeline_run,
            commit=commit,
        )
        (record,) = audit_append(
            events=[
                AuditEvent(
                    action="gate.checked",
                    actor=caller.actor,
                    object=Subject(type="gate_check", id=str(check.check_id), label=str(version)),
                    scope=_scope(version, environment),
                    data={
                        "check_id": str(check.check_id),
                        "model": version.model.name,
                        "version": version.version,
                        "environment": environment.name,
                        "digest": digest,
                        "allowed": check.allowed,
                        "status": check.status,
                        "reasons": reasons,
                        "request": request.pk if request else None,
                        "evidence": [
                            {
                                "kind": r.requirement.kind,
                                "status": r.status,
                                "sha256": r.evidence.sha256 if r.evidence else None,
                            }
                            for r in decision.evidence
                        ],
                        "pipeline_run": pipeline_run,
                        "commit": commit,
                    },
                )
            ]
        )
        emit("gate.checked", check, caller.actor)
    return GateAnswer(check=check, request=request, audit_seq=record.seq)


# Deployments -----------------------------------------------------------------------------


def deployment_report(
    *,
    caller: Caller,
    version: ModelVersion,
    environment: str,
    event: str,
    occurred_at: dt.datetime | None = None,
    pipeline_run: str = "",
    commit: str = "",
    check_id: uuid.UUID | None = None,
) -> Deployment:
    """Record what CI did in an environment: ``deployed``, ``rolled_back`` or ``retired``.

    A rollback or retirement names the version that was live at that instant. A ``deployed``
    report counts as checked only if an allowing gate check for the same digest backs it
    (``check_id``, or else the newest such check) and ``selectors.gate_decide`` still allows
    now (no revocation, expiry or blocking finding since). Otherwise it is kept and flagged
    ``unchecked``: an alert in its audit record, with the gate's reasons now, and the
    ``deployment.unchecked`` webhook event."""
    env = _environment(environment)
    if event not in DeploymentEvent.values:
        raise InvalidInput(
            f"event {event!r} is not one of {', '.join(DeploymentEvent.values)}",
            fields={"event": [f'"{event}" is not a valid choice.']},
        )
    now = timezone.now()
    when = occurred_at or now
    if when > now + FUTURE_SKEW:
        raise InvalidInput(
            "occurred_at is in the future", fields={"occurred_at": ["Must not be in the future."]}
        )
    scope = _scope(version, env)
    subject = Subject(type="model_version", id=str(version.pk), label=str(version))
    with _recording_refusals(caller, action="deployment.refused", subject=subject, scope=scope):
        if not _may_request(caller.user, version):
            raise Forbidden(f"you may not report deployments of {version.model.name}")
        check = None
        if check_id is not None:
            check = GateCheck.objects.filter(check_id=check_id).first()
            if (
                check is None
                or check.model_version_id != version.pk
                or check.environment_id != env.pk
            ):
                raise InvalidInput(
                    "check_id does not name a gate check of this version and environment",
                    fields={"check_id": ["Unknown gate check for this version and environment."]},
                )
        with transaction.atomic(durable=True):
            # FOR NO KEY UPDATE: serialises reports per environment, yet lets the foreign-key
            # checks of gate checks and requests committing meanwhile (they hold the log's
            # head, which this transaction waits for next) through; FOR UPDATE deadlocks them.
            Environment.objects.select_for_update(no_key=True).get(pk=env.pk)
            if event != DeploymentEvent.DEPLOYED:
                live = selectors.live_in(environment=env, at=when, model_ids=[version.model_id])
                if live.get(version.model_id) != version:
                    raise Conflict(f"{version} was not live in {env.name} at {when.isoformat()}")
            backing = check
            if event == DeploymentEvent.DEPLOYED and backing is None:
                backing = (
                    GateCheck.objects.filter(
                        model_version=version,
                        environment=env,
                        allowed=True,
                        digest=version.artifact_digest,
                    )
                    .order_by("-asked_at")
                    .first()
                )
            unchecked = False
            gate_reasons: list[str] | None = None
            if event == DeploymentEvent.DEPLOYED:
                # An allowing check is only as good as the decision it recorded: a revocation,
                # an expiry or a blocking finding since then means the gate would now say no.
                gate_reasons = selectors.gate_decide(
                    version=version, environment=env, digest=version.artifact_digest, now=now
                ).reasons
                unchecked = bool(gate_reasons) or not (
                    backing is not None
                    and backing.allowed
                    and backing.digest == version.artifact_digest
                )
            deployment = Deployment.objects.create(
                model_version=version,
                environment=env,
                event=event,
                occurred_at=when,
                reported_by=caller.user,
                pipeline_run=pipeline_run,
                commit=commit,
                gate_check=backing,
                unchecked=unchecked,
            )
            audit_append(
                events=[
                    AuditEvent(
                        action=f"deployment.{event}",
                        actor=caller.actor,
                        object=Subject(
                            type="deployment", id=str(deployment.pk), label=str(deployment)
                        ),
                        scope=scope,
                        data={
                            "model": version.model.name,
                            "version": version.version,
                            "artifact_digest": version.artifact_digest,
                            "environment": env.name,
                            "event": event,
                            "occurred_at": when,
                            "pipeline_run": pipeline_run,
                            "commit": commit,
                            "check_id": str(backing.check_id) if backing else None,
                            "alert": "deployed_without_allowing_gate_check" if unchecked else None,
                            "gate_reasons": gate_reasons,
                        },
                    )
                ]
            )
            emit(f"deployment.{event}", deployment, caller.actor)
    return deployment

"""Helpers shared by the approval services: scopes and snapshots for audit records, row
locks, the recording of refusals and the signer's re-authentication."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from audit import selectors as audit_selectors
from audit.actions import AuditAction
from audit.services import AuditEvent, Subject, audit_append_security_event, audit_record
from core.accounts.callers import Caller
from core.accounts.models import User
from core.actors import Actor
from core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    ReauthenticationFailed,
    SeparationOfDutiesViolation,
)
from core.events import emit
from core.roles import Role, has_role
from governance.approvals import selectors
from governance.approvals.models import DeploymentRequest, Environment, SignOff
from governance.approvals.workflow import Decision, Parties, Signature
from registry.models import ModelStatus, ModelVersion, VersionStatus

# Five failed re-authentications within the window lock signing for the user (11.300).
REAUTH_MAX_FAILURES = 5
REAUTH_WINDOW = dt.timedelta(minutes=getattr(settings, "DEPLOYMENTS_REAUTH_LOCK_MINUTES", 15))


def group_grants(user: User, perm: str) -> bool:
    """Whether one of ``user``'s role groups holds ``perm``."""
    return selectors.role_grants(user, perm)


def may_request(user: User, version: ModelVersion) -> bool:
    """Whether ``user`` may request (and report) deployments of ``version``'s model."""
    perm = "registry.register_version_registeredmodel"
    return user.has_perm(perm, version.model) or has_role(user, Role.ADMIN)


def request_subject(request: DeploymentRequest) -> Subject:
    """The request as the object of an audit record."""
    return Subject(type="deployment_request", id=str(request.pk), label=str(request))


def scope_of(version: ModelVersion, environment: Environment) -> dict[str, Any]:
    """The scope of a record about ``version`` in ``environment``."""
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


def record_request(
    event: str, request: DeploymentRequest, actor: Actor, *, reason: str | None = None, **extra: Any
) -> None:
    """Record ``event`` about ``request`` (its snapshot, plus ``extra``) in the caller's
    transaction and announce it to the receivers of domain events (webhooks)."""
    audit_record(
        action=event,
        actor=actor,
        object=request_subject(request),
        scope=scope_of(request.model_version, request.environment),
        data={**request_snapshot(request), **extra},
        reason=reason,
    )
    emit(event, request, actor)


@contextmanager
def recording_refusals(
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


def lock_request(request: DeploymentRequest) -> DeploymentRequest:
    """``request`` read again under its row lock (``FOR NO KEY UPDATE``), with what records name."""
    return (
        DeploymentRequest.objects.select_for_update(no_key=True)
        .select_related("model_version__model", "environment", "policy__environment", "requester")
        .get(pk=request.pk)
    )


def signatures_of(request: DeploymentRequest) -> list[Signature]:
    """The step signatures of ``request`` (not its retrospective review)."""
    return [
        Signature(step=s.step, signer_id=s.signer_id, decision=s.decision)
        for s in SignOff.objects.filter(request=request).exclude(step=SignOff.RETROSPECTIVE)
    ]


def parties_of(request: DeploymentRequest) -> Parties:
    """Who separation of duties keeps from signing ``request``."""
    version = request.model_version
    return Parties(
        requester_id=request.requester_id,
        author_id=version.author_id,
        owner_id=version.model.owner_id,
    )


def environment_named(name: str) -> Environment:
    """The environment called ``name`` (``InvalidInput`` if there is none)."""
    found = Environment.objects.filter(name=name).first()
    if found is None:
        raise InvalidInput(
            f"environment {name!r} does not exist",
            fields={"environment": [f"Unknown environment {name!r}."]},
        )
    return found


def approval_times(
    request: DeploymentRequest, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    """When an approval given ``now`` is given, takes effect and expires, by its policy."""
    policy = request.policy
    return (
        now,
        now + dt.timedelta(seconds=policy.wait_seconds),
        now + dt.timedelta(days=policy.approval_expiry_days),
    )


def reauthenticate(caller: Caller, password: str | None, *, subject: Subject, scope: Any) -> None:
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
    failures = audit_selectors.action_count_since(
        action=AuditAction.SIGNOFF_REAUTHENTICATION_FAILED, actor_id=str(user.pk), since=since
    )
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
            action=AuditAction.SIGNOFF_REAUTHENTICATION_FAILED,
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


def check_decision(decision: str) -> None:
    """``InvalidInput`` unless ``decision`` is one a signature can make."""
    if decision not in Decision.values:
        raise InvalidInput(
            f"decision {decision!r} is not one of {', '.join(Decision.values)}",
            fields={"decision": [f'"{decision}" is not a valid choice.']},
        )


def check_deployable(version: ModelVersion) -> None:
    """``Conflict`` when the model is retired or the version deprecated or retired."""
    if version.model.status == ModelStatus.RETIRED:
        raise Conflict(f"model {version.model.name!r} is retired")
    if version.status in (VersionStatus.DEPRECATED, VersionStatus.RETIRED):
        raise Conflict(f"{version} is {version.status}")


def each_request(requests: Any, apply: Callable[..., DeploymentRequest]) -> int:
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

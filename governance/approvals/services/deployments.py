"""Deployments reported by CI, checked against the gate."""

from __future__ import annotations

import datetime as dt
import uuid

from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import Subject, audit_record
from core.accounts.callers import Caller
from core.errors import Conflict, Forbidden, InvalidInput
from core.events import emit
from governance.approvals import selectors
from governance.approvals.models import Deployment, DeploymentEvent, Environment, GateCheck
from governance.approvals.services._common import (
    environment_named,
    may_request,
    recording_refusals,
    scope_of,
)
from registry.models import ModelVersion

# CI clocks drift a little; a deployment further in the future is a mistake.
FUTURE_SKEW = dt.timedelta(minutes=5)


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
    env = environment_named(environment)
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
    scope = scope_of(version, env)
    subject = Subject(type="model_version", id=str(version.pk), label=str(version))
    with recording_refusals(
        caller, action=AuditAction.DEPLOYMENT_REFUSED, subject=subject, scope=scope
    ):
        if not may_request(caller.user, version):
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
            audit_record(
                action=AuditAction(f"deployment.{event}"),
                actor=caller.actor,
                object=Subject(type="deployment", id=str(deployment.pk), label=str(deployment)),
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
            emit(AuditAction(f"deployment.{event}"), deployment, caller.actor)
    return deployment

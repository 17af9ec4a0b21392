"""Sign-off policies: publishing the next version of an environment's policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.db.models import Max

from audit.actions import AuditAction
from audit.canonical import CanonicalFormError, to_profile
from audit.services import Subject, audit_record
from core.accounts.callers import Caller
from core.errors import Forbidden, InvalidInput
from core.roles import Role
from governance.approvals import evidence as evidence_module
from governance.approvals.models import SignOff, SignOffPolicy
from governance.approvals.services._common import (
    environment_named,
    group_grants,
    recording_refusals,
)
from governance.approvals.workflow import Meaning, Step


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
    env = environment_named(environment)
    checked_steps = _check_steps(steps)
    checked_evidence = _check_evidence(evidence)
    subject = Subject(type="signoff_policy", id=f"{env.name}/{risk_tier}", label="")
    with recording_refusals(
        caller,
        action=AuditAction.SIGNOFF_POLICY_REFUSED,
        subject=subject,
        scope={"environment": env.name},
    ):
        if not group_grants(caller.user, "approvals.publish_signoffpolicy"):
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
            audit_record(
                action=AuditAction.SIGNOFF_POLICY_PUBLISHED,
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

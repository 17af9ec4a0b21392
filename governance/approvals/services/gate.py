"""The deployment gate: recording its answer to CI."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import transaction

from audit.actions import AuditAction
from audit.services import Subject, audit_record
from core.accounts.callers import Caller
from core.events import emit
from governance.approvals import selectors
from governance.approvals.models import DeploymentRequest, Environment, GateCheck
from governance.approvals.services._common import scope_of
from registry.models import ModelVersion


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
        record = audit_record(
            action=AuditAction.GATE_CHECKED,
            actor=caller.actor,
            object=Subject(type="gate_check", id=str(check.check_id), label=str(version)),
            scope=scope_of(version, environment),
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
        emit(AuditAction.GATE_CHECKED, check, caller.actor)
    return GateAnswer(check=check, request=request, audit_seq=record.seq)

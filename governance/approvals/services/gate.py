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
from governance.approvals.models import Environment, GateCheck
from registry.models import ModelVersion


@dataclass(frozen=True)
class GateAnswer:
    """The gate's answer, the decision it records and where it was recorded."""

    check: GateCheck
    decision: selectors.GateDecision
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
    """May the artifact ``digest`` of ``version`` go to ``environment`` now? Decided by
    ``selectors.gate_decide`` (deny by default) and recorded by :func:`gate_record`."""
    decision = selectors.gate_decide(version=version, environment=environment, digest=digest)
    return gate_record(caller=caller, decision=decision, pipeline_run=pipeline_run, commit=commit)


def gate_record(
    *,
    caller: Caller,
    decision: selectors.GateDecision,
    pipeline_run: str = "",
    commit: str = "",
) -> GateAnswer:
    """Record a decision of the gate: a ``GateCheck`` and its audit record (``gate.checked``)
    in one transaction, the record last, so the log's lock is held for the head read and
    the one statement that appends (with nothing a listener needs read under it: the
    decision loaded it)."""
    check_id = uuid.uuid4()
    scope = {
        "model": decision.model_name,
        "version": decision.version,
        "environment": decision.environment,
    }
    data = {
        "check_id": str(check_id),
        **scope,
        "digest": decision.digest,
        "allowed": decision.allowed,
        "status": decision.status,
        "reasons": decision.reasons,
        "request": decision.request_id,
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
    }
    with transaction.atomic(durable=True):
        check = GateCheck.objects.create(
            check_id=check_id,
            model_version_id=decision.version_id,
            environment_id=decision.environment_id,
            digest=decision.digest,
            allowed=decision.allowed,
            status=decision.status,
            reasons=decision.reasons,
            request_id=decision.request_id,
            asked_by=caller.user,
            asked_at=decision.decided_at,
            pipeline_run=pipeline_run,
            commit=commit,
        )
        record = audit_record(
            action=AuditAction.GATE_CHECKED,
            actor=caller.actor,
            object=Subject(type="gate_check", id=str(check_id), label=decision.label),
            scope=scope,
            data=data,
        )
        emit(AuditAction.GATE_CHECKED, check, caller.actor, record=record, facts=decision.facts)
    return GateAnswer(check=check, decision=decision, audit_seq=record.seq)

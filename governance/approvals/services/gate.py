"""The deployment gate: recording its answer to CI."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from audit.actions import AuditAction
from audit.models import AuditRecord
from audit.services import AuditEvent, Subject, audit_append
from core.accounts.callers import Caller
from core.actors import Actor
from core.events import emit
from core.inserts import insert
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
    decision loaded it). Checks recorded at the same moment in this process share that
    transaction (:class:`GroupCommit`)."""
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
    check = GateCheck(
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
    event = AuditEvent(
        action=AuditAction.GATE_CHECKED,
        actor=caller.actor,
        object=Subject(type="gate_check", id=str(check_id), label=decision.label),
        scope=scope,
        data=data,
    )
    pending = _Pending(check=check, event=event, actor=caller.actor, facts=decision.facts)
    record = _group_commit.record(pending)
    return GateAnswer(check=check, decision=decision, audit_seq=record.seq)


@dataclass
class _Pending:
    """A check waiting to be written, and what became of it."""

    check: GateCheck
    event: AuditEvent
    actor: Actor
    facts: Mapping[str, Any]
    done: bool = False
    record: AuditRecord | None = None
    error: BaseException | None = None


class GroupCommit:
    """Group commit for gate checks, within one process.

    Every check appends to the one chain, whose head row a transaction holds from its head
    read until it commits: checks arriving together would queue for it one commit at a time.
    Instead, the first check to arrive writes, in one transaction, every check waiting by
    then (their rows in one insert, their records in one append, each announced), and the
    others wait for that commit; checks arriving meanwhile form the next group. Nothing is
    answered before its commit; each check keeps its own row and record. A group that fails
    is written again one check at a time, so one check's failure is its own."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._waiting: list[_Pending] = []
        self._writing = False

    def record(self, pending: _Pending) -> AuditRecord:
        with self._changed:
            self._waiting.append(pending)
            while self._writing and not pending.done:
                self._changed.wait()
            if not pending.done:
                self._writing = True
                group, self._waiting = self._waiting, []
            else:
                group = []
        if group:
            try:
                self._write_group(group)
            finally:
                with self._changed:
                    for member in group:
                        if member.record is None and member.error is None:
                            member.error = RuntimeError("the check's group was not written")
                        member.done = True
                    self._writing = False
                    self._changed.notify_all()
        if pending.error is not None:
            raise pending.error
        assert pending.record is not None
        return pending.record

    def _write_group(self, group: list[_Pending]) -> None:
        try:
            _write(group)
        except BaseException as error:
            if len(group) == 1:
                group[0].error = error
                return
            for member in group:
                try:
                    _write([member])
                except BaseException as alone:
                    member.error = alone


def _write(group: list[_Pending]) -> None:
    with transaction.atomic(durable=True):
        insert(*(member.check for member in group))
        records = audit_append(events=[member.event for member in group])
        for member, record in zip(group, records, strict=True):
            emit(
                AuditAction.GATE_CHECKED, member.check, member.actor,
                record=record, facts=member.facts,
            )  # fmt: skip
    for member, record in zip(group, records, strict=True):
        member.record = record


_group_commit = GroupCommit()

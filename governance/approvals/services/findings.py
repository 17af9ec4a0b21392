"""Findings against a model version: opening and resolving them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import Subject, audit_record
from core.accounts.callers import Caller
from core.accounts.models import User
from core.errors import Conflict, Forbidden, InvalidInput, SeparationOfDutiesViolation
from core.roles import Role
from governance.approvals import selectors
from governance.approvals.models import Finding, FindingStatus
from governance.approvals.services._common import recording_refusals
from registry.models import ModelVersion

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
    with recording_refusals(
        caller, action=AuditAction.FINDING_REFUSED, subject=subject, scope=scope
    ):
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
    with recording_refusals(
        caller, action=AuditAction.FINDING_REFUSED, subject=subject, scope=scope
    ):
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
            audit_record(
                action=AuditAction.FINDING_OPENED,
                actor=caller.actor,
                object=_finding_subject(finding),
                scope=scope,
                data=finding_snapshot(finding),
            )
    return finding


def finding_resolve_authorize(*, caller: Caller, finding: Finding) -> None:
    """``Forbidden`` (recorded as ``finding.refused``) unless the caller holds a finding role
    for the finding's version (independence from the model is checked by the service)."""
    version = finding.model_version
    scope = {"model": version.model.name, "version": version.version}
    with recording_refusals(
        caller, action=AuditAction.FINDING_REFUSED, subject=_finding_subject(finding), scope=scope
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
    with recording_refusals(
        caller, action=AuditAction.FINDING_REFUSED, subject=subject, scope=scope
    ):
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
            audit_record(
                action=AuditAction.FINDING_RESOLVED,
                actor=caller.actor,
                object=subject,
                scope=scope,
                data={"before": before, "after": finding_snapshot(finding)},
                reason=resolution,
            )
    return finding

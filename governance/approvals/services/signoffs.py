"""Signing a step of a deployment request, and previewing what a signature would sign."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.canonical import dumps, format_timestamp, to_profile
from audit.services import Subject, audit_record
from core.accounts.callers import Caller
from core.accounts.models import User
from core.errors import ContentChanged, EvidenceNotAcknowledged, InvalidInput, TransitionNotAllowed
from core.events import emit
from core.reasons import MAX_REASON
from governance.approvals import selectors
from governance.approvals.models import DeploymentRequest, SignOff
from governance.approvals.services._common import (
    approval_times,
    check_decision,
    lock_request,
    parties_of,
    reauthenticate,
    recording_refusals,
    request_subject,
    scope_of,
    signatures_of,
)
from governance.approvals.workflow import (
    Decision,
    EvidenceStatus,
    Meaning,
    RequestAction,
    Signature,
    Step,
    action_after_signature,
    check_signer,
    current_step,
    next_state,
    steps_from,
)


def content_to_sign(
    *,
    request: DeploymentRequest,
    step: str,
    decision: str,
    meaning: str,
    signer: User,
    now: dt.datetime,
    acknowledging: bool = True,
) -> dict[str, Any]:
    """What a signature signs but the moment of signing: everything that identifies the
    request, the step and the evidence shown (judged at ``now``), so the signature cannot be
    moved to another request or step. Signing adds ``signed_at``.

    An approval of a step (``acknowledging``) while required evidence is not passing
    (missing, failed or stale) also signs ``evidence_acknowledged``: each such kind and its
    status, which the signer acknowledges."""
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
    shortfalls = evidence_shortfalls(shown)
    if acknowledging and decision == Decision.APPROVE and shortfalls:
        content["evidence_acknowledged"] = shortfalls
    profiled: dict[str, Any] = to_profile(content)
    return profiled


def evidence_shortfalls(shown: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The required evidence shown that does not pass, as ``{"kind", "status"}`` in order."""
    return [
        {"kind": str(item["kind"]), "status": str(item["status"])}
        for item in shown
        if item["status"] != EvidenceStatus.PASSED
    ]


def signed_sha256(content: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON (RFC 8785 profile of ``audit.canonical``) of ``content``."""
    return hashlib.sha256(dumps(dict(content))).hexdigest()


def content_signed_at(content: Mapping[str, Any], signed_at: dt.datetime) -> dict[str, Any]:
    """``content`` with the moment of signing: what a signature signs."""
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
    check_decision(decision)
    next_state(request.state, RequestAction.SIGN)
    step = current_step(steps_from(request.policy.steps), signatures_of(request))
    if step is None:
        raise TransitionNotAllowed("every step of this request is already signed")
    chosen = _meaning(meaning, step)
    content = content_to_sign(
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
    """The meaning of a signature on ``step``: the step's own (21 CFR 11.50: the policy says
    what a signature on it means; the signer does not choose)."""
    chosen = meaning or step.meaning
    if chosen not in Meaning.values:
        raise InvalidInput(
            f"meaning {chosen!r} is not one of {', '.join(Meaning.values)}",
            fields={"meaning": [f'"{chosen}" is not a valid choice.']},
        )
    if chosen != step.meaning:
        raise InvalidInput(
            f"a signature on step {step.name!r} means {step.meaning!r}, not {chosen!r}",
            fields={"meaning": [f"This step's signatures mean “{step.meaning}”."]},
        )
    return chosen


def check_comment(decision: str, comment: str) -> None:
    """``InvalidInput`` for a comment that is too long, or a rejection without one."""
    if len(comment or "") > MAX_REASON:
        raise InvalidInput("comment too long", fields={"comment": ["Too long."]})
    if decision == Decision.REJECT and not (comment or "").strip():
        raise InvalidInput(
            "a rejection needs a comment saying why",
            fields={"comment": ["Say why you reject the request."]},
        )


def check_acknowledged(content: Mapping[str, Any], acknowledged: bool) -> None:
    """``EvidenceNotAcknowledged`` when ``content`` approves while required evidence is not
    passing and the signer did not acknowledge it."""
    shortfalls = content.get("evidence_acknowledged") or []
    if shortfalls and not acknowledged:
        listed = ", ".join(f"{item['kind']} ({item['status']})" for item in shortfalls)
        raise EvidenceNotAcknowledged(
            f"the evidence the policy requires is not passing: {listed}; approve only if you "
            "acknowledge it explicitly",
            fields={"acknowledge_evidence": [f"Acknowledge the evidence not passing: {listed}."]},
        )


def store_signoff(
    *,
    request: DeploymentRequest,
    step: str,
    signer: User,
    decision: str,
    meaning: str,
    comment: str,
    content: dict[str, Any],
    signed_at: dt.datetime,
) -> SignOff:
    """Keep the signature of ``signer`` on ``step`` of ``request``: the signed ``content``
    (with its moment of signing) and the SHA-256 of its canonical JSON."""
    return SignOff.objects.create(
        request=request,
        step=step,
        signer=signer,
        decision=decision,
        meaning=meaning,
        printed_name=signer.printed_name,
        comment=(comment or "").strip(),
        signed_at=signed_at,
        signed_content=content,
        signed_sha256=signed_sha256(content),
        evidence_acknowledged=list(content.get("evidence_acknowledged") or []),
    )


def record_signoff(
    caller: Caller, signoff: SignOff, *, scope: Mapping[str, Any], request_state: str
) -> None:
    """Record ``signoff.signed`` (the signed content, its digest, the comment and the
    request's state after the signature) and announce it to the receivers of domain events."""
    audit_record(
        action=AuditAction.SIGNOFF_SIGNED,
        actor=caller.actor,
        object=Subject(type="signoff", id=str(signoff.pk), label=str(signoff)),
        scope=scope,
        data={
            "signed_content": signoff.signed_content,
            "signed_sha256": signoff.signed_sha256,
            "comment": signoff.comment,
            "evidence_acknowledged": signoff.evidence_acknowledged,
            "request_state": request_state,
        },
    )
    emit(AuditAction.SIGNOFF_SIGNED, signoff, caller.actor)


def signoff_sign(
    *,
    caller: Caller,
    request: DeploymentRequest,
    decision: str,
    password: str | None,
    meaning: str | None = None,
    comment: str = "",
    expected_content_sha256: str | None = None,
    acknowledge_evidence: bool = False,
) -> SignOff:
    """Sign the current step of a pending request (approve or reject), re-authenticating
    with the password. Separation of duties decides who may sign (``workflow.check_signer``);
    one rejection rejects the request; the signature completing the last step approves it.
    Exactly one audit record (``signoff.signed``) carries the signed content and its digest.

    With ``expected_content_sha256`` (the ``sha256`` of ``signoff_preview`` the signer was
    shown) the signature is refused with ``ContentChanged`` (``content_changed``, recorded
    as a security event) unless the content to sign, but the moment of signing, is still
    exactly that.

    The meaning is the step's (another is ``InvalidInput``); a rejection needs a comment; an
    approval while required evidence is missing, failed or stale needs
    ``acknowledge_evidence`` (else ``EvidenceNotAcknowledged``), and the acknowledgement
    (which kinds, in which status) is signed and kept with the signature."""
    check_decision(decision)
    if len(comment or "") > MAX_REASON:
        raise InvalidInput("comment too long", fields={"comment": ["Too long."]})
    subject = request_subject(request)
    scope = scope_of(request.model_version, request.environment)
    with recording_refusals(
        caller, action=AuditAction.SIGNOFF_REFUSED, subject=subject, scope=scope
    ):
        reauthenticate(caller, password, subject=subject, scope=scope)
        with transaction.atomic(durable=True):
            request = lock_request(request)
            next_state(request.state, RequestAction.SIGN)
            steps = steps_from(request.policy.steps)
            signatures = signatures_of(request)
            signer = caller.user
            step = check_signer(
                steps=steps,
                signatures=signatures,
                parties=parties_of(request),
                signer_id=signer.pk,
                signer_roles=selectors.user_roles(signer, request.model_version.model),
                signer_is_person=not signer.is_service_account,
            )
            # Who may sign is answered first (403); what they sent is judged after (400).
            check_comment(decision, comment)
            chosen = _meaning(meaning, step)
            now = timezone.now()
            unsigned = content_to_sign(
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
            check_acknowledged(unsigned, acknowledge_evidence)
            content = content_signed_at(unsigned, now)
            signoff = store_signoff(
                request=request,
                step=step.name,
                signer=signer,
                decision=decision,
                meaning=chosen,
                comment=comment,
                content=content,
                signed_at=now,
            )
            action = action_after_signature(
                steps=steps,
                signatures=[*signatures, Signature(step.name, signer.pk, decision)],
                decision=decision,
            )
            request.state = next_state(request.state, action)
            if action == RequestAction.APPROVE:
                request.approved_at, request.effective_at, request.expires_at = approval_times(
                    request, now
                )
            elif action == RequestAction.REJECT:
                request.closed_at, request.closed_by = now, signer
            request.save()
            record_signoff(caller, signoff, scope=scope, request_state=request.state)
    return signoff

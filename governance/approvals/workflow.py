"""The deployment-request state machine and the gate's verdict, as data and pure functions.

Nothing here reads or writes the database: services load the facts (under a row lock), ask
these functions, apply the answer and append the audit record. Refusals raise the named
domain errors of ``core.errors``.

States (DESIGN.md section 3)::

    pending -> approved | rejected | withdrawn
    approved -> expired | revoked
    emergency (break-glass; created so, it only gains its retrospective review)

A policy with no steps approves at request time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import models

from core.errors import SeparationOfDutiesViolation, TransitionNotAllowed


class RequestState(models.TextChoices):
    PENDING = "pending", "Pending sign-off"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"
    EMERGENCY = "emergency", "Emergency (break-glass)"


class RequestAction(models.TextChoices):
    SIGN = "sign", "Sign a step"
    APPROVE = "approve", "Final approval"
    REJECT = "reject", "Reject"
    WITHDRAW = "withdraw", "Withdraw"
    EXPIRE = "expire", "Expire"
    REVOKE = "revoke", "Revoke"


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


class Meaning(models.TextChoices):
    """What a signature means (21 CFR 11.50): the signer reviewed, approved, or takes
    responsibility."""

    REVIEW = "review", "Review"
    APPROVAL = "approval", "Approval"
    RESPONSIBILITY = "responsibility", "Responsibility"


TRANSITIONS: dict[tuple[str, str], str] = {
    (RequestState.PENDING, RequestAction.SIGN): RequestState.PENDING,
    (RequestState.PENDING, RequestAction.APPROVE): RequestState.APPROVED,
    (RequestState.PENDING, RequestAction.REJECT): RequestState.REJECTED,
    (RequestState.PENDING, RequestAction.WITHDRAW): RequestState.WITHDRAWN,
    (RequestState.APPROVED, RequestAction.EXPIRE): RequestState.EXPIRED,
    (RequestState.APPROVED, RequestAction.REVOKE): RequestState.REVOKED,
    # A break-glass deployment that an officer revokes, or whose retrospective review rejects
    # it, allows no further deployment (what is live stays live, as for any revocation).
    (RequestState.EMERGENCY, RequestAction.REVOKE): RequestState.REVOKED,
    (RequestState.EMERGENCY, RequestAction.REJECT): RequestState.REVOKED,
}
# A request in one of these states is finished: no signature, withdrawal or revocation.
FINAL_STATES = frozenset(
    {RequestState.REJECTED, RequestState.WITHDRAWN, RequestState.EXPIRED, RequestState.REVOKED}
)


def next_state(state: str, action: str) -> str:
    """The state ``action`` leads to from ``state``; ``TransitionNotAllowed`` if none."""
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        raise TransitionNotAllowed(
            f"a request that is {state} cannot be {_PAST.get(action, action)}"
        ) from None


_PAST: dict[str, str] = {
    RequestAction.SIGN: "signed",
    RequestAction.APPROVE: "approved",
    RequestAction.REJECT: "rejected",
    RequestAction.WITHDRAW: "withdrawn",
    RequestAction.EXPIRE: "expired",
    RequestAction.REVOKE: "revoked",
}


@dataclass(frozen=True)
class Step:
    """One step of a policy: who may sign (any of ``roles``), how many distinct signers it
    needs, and whether it is independent (its signers may not be the model's owner)."""

    name: str
    roles: tuple[str, ...]
    required: int = 1
    independent: bool = False
    meaning: str = Meaning.APPROVAL

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Step:
        return cls(
            name=str(data["name"]),
            roles=tuple(data["roles"]),
            required=int(data.get("required", 1)),
            independent=bool(data.get("independent", False)),
            meaning=str(data.get("meaning", Meaning.APPROVAL)),
        )

    def as_data(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "roles": list(self.roles),
            "required": self.required,
            "independent": self.independent,
            "meaning": self.meaning,
        }


@dataclass(frozen=True)
class Signature:
    """A signature already given on a request."""

    step: str
    signer_id: int
    decision: str


@dataclass(frozen=True)
class Parties:
    """The people separation of duties keeps apart from the signers."""

    requester_id: int
    author_id: int
    owner_id: int


def steps_from(data: Iterable[Mapping[str, Any]]) -> tuple[Step, ...]:
    return tuple(Step.from_data(item) for item in data)


def approvals(step: Step, signatures: Sequence[Signature]) -> int:
    return sum(1 for s in signatures if s.step == step.name and s.decision == Decision.APPROVE)


def current_step(steps: Sequence[Step], signatures: Sequence[Signature]) -> Step | None:
    """The first step still short of signers, or None once every step is complete."""
    for step in steps:
        if approvals(step, signatures) < step.required:
            return step
    return None


def check_signer(
    *,
    steps: Sequence[Step],
    signatures: Sequence[Signature],
    parties: Parties,
    signer_id: int,
    signer_roles: frozenset[str],
    signer_is_person: bool,
) -> Step:
    """The step ``signer_id`` may sign now, or ``SeparationOfDutiesViolation`` naming the rule.

    The requester never signs; the version's author never signs; an independent step
    excludes the model's owner too; one person signs at most one step of a request; only
    holders of one of the step's roles sign.
    """
    step = current_step(steps, signatures)
    if step is None:
        raise TransitionNotAllowed("every step of this request is already signed")
    if not signer_is_person:
        raise SeparationOfDutiesViolation("a service account cannot sign", rule="person_required")
    if signer_id == parties.requester_id:
        raise SeparationOfDutiesViolation(
            "the requester cannot sign their own request", rule="requester_cannot_sign"
        )
    if signer_id == parties.author_id:
        raise SeparationOfDutiesViolation(
            "the author of the version cannot sign its deployment", rule="author_cannot_sign"
        )
    if step.independent and signer_id == parties.owner_id:
        raise SeparationOfDutiesViolation(
            f"step {step.name!r} is independent: the model's owner cannot sign it",
            rule="owner_cannot_sign_independent_step",
        )
    earlier = [s for s in signatures if s.signer_id == signer_id]
    if earlier:
        raise SeparationOfDutiesViolation(
            f"you already signed step {earlier[0].step!r}; one person signs one step",
            rule="already_signed_another_step"
            if earlier[0].step != step.name
            else "already_signed_this_step",
        )
    if not signer_roles & set(step.roles):
        raise SeparationOfDutiesViolation(
            f"step {step.name!r} needs the role {' or '.join(step.roles)}", rule="role_required"
        )
    return step


def check_retrospective_signer(
    *, parties: Parties, signer_id: int, signer_roles: frozenset[str], roles: Iterable[str]
) -> None:
    """``SeparationOfDutiesViolation`` unless ``signer_id`` may sign the retrospective review
    of a break-glass request: not the one who broke the glass, not the version's author, and
    holding one of ``roles``."""
    if signer_id == parties.requester_id:
        raise SeparationOfDutiesViolation(
            "the retrospective review is signed by someone other than the one who broke the glass",
            rule="requester_cannot_sign",
        )
    if signer_id == parties.author_id:
        raise SeparationOfDutiesViolation(
            "the author of the version cannot sign the retrospective review of its deployment",
            rule="author_cannot_sign",
        )
    wanted = tuple(roles)
    if not signer_roles & set(wanted):
        raise SeparationOfDutiesViolation(
            f"the retrospective review needs the role {' or '.join(wanted)}",
            rule="role_required",
        )


def action_after_signature(
    *, steps: Sequence[Step], signatures: Sequence[Signature], decision: str
) -> str:
    """What a new signature (already in ``signatures``) does: one rejection rejects the
    request; the signature completing the last step approves it; any other signs a step."""
    if decision == Decision.REJECT:
        return RequestAction.REJECT
    if current_step(steps, signatures) is None:
        return RequestAction.APPROVE
    return RequestAction.SIGN


class EvidenceStatus(models.TextChoices):
    PASSED = "passed", "Passed"
    MISSING = "missing", "Missing"
    FAILED = "failed", "Failed"
    STALE = "stale", "Stale"


@dataclass(frozen=True)
class RequestFacts:
    """What the gate needs of the request that decides the answer."""

    state: str
    pending_step: str | None = None
    expires_at: dt.datetime | None = None
    effective_at: dt.datetime | None = None


@dataclass(frozen=True)
class GateFacts:
    """Everything the gate's verdict depends on, loaded by the service."""

    now: dt.datetime
    digest_matches: bool
    retired: bool
    previous_environment_ok: bool
    request: RequestFacts | None
    evidence: Sequence[tuple[str, str]] = field(default_factory=tuple)
    open_findings: Sequence[int] = field(default_factory=tuple)


def gate_reasons(facts: GateFacts) -> list[str]:
    """The reasons a deployment is denied, in a stable order; empty means allowed.

    Deny by default: no request is ``not_requested``. A break-glass (``emergency``) request
    bypasses sign-off, evidence, open findings and promotion order, never the digest or
    retirement.
    """
    reasons: list[str] = []
    if not facts.digest_matches:
        reasons.append("digest_mismatch")
    if facts.retired:
        reasons.append("retired")
    request = facts.request
    emergency = request is not None and request.state == RequestState.EMERGENCY
    if not facts.previous_environment_ok and not emergency:
        reasons.append("previous_environment_missing")
    if request is None or request.state == RequestState.WITHDRAWN:
        reasons.append("not_requested")
    elif request.state == RequestState.PENDING:
        reasons.append(f"pending_step:{request.pending_step}")
    elif request.state in (RequestState.REJECTED, RequestState.REVOKED, RequestState.EXPIRED):
        reasons.append(str(request.state))
    elif request.expires_at is not None and facts.now >= request.expires_at:
        reasons.append("expired")
    elif (
        request.state == RequestState.APPROVED
        and request.effective_at is not None
        and facts.now < request.effective_at
    ):
        stamp = request.effective_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        reasons.append(f"waiting_until:{stamp}")
    if not emergency:
        for kind, status in facts.evidence:
            if status != EvidenceStatus.PASSED:
                reasons.append(f"evidence_{status}:{kind}")
        reasons.extend(f"open_finding:{finding}" for finding in facts.open_findings)
    return reasons


def live_versions(events: Iterable[tuple[Any, Any, str]]) -> dict[Any, Any]:
    """Which version of each model is live after ``events`` (``(model, version, event)`` in
    the order they happened): ``deployed`` makes a version live; ``rolled_back`` takes it out
    and makes the previously live one live again; ``retired`` takes the model's live version
    out of the environment (nothing is live until the next deployment)."""
    history: dict[Any, list[Any]] = {}
    for model, version, event in events:
        stack = history.setdefault(model, [])
        if event == "deployed":
            if version in stack:
                stack.remove(version)
            stack.append(version)
        elif event == "rolled_back":
            if version in stack:
                stack.remove(version)
        elif event == "retired":
            if stack and stack[-1] == version:
                stack.clear()
            elif version in stack:
                stack.remove(version)
    return {model: stack[-1] for model, stack in history.items() if stack}

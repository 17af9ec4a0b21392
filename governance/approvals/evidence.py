"""The evidence seam: how sign-off asks "what passing evidence of kind K exists for this
version", without depending on the app that produces the evidence.

A policy names requirements (``EvidenceRequirement``: a report kind, thresholds, a maximum
age). The app that produces evidence (the reports app) writes one ``EvidenceEntry`` per
finished report, with the facts it is judged by: whether it was computed on the version's
registered data without threshold overrides (``eligible``, the producer's rules), the
thresholds it used, and the sensitive attributes it covered. This module judges: the newest
entry of the kind that counts (eligible, the same threshold values as the requirement names,
covering every sensitive attribute the model declares) is the evidence; its verdict decides
failed or passed, and its age against ``max_age_days`` at the moment asked decides stale.

With no entry of a kind that counts, evidence of that kind is missing: the gate denies
(``evidence_missing:<kind>``) rather than assuming a pass.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from governance.approvals.workflow import EvidenceStatus


@dataclass(frozen=True)
class EvidenceRequirement:
    """One kind of evidence a policy requires."""

    kind: str
    thresholds: Mapping[str, Any] = field(default_factory=dict)
    max_age_days: int | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> EvidenceRequirement:
        age = data.get("max_age_days")
        return cls(
            kind=str(data["kind"]),
            thresholds=dict(data.get("thresholds") or {}),
            max_age_days=None if age is None else int(age),
        )


@dataclass(frozen=True)
class Evidence:
    """A report offered as evidence: its id, the SHA-256 of its content (shown to signers and
    signed over), when it was computed and whether its verdict passes the thresholds."""

    kind: str
    report_id: str
    sha256: str
    computed_at: dt.datetime
    passed: bool


@dataclass(frozen=True)
class Candidate:
    """A finished report of one kind offered for a version (an ``EvidenceEntry`` as data)."""

    evidence: Evidence
    eligible: bool
    thresholds: Mapping[str, Any]
    covers: Sequence[str] | None

    # An ``EvidenceEntry``'s fields, as ``of`` reads them.
    FIELDS = (
        "kind",
        "report_id",
        "sha256",
        "computed_at",
        "passed",
        "eligible",
        "thresholds",
        "covers",
    )

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Candidate:
        """A candidate from an ``EvidenceEntry``'s fields (``FIELDS``) as values."""
        return cls(
            evidence=Evidence(
                kind=row["kind"],
                report_id=row["report_id"],
                sha256=row["sha256"],
                computed_at=row["computed_at"],
                passed=bool(row["passed"]),
            ),
            eligible=bool(row["eligible"]),
            thresholds=row["thresholds"] or {},
            covers=row["covers"],
        )


def _same(required: Any, used: Any) -> bool:
    try:
        return Decimal(str(required)) == Decimal(str(used))
    except InvalidOperation:
        return False


def counts(candidate: Candidate, requirement: EvidenceRequirement, declared: Sequence[str]) -> bool:
    """Whether ``candidate`` can stand as evidence for ``requirement`` on a model declaring
    the sensitive attributes ``declared``: eligible, judged with the same value of every
    threshold both name, and (for a kind that covers attributes) covering all of them."""
    if not candidate.eligible or candidate.evidence.kind != requirement.kind:
        return False
    for key, value in requirement.thresholds.items():
        if key in candidate.thresholds and not _same(value, candidate.thresholds[key]):
            return False
    return candidate.covers is None or set(declared) <= set(candidate.covers)


@dataclass(frozen=True)
class EvidenceResult:
    """The judgement of one requirement: its status and the evidence it was made on."""

    requirement: EvidenceRequirement
    status: str
    evidence: Evidence | None


def judge(
    *,
    requirement: EvidenceRequirement,
    candidates: Sequence[Candidate],
    declared: Sequence[str],
    now: dt.datetime,
) -> EvidenceResult:
    """Missing (nothing counts), failed (the newest that counts failed its verdict), stale
    (older than the requirement's maximum age at ``now``) or passed."""
    counting = [c.evidence for c in candidates if counts(c, requirement, declared)]
    if not counting:
        return EvidenceResult(requirement, EvidenceStatus.MISSING, None)
    found = max(counting, key=lambda e: (e.computed_at, e.report_id))
    if not found.passed:
        return EvidenceResult(requirement, EvidenceStatus.FAILED, found)
    if requirement.max_age_days is not None and now - found.computed_at > dt.timedelta(
        days=requirement.max_age_days
    ):
        return EvidenceResult(requirement, EvidenceStatus.STALE, found)
    return EvidenceResult(requirement, EvidenceStatus.PASSED, found)


def judge_all(
    *,
    requirements: Sequence[Mapping[str, Any]],
    candidates: Sequence[Candidate],
    declared: Sequence[str],
    now: dt.datetime,
) -> list[EvidenceResult]:
    """Every requirement of a policy (its ``evidence`` list), judged on ``candidates``."""
    return [
        judge(
            requirement=EvidenceRequirement.from_data(item),
            candidates=candidates,
            declared=declared,
            now=now,
        )
        for item in requirements
    ]

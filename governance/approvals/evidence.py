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
class Rejection:
    """A report of the required kind that does not count, with why (plain sentences)."""

    evidence: Evidence
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class EvidenceResult:
    """The judgement of one requirement: its status and the evidence it was made on.

    ``candidates``, ``declared`` and ``now`` are what it was judged on, kept so that a page
    can say why (``explanation``, ``rejected``); the gate never reads them, and they are
    worded only when asked."""

    requirement: EvidenceRequirement
    status: str
    evidence: Evidence | None
    candidates: tuple[Candidate, ...] = field(default=(), repr=False, compare=False)
    declared: tuple[str, ...] = field(default=(), repr=False, compare=False)
    now: dt.datetime | None = field(default=None, repr=False, compare=False)

    @property
    def rejected(self) -> list[Rejection]:
        """The reports of the required kind that do not count, newest first."""
        return rejections(self.requirement, self.candidates, self.declared)

    @property
    def explanation(self) -> str:
        """Why the requirement stands as it does, in plain words."""
        return explain(self)

    @property
    def required(self) -> str:
        """What the requirement asks, in words."""
        return required(self.requirement)

    @property
    def computed_ago(self) -> str:
        """How long before the judgement the evidence was computed ("just now", "3 days ago")."""
        if self.evidence is None or self.now is None:
            return ""
        return ago(self.now - self.evidence.computed_at)


THRESHOLD_NAMES = {
    "min_impact_ratio": "minimum four-fifths impact ratio",
    "max_equalized_odds_difference": "maximum equalized-odds difference",
    "min_group_size": "minimum group size",
    "drift_share": "share of drifted columns",
    "threshold": "drift test threshold",
}


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def ago(delta: dt.timedelta) -> str:
    """A duration as a relative phrase that is right: "just now", "1 minute ago", "2 days
    ago" (a moment in the future, by clock skew, is "just now" too)."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            return f"{_plural(seconds // size, unit)} ago"
    return "just now"  # pragma: no cover - every duration of a minute or more has a unit


def _threshold(name: str, value: Any) -> str:
    if name == "dataset_drift" and isinstance(value, bool):
        return "dataset drift" if value else "no dataset drift"
    return f"{THRESHOLD_NAMES.get(name, name.replace('_', ' '))} {value}"


def required(requirement: EvidenceRequirement) -> str:
    """What ``requirement`` asks, in words: "computed within 30 days; no dataset drift"."""
    limit = requirement.max_age_days
    age = "any age" if limit is None else f"computed within {_plural(limit, 'day')}"
    values = [_threshold(k, v) for k, v in sorted(requirement.thresholds.items())]
    return "; ".join([age, ", ".join(values)] if values else [age])


def reasons_not_counting(
    candidate: Candidate, requirement: EvidenceRequirement, declared: Sequence[str]
) -> tuple[str, ...]:
    """Why ``candidate`` does not count for ``requirement`` (empty exactly when it counts,
    as ``counts`` decides)."""
    if candidate.evidence.kind != requirement.kind:
        return (f"it is a {candidate.evidence.kind} report, not {requirement.kind}",)
    reasons: list[str] = []
    if not candidate.eligible:
        reasons.append(
            "it was computed with threshold overrides, or not on the version's registered "
            + (
                "validation or test data"
                if requirement.kind == "fairness"
                else "dataset versions (its reference data)"
            )
        )
    for key, value in requirement.thresholds.items():
        if key in candidate.thresholds and not _same(value, candidate.thresholds[key]):
            reasons.append(
                f"it was judged with {_threshold(key, candidate.thresholds[key])}; "
                f"the policy requires {value}"
            )
    if candidate.covers is not None:
        missing = [name for name in declared if name not in set(candidate.covers)]
        if missing:
            noun = "attribute" if len(missing) == 1 else "attributes"
            reasons.append(
                f"it does not cover the sensitive {noun} the model declares: " + ", ".join(missing)
            )
    return tuple(reasons)


def rejections(
    requirement: EvidenceRequirement, candidates: Sequence[Candidate], declared: Sequence[str]
) -> list[Rejection]:
    """Every report of the required kind that does not count, newest first, with why."""
    out = [
        Rejection(c.evidence, reasons_not_counting(c, requirement, declared))
        for c in candidates
        if c.evidence.kind == requirement.kind
    ]
    return sorted(
        (r for r in out if r.reasons),
        key=lambda r: (r.evidence.computed_at, r.evidence.report_id),
        reverse=True,
    )


def explain(result: EvidenceResult) -> str:
    """Why ``result`` stands as it does, in plain words: what counted and how it was judged,
    or, when nothing counts, whether any report of the kind exists and why the newest does
    not count."""
    requirement, found = result.requirement, result.evidence
    kind = requirement.kind
    limit = requirement.max_age_days
    allows = f"the policy allows {_plural(limit, 'day')}" if limit is not None else "any age counts"
    if result.status == EvidenceStatus.MISSING or found is None:
        rejected = result.rejected
        if not rejected:
            return f"Missing: no {kind} report has been computed for this version."
        newest = rejected[0]
        count = _plural(len(rejected), f"{kind} report")
        verb = "does" if len(rejected) == 1 else "do"
        when = f", computed {ago(result.now - newest.evidence.computed_at)}," if result.now else ""
        return (
            f"Missing: {count} {verb} not count. The newest{when} does not count because "
            + "; ".join(newest.reasons)
            + "."
        )
    age = f"computed {result.computed_ago}" if result.now else "computed"
    if result.status == EvidenceStatus.FAILED:
        verdict = "found dataset drift" if kind == "drift" else "failed its verdict"
        return (
            f"Failed: the newest {kind} report that counts {verdict}, {age}; "
            "its report page lists the metrics that failed."
        )
    if result.status == EvidenceStatus.STALE:
        return f"Stale: {age}; {allows}. Compute a new {kind} report."
    return (
        "Counts: passed, on the version's registered data with the policy's thresholds; "
        f"{age} ({allows})."
    )


def judge(
    *,
    requirement: EvidenceRequirement,
    candidates: Sequence[Candidate],
    declared: Sequence[str],
    now: dt.datetime,
) -> EvidenceResult:
    """Missing (nothing counts), failed (the newest that counts failed its verdict), stale
    (older than the requirement's maximum age at ``now``) or passed. The result keeps what
    it was judged on, for its ``explanation``."""
    counting = [c.evidence for c in candidates if counts(c, requirement, declared)]
    status, found = EvidenceStatus.PASSED, None
    if not counting:
        status = EvidenceStatus.MISSING
    else:
        found = max(counting, key=lambda e: (e.computed_at, e.report_id))
        if not found.passed:
            status = EvidenceStatus.FAILED
        elif requirement.max_age_days is not None and now - found.computed_at > dt.timedelta(
            days=requirement.max_age_days
        ):
            status = EvidenceStatus.STALE
    return EvidenceResult(
        requirement, status, found, candidates=tuple(candidates), declared=tuple(declared), now=now
    )


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

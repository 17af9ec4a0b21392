"""The evidence seam: how sign-off asks "what passing evidence of kind K exists for this
version", without depending on the app that produces the evidence.

A policy names requirements (``EvidenceRequirement``: a report kind, thresholds, a maximum
age). The reports app implements one ``EvidenceProvider`` per kind and registers it, typically
in its ``AppConfig.ready()``::

    from governance.approvals.evidence import register_provider
    register_provider("fairness", fairness_evidence)

A provider returns the newest ``Evidence`` of its kind computed for the version with the
policy's thresholds, or None. It decides which reports count (computed on the version's
registered validation or test dataset versions, over every sensitive attribute the model
declares, with no threshold overrides) and sets ``passed`` from the report's verdict. This
module judges freshness against the requirement's ``max_age_days`` at the moment it is asked.

With no provider registered for a kind, evidence of that kind is missing: the gate denies
(``evidence_missing:<kind>``) rather than assuming a pass.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from governance.approvals.workflow import EvidenceStatus

if TYPE_CHECKING:
    from registry.models import ModelVersion


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


class EvidenceProvider(Protocol):
    """Finds the newest evidence of one kind for ``version`` under ``requirement``."""

    def __call__(
        self, *, version: ModelVersion, requirement: EvidenceRequirement
    ) -> Evidence | None: ...


_providers: dict[str, EvidenceProvider] = {}


def register_provider(kind: str, provider: EvidenceProvider) -> None:
    """Make ``provider`` the source of evidence of ``kind`` (replacing any earlier one)."""
    _providers[kind] = provider


def unregister_provider(kind: str) -> None:
    _providers.pop(kind, None)


@contextmanager
def providers(mapping: Mapping[str, EvidenceProvider]) -> Iterator[None]:
    """Use ``mapping`` as the providers inside the block, then restore the previous ones."""
    saved = dict(_providers)
    _providers.update(mapping)
    try:
        yield
    finally:
        _providers.clear()
        _providers.update(saved)


@dataclass(frozen=True)
class EvidenceResult:
    """The judgement of one requirement: its status and the evidence it was made on."""

    requirement: EvidenceRequirement
    status: str
    evidence: Evidence | None


def judge(
    *, version: ModelVersion, requirement: EvidenceRequirement, now: dt.datetime
) -> EvidenceResult:
    """Missing (no provider, or nothing found), failed (verdict), stale (older than the
    requirement's maximum age at ``now``) or passed."""
    provider = _providers.get(requirement.kind)
    found = provider(version=version, requirement=requirement) if provider else None
    if found is None:
        return EvidenceResult(requirement, EvidenceStatus.MISSING, None)
    if not found.passed:
        return EvidenceResult(requirement, EvidenceStatus.FAILED, found)
    if requirement.max_age_days is not None and now - found.computed_at > dt.timedelta(
        days=requirement.max_age_days
    ):
        return EvidenceResult(requirement, EvidenceStatus.STALE, found)
    return EvidenceResult(requirement, EvidenceStatus.PASSED, found)

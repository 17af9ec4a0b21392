"""The seeded environments and sign-off policies (version 1 of each environment and tier).

Used by the data migration (with historical models) and by the tests to restore them after a
transactional test flushed the database.
"""

from __future__ import annotations

from typing import Any

ENVIRONMENTS = [
    ("dev", 1, "Development: no sign-off, recorded all the same."),
    ("test", 2, "Test: one reviewer other than the requester."),
    ("prod", 3, "Production: independent validation and officer approval."),
]
RISK_TIERS = ("low", "medium", "high", "critical")
APPROVAL_EXPIRY_DAYS = 30

_REVIEW = {
    "name": "review",
    "roles": ["data_scientist", "validator"],
    "required": 1,
    "independent": False,
    "meaning": "review",
}
_VALIDATION = {
    "name": "validation",
    "roles": ["validator"],
    "required": 1,
    "independent": True,
    "meaning": "review",
}
_RISK = {
    "name": "risk_approval",
    "roles": ["risk_officer"],
    "required": 1,
    "independent": False,
    "meaning": "approval",
}
_COMPLIANCE = {
    "name": "compliance_approval",
    "roles": ["compliance_officer"],
    "required": 1,
    "independent": False,
    "meaning": "responsibility",
}
# Fairness: every stable group's four-fifths impact ratio >= 0.8, equalized-odds difference
# within the bound (METRICS_SPEC.md); drift: no dataset drift, on a report under 30 days old.
FAIRNESS = {
    "kind": "fairness",
    "thresholds": {"min_impact_ratio": "0.8", "max_equalized_odds_difference": "0.1"},
    "max_age_days": None,
}
DRIFT = {"kind": "drift", "thresholds": {"dataset_drift": False}, "max_age_days": 30}


def policy_for(environment: str, risk_tier: str) -> dict[str, Any]:
    """Steps and evidence of the seeded policy of ``environment`` and ``risk_tier``."""
    if environment == "dev":
        return {"steps": [], "evidence": []}
    if environment == "test":
        return {"steps": [_REVIEW], "evidence": []}
    if risk_tier in ("low", "medium"):
        return {"steps": [_VALIDATION, _RISK], "evidence": []}
    return {
        "steps": [{**_VALIDATION, "required": 2}, _RISK, _COMPLIANCE],
        "evidence": [FAIRNESS, DRIFT],
    }


def seed(environment_model: Any, policy_model: Any, using: str = "default") -> int:
    """Create the missing environments and version-1 policies; the number of rows created."""
    created = 0
    for name, position, description in ENVIRONMENTS:
        # Not get_or_create: its savepoint would split the caller's unit of work, which the
        # tests' audit completeness guard (rightly) counts as an unaudited write.
        env = environment_model.objects.using(using).filter(name=name).first()
        if env is None:
            env = environment_model.objects.using(using).create(
                name=name, position=position, description=description
            )
            created += 1
        for tier in RISK_TIERS:
            if policy_model.objects.using(using).filter(environment=env, risk_tier=tier).exists():
                continue
            policy_model.objects.using(using).create(
                environment=env,
                risk_tier=tier,
                version=1,
                approval_expiry_days=APPROVAL_EXPIRY_DAYS,
                wait_seconds=0,
                note="Seeded default.",
                **policy_for(name, tier),
            )
            created += 1
    return created

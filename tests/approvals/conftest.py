"""Fixtures of the sign-off and deployment tests: a second validator, a high-risk model of
alice's team, the seeded defaults (restored after a transactional test flushed them), evidence
indexed as the reports app would, and CI reporting deployments."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from audit.services import AuditEvent, Subject, audit_append
from core.accounts.callers import Caller
from core.accounts.models import User
from core.actors import SYSTEM_ACTOR
from core.roles import Role
from governance.approvals import defaults, services
from governance.approvals.models import Deployment, Environment, EvidenceEntry, SignOffPolicy
from registry.models import ModelVersion, RegisteredModel
from tests import factories
from tests.conftest import PASSWORD, client_for, make_person

__all__ = ["PASSWORD", "client_for"]


@pytest.fixture(autouse=True)
def seeded_defaults(db: None) -> None:
    """The migration's environments and policies (a transactional test's flush removes them;
    putting them back is recorded like any other write)."""
    if Environment.objects.exists():
        return
    with transaction.atomic():
        created = defaults.seed(Environment, SignOffPolicy)
        audit_append(
            events=[
                AuditEvent(
                    action="deployment_defaults.restored",
                    actor=SYSTEM_ACTOR,
                    object=Subject(type="environment", id="*", label="defaults"),
                    data={"rows": created},
                )
            ]
        )


@pytest.fixture
def vera(roles: None) -> User:
    return make_person("vera", Role.VALIDATOR, full_name="Vera Valdez")


@pytest.fixture
def model(alice: User, team: Any) -> RegisteredModel:
    return factories.registered_model(
        alice, name="credit-score", risk_tier="high", team=team, sensitive_attributes=["age"]
    )


@pytest.fixture
def version(alice: User, model: RegisteredModel) -> ModelVersion:
    return factories.model_version(alice, model, artifact_digest=factories.digest("credit v1"))


@pytest.fixture
def ci(ci_account: User) -> Caller:
    return Caller(user=ci_account, auth="api_key")


def deploy(
    ci: Caller,
    version: ModelVersion,
    environment: str,
    *,
    event: str = "deployed",
    at: dt.datetime | None = None,
) -> Deployment:
    """CI reports an event (through the service: the gate is not what these tests are about)."""
    return services.deployment_report(
        caller=ci, version=version, environment=environment, event=event, occurred_at=at
    )


def approve_through(
    version: ModelVersion, environment: str, requester: User, *signers: User
) -> Any:
    """A request by ``requester`` signed (approve) by ``signers`` in order."""
    request = services.deployment_request_submit(
        caller=Caller(user=requester), version=version, environment=environment, reason="ship"
    )
    for signer in signers:
        services.signoff_sign(
            caller=Caller(user=signer),
            request=request,
            decision="approve",
            password=PASSWORD,
            acknowledge_evidence=True,
        )
    request.refresh_from_db()
    return request


class FixtureEvidence:
    """Evidence of one kind, passed or failed, made ``age`` ago, as the reports app indexes
    a finished report (the reports tests index real ones)."""

    def __init__(self, kind: str, *, passed: bool = True, age: dt.timedelta | None = None):
        self.kind, self.passed, self.age = kind, passed, age or dt.timedelta(days=1)

    def entry(self, version: ModelVersion) -> EvidenceEntry:
        report = f"{self.kind}-report-{version.pk}"
        return EvidenceEntry(
            report_id=report,
            model_version=version,
            kind=self.kind,
            sha256=hashlib.sha256(report.encode()).hexdigest(),
            computed_at=timezone.now() - self.age,
            passed=self.passed,
            eligible=True,
            thresholds={},
            covers=list(version.model.sensitive_attributes or []),
        )


@contextmanager
def provided_evidence(kinds: dict[str, FixtureEvidence]) -> Iterator[None]:
    """Inside the block, every version registered so far has the evidence of ``kinds``."""
    entries = EvidenceEntry.objects.bulk_create(
        [made.entry(version) for made in kinds.values() for version in ModelVersion.objects.all()]
    )
    try:
        yield
    finally:
        EvidenceEntry.objects.filter(pk__in=[entry.pk for entry in entries]).delete()


@pytest.fixture
def passing_evidence() -> Iterator[None]:
    with provided_evidence(
        {"fairness": FixtureEvidence("fairness"), "drift": FixtureEvidence("drift")}
    ):
        yield


@pytest.fixture
def people(request: pytest.FixtureRequest) -> SimpleNamespace:
    """The whole cast of a prod sign-off, by name."""
    names = ("alice", "bob", "victor", "vera", "rita", "carl")
    return SimpleNamespace(**{name: request.getfixturevalue(name) for name in names})

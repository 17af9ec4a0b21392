"""A ``deployed`` report counts as checked only if an allowing gate check for the same digest
backs it (named by ``check_id`` or the newest one) and the gate still allows when the report
arrives: a revocation, an expiry or a blocking finding since the check makes it unchecked,
an alert in its audit record and a ``deployment.unchecked`` webhook event."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditRecord
from core.accounts.callers import Caller
from governance.approvals import services
from governance.webhooks import services as webhook_services
from governance.webhooks.models import WebhookDelivery
from tests.apitools import last_seq, records_since
from tests.approvals.conftest import approve_through, deploy
from tests.approvals.test_scenario import gate
from tests.conftest import client_with_key

pytestmark = pytest.mark.django_db

UNCHECKED = "deployment.unchecked"


@pytest.fixture
def watcher(rita) -> Any:
    """A subscription to unchecked deployments (made through the service, audited)."""
    subscription, _ = webhook_services.subscription_create(
        caller=Caller(user=rita),
        url="http://127.0.0.1:9/hooks",
        events=[UNCHECKED, "deployment.deployed"],
        description="security monitoring",
    )
    return subscription


def revoke(setup: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    services.deployment_request_revoke(
        caller=Caller(user=setup.people.rita), request=setup.request, reason="model card is wrong"
    )


def expire(setup: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    later = timezone.now() + dt.timedelta(days=31)
    monkeypatch.setattr(timezone, "now", lambda: later)


def blocking_finding(setup: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    services.finding_open(
        caller=Caller(user=setup.people.victor),
        version=setup.version,
        title="Calibration drifts for applicants over 60",
        severity="high",
        owner=setup.people.alice,
    )


CHANGES: dict[str, Callable[[SimpleNamespace, pytest.MonkeyPatch], None]] = {
    "revoked": revoke,
    "expired": expire,
    "open_finding": blocking_finding,
}


@pytest.fixture
def allowed_check(people, version, ci, ci_key) -> SimpleNamespace:
    """Deployed to dev, approved for test, and an allowing gate check for test."""
    deploy(ci, version, "dev")
    request = approve_through(version, "test", people.alice, people.bob)
    answer = gate(ci_key, version, "test")
    assert answer["allowed"] is True
    return SimpleNamespace(
        people=people, version=version, ci_key=ci_key, request=request, check_id=answer["check_id"]
    )


def report(ci_key: str, version, check_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": version.model.name,
        "version": version.version,
        "environment": "test",
        "event": "deployed",
    }
    if check_id is not None:
        body["check_id"] = check_id
    response = client_with_key(ci_key).post("/api/v1/deployments/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def deployment_record(seq: int) -> dict[str, Any]:
    (record,) = [r for r in records_since(seq) if r.action == "deployment.deployed"]
    return json.loads(record.body)


def deliveries(event_type: str, environment: str = "test") -> list[WebhookDelivery]:
    """The deliveries of ``event_type`` about deployments to ``environment``."""
    return [
        delivery
        for delivery in WebhookDelivery.objects.filter(event_type=event_type)
        if json.loads(bytes(delivery.payload))["data"]["deployment"]["environment"] == environment
    ]


def unchecked_deliveries(environment: str = "test") -> list[WebhookDelivery]:
    return deliveries(UNCHECKED, environment)


@pytest.mark.usefixtures("watcher")
@pytest.mark.parametrize("named", [True, False], ids=["check_id", "fallback"])
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_deployment_after_the_gate_stopped_allowing_is_unchecked(
    allowed_check, monkeypatch, change, named
):
    setup = allowed_check
    CHANGES[change](setup, monkeypatch)
    reasons = gate(setup.ci_key, setup.version, "test")["reasons"]
    assert any(reason.startswith(change) for reason in reasons), reasons

    seq = last_seq()
    deployed = report(setup.ci_key, setup.version, setup.check_id if named else None)

    assert deployed["unchecked"] is True
    assert deployed["check_id"] == setup.check_id
    body = deployment_record(seq)
    assert body["data"]["alert"] == "deployed_without_allowing_gate_check"
    assert body["data"]["check_id"] == setup.check_id
    assert body["data"]["gate_reasons"] == reasons
    (delivery,) = unchecked_deliveries()
    payload = json.loads(bytes(delivery.payload))
    assert payload["data"]["deployment"]["unchecked"] is True
    assert payload["data"]["deployment"]["check_id"] == setup.check_id
    assert AuditRecord.objects.get(seq=payload["audit_seq"]).action == "deployment.deployed"


@pytest.mark.usefixtures("watcher")
@pytest.mark.parametrize("named", [True, False], ids=["check_id", "fallback"])
def test_a_deployment_the_gate_still_allows_is_checked(version, ci_key, allowed_check, named):
    check_id = allowed_check.check_id
    seq = last_seq()
    deployed = report(ci_key, version, check_id if named else None)

    assert deployed["unchecked"] is False
    assert deployed["check_id"] == check_id
    body = deployment_record(seq)
    assert body["data"]["alert"] is None
    assert body["data"]["gate_reasons"] == []
    assert unchecked_deliveries() == []
    assert len(deliveries("deployment.deployed")) == 1


@pytest.mark.usefixtures("watcher")
def test_a_newer_policy_version_leaves_an_approved_request_checked(
    admin_user, version, ci_key, allowed_check
):
    """A request keeps the policy version it started under, so the gate still allows after
    a newer version is published, and a deployment under it stays checked."""
    services.signoff_policy_publish(
        caller=Caller(user=admin_user),
        environment="test",
        risk_tier="high",
        steps=[{"name": "validation", "roles": ["validator"], "required": 2}],
    )
    assert gate(ci_key, version, "test")["allowed"] is True

    deployed = report(ci_key, version, allowed_check.check_id)

    assert deployed["unchecked"] is False
    assert unchecked_deliveries() == []


def test_a_deployment_with_no_allowing_check_is_alerted_to_webhooks(version, ci, watcher):
    seq = last_seq()
    deployment = deploy(ci, version, "dev")
    assert deployment.unchecked is True
    assert deployment_record(seq)["data"]["alert"] == "deployed_without_allowing_gate_check"
    (delivery,) = unchecked_deliveries("dev")
    assert json.loads(bytes(delivery.payload))["type"] == UNCHECKED

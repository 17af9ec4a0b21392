"""Deliveries: a real receiver on 127.0.0.1 gets signed events of real approvals actions;
retries back off on a fake clock; nothing is sent for a rolled-back change; the sweep sends
what the broker lost; redirects are not followed; targets are checked again at send time."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from audit.models import AuditRecord
from core.accounts.callers import Caller
from core.accounts.models import User
from core.events import domain_event
from governance.approvals import services as approvals
from governance.approvals.models import DeploymentRequest, Environment
from governance.webhooks import crypto, services, tasks
from governance.webhooks.models import DeliveryStatus, WebhookDelivery
from registry.models import ModelVersion
from tests.approvals.conftest import PASSWORD, deploy
from tests.webhooks.conftest import Receiver, subscribe

SUBMITTED = "deployment_request.submitted"
APPROVED = "deployment_request.approved"


def submit(user: User, version: ModelVersion, environment: str = "dev") -> DeploymentRequest:
    return approvals.deployment_request_submit(
        caller=Caller(user=user), version=version, environment=environment, reason="ship it"
    )


def verify(received: Any, secret: str) -> dict[str, Any]:
    """What a receiver does (docs/webhooks.md): recompute the signature, compare, parse."""
    timestamp = int(received.headers["Warden-Webhook-Timestamp"])
    expected = crypto.signature(secret, timestamp, received.body)
    assert received.headers["Warden-Webhook-Signature"] == expected
    body: dict[str, Any] = json.loads(received.body)
    return body


@pytest.mark.django_db(transaction=True)
def test_receiver_gets_signed_events_of_a_real_deployment_request(
    receiver: Receiver, rita: User, alice: User, version: ModelVersion
):
    subscription, secret = subscribe(rita, f"{receiver.url}/hooks/warden", SUBMITTED, APPROVED)

    before = int(timezone.now().timestamp())
    request = submit(alice, version)  # dev has no steps: submitted and approved at once

    assert [r.headers["Warden-Webhook-Event"] for r in receiver.requests] == [SUBMITTED, APPROVED]
    deliveries = {d.event_type: d for d in WebhookDelivery.objects.all()}
    record = AuditRecord.objects.get(action=SUBMITTED, object_id=str(request.pk))
    for received in receiver.requests:
        assert received.method == "POST" and received.path == "/hooks/warden"
        assert received.headers["Content-Type"] == "application/json"
        body = verify(received, secret)
        delivery = deliveries[body["type"]]
        assert received.headers["Warden-Webhook-Id"] == str(delivery.delivery_id)
        assert received.headers["Warden-Webhook-Event"] == body["type"]
        assert before <= int(received.headers["Warden-Webhook-Timestamp"]) <= before + 60
        assert received.body == bytes(delivery.payload)
        assert body["audit_seq"] == record.seq
        assert body["actor"] == {"type": "user", "name": "Alice Archer"}
        assert body["data"]["request"] == {
            "id": request.pk,
            "model": "credit-score",
            "version": version.version,
            "artifact_digest": version.artifact_digest,
            "environment": "dev",
            "state": "approved",
            "requester": "Alice Archer",
            "expires_at": body["data"]["request"]["expires_at"],
        }
        assert delivery.status == DeliveryStatus.SUCCEEDED
        assert delivery.attempts == 1 and delivery.last_status_code == 200
        assert delivery.response_excerpt == "x" * 500  # only an excerpt is kept
        assert delivery.subscription_id == subscription.pk


@pytest.mark.django_db
def test_a_signature_is_delivered_with_the_approval_it_completes(
    *,
    receiver: Receiver,
    rita: User,
    alice: User,
    victor: User,
    ci: Caller,
    version: ModelVersion,
    django_capture_on_commit_callbacks: Any,
):
    _, secret = subscribe(rita, receiver.url, "signoff.signed", APPROVED)
    deploy(ci, version, "dev")
    request = submit(alice, version, "test")
    with django_capture_on_commit_callbacks(execute=True):
        approvals.signoff_sign(
            caller=Caller(user=victor), request=request, decision="approve", password=PASSWORD
        )
    signed, approved = (verify(r, secret) for r in receiver.requests)
    assert signed["type"] == "signoff.signed" and approved["type"] == APPROVED
    assert signed["data"]["signoff"]["signer"] == "Victor Vance"
    assert signed["data"]["signoff"]["decision"] == "approve"
    assert signed["data"]["request"]["environment"] == "test"
    assert approved["data"]["request"]["state"] == "approved"
    record = AuditRecord.objects.filter(action="signoff.signed").latest("seq")
    assert signed["audit_seq"] == approved["audit_seq"] == record.seq
    # Only what was subscribed: the submission of the request went nowhere.
    assert not WebhookDelivery.objects.filter(event_type=SUBMITTED).exists()


@pytest.mark.django_db
def test_nothing_is_sent_for_a_rolled_back_change(
    receiver: Receiver,
    rita: User,
    alice: User,
    version: ModelVersion,
    django_capture_on_commit_callbacks: Any,
):
    subscribe(rita, receiver.url, SUBMITTED, APPROVED)

    def fail_after_publishing(**kwargs: Any) -> None:
        raise RuntimeError("the change fails after its event was published")

    domain_event.connect(fail_after_publishing, dispatch_uid="test.fail")
    try:
        with (
            django_capture_on_commit_callbacks(execute=True) as callbacks,
            pytest.raises(RuntimeError),
        ):
            submit(alice, version)
    finally:
        domain_event.disconnect(dispatch_uid="test.fail")
    assert callbacks == []
    assert not DeploymentRequest.objects.exists()
    assert not WebhookDelivery.objects.exists()
    assert receiver.requests == []


@pytest.mark.django_db
def test_a_failed_attempt_is_retried_with_backoff_and_the_same_delivery_id(
    receiver: Receiver,
    rita: User,
    alice: User,
    version: ModelVersion,
    django_capture_on_commit_callbacks: Any,
):
    _, secret = subscribe(rita, receiver.url, SUBMITTED)
    receiver.statuses = [500, 200]
    with django_capture_on_commit_callbacks(execute=True):
        submit(alice, version)

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert (delivery.attempts, delivery.last_status_code) == (1, 500)
    assert delivery.last_error.startswith("HTTP 500")
    assert delivery.next_attempt_at == delivery.last_attempt_at + dt.timedelta(seconds=10)

    # Not due yet: nothing is sent (the task the first attempt enqueued was such a no-op).
    early = delivery.next_attempt_at - dt.timedelta(seconds=1)
    assert services.delivery_attempt(delivery_id=delivery.delivery_id, now=early) is None
    assert len(receiver.requests) == 1

    done = services.delivery_attempt(delivery_id=delivery.delivery_id, now=delivery.next_attempt_at)
    assert done is not None and done.status == DeliveryStatus.SUCCEEDED
    assert (done.attempts, done.last_status_code, done.last_error) == (2, 200, "")
    first, second = receiver.requests
    assert first.headers["Warden-Webhook-Id"] == second.headers["Warden-Webhook-Id"]
    assert first.body == second.body
    assert int(second.headers["Warden-Webhook-Timestamp"]) == int(
        delivery.next_attempt_at.timestamp()
    )
    verify(second, secret)
    # Idempotent: a duplicate task for a succeeded delivery sends nothing.
    tasks.deliver(str(delivery.delivery_id))
    assert len(receiver.requests) == 2


@pytest.mark.django_db
def test_backoff_follows_the_configured_delays_then_the_delivery_fails(
    receiver: Receiver, rita: User, alice: User, version: ModelVersion
):
    subscribe(rita, receiver.url, SUBMITTED)
    submit(alice, version)  # committed in the test transaction: no task ran (a lost broker)
    delivery = WebhookDelivery.objects.get()
    receiver.statuses = [503] * 10
    now = timezone.now()
    waits = []
    while True:
        attempted = services.delivery_attempt(delivery_id=delivery.delivery_id, now=now)
        assert attempted is not None
        if attempted.status != DeliveryStatus.PENDING:
            break
        assert attempted.next_attempt_at is not None
        waits.append(int((attempted.next_attempt_at - now).total_seconds()))
        now = attempted.next_attempt_at
    assert waits == [10, 30, 120, 600, 1800, 7200]
    assert attempted.status == DeliveryStatus.FAILED and attempted.attempts == 7
    assert len(receiver.requests) == 7
    assert services.delivery_attempt(delivery_id=delivery.delivery_id, now=now) is None


@pytest.mark.django_db
def test_a_leased_delivery_is_not_sent_twice_at_once(
    receiver: Receiver, rita: User, alice: User, version: ModelVersion
):
    subscribe(rita, receiver.url, SUBMITTED)
    submit(alice, version)
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        leased_until=timezone.now() + dt.timedelta(seconds=30)
    )
    assert services.delivery_attempt(delivery_id=delivery.delivery_id) is None
    assert receiver.requests == []


@pytest.mark.django_db
def test_the_sweep_sends_deliveries_the_broker_never_got(
    receiver: Receiver, rita: User, alice: User, version: ModelVersion
):
    subscribe(rita, receiver.url, SUBMITTED, APPROVED)
    submit(alice, version)  # on_commit callbacks are not run inside the test transaction
    assert receiver.requests == []
    assert tasks.sweep() == 2
    assert sorted(r.headers["Warden-Webhook-Event"] for r in receiver.requests) == [
        APPROVED,
        SUBMITTED,
    ]
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}
    assert tasks.sweep() == 0


@pytest.mark.django_db
def test_redirects_are_not_followed(
    receiver: Receiver, rita: User, alice: User, version: ModelVersion
):
    subscribe(rita, receiver.url, SUBMITTED)
    submit(alice, version)
    receiver.statuses = [302]
    delivery = services.delivery_attempt(delivery_id=WebhookDelivery.objects.get().delivery_id)
    assert delivery is not None and delivery.last_status_code == 302
    assert delivery.status == DeliveryStatus.PENDING
    assert [r.path for r in receiver.requests] == ["/"]


@pytest.mark.django_db
def test_the_target_is_checked_again_before_each_attempt(
    receiver: Receiver, rita: User, alice: User, version: ModelVersion
):
    subscribe(rita, receiver.url, SUBMITTED)
    submit(alice, version)
    # 127.0.0.1 is no longer allowed (as if the host now resolved to an internal address).
    with override_settings(WEBHOOK_ALLOWED_HOSTS=[]):
        delivery = services.delivery_attempt(delivery_id=WebhookDelivery.objects.get().delivery_id)
    assert delivery is not None and delivery.last_status_code is None
    assert delivery.last_error.startswith("target refused: 127.0.0.1")
    assert receiver.requests == []


@pytest.mark.django_db
def test_an_unreachable_receiver_is_a_failed_attempt(
    rita: User, alice: User, version: ModelVersion
):
    with Receiver() as gone:
        url = gone.url
    subscribe(rita, url, SUBMITTED)
    submit(alice, version)
    delivery = services.delivery_attempt(delivery_id=WebhookDelivery.objects.get().delivery_id)
    assert delivery is not None and delivery.status == DeliveryStatus.PENDING
    assert "Connection" in delivery.last_error or "refused" in delivery.last_error


@pytest.mark.django_db
def test_a_deactivated_subscription_gets_nothing(
    receiver: Receiver, rita: User, alice: User, version: ModelVersion
):
    subscription, _ = subscribe(rita, receiver.url, SUBMITTED, "deployment_request.revoked")
    submit(alice, version)
    services.subscription_deactivate(caller=Caller(user=rita), subscription=subscription)
    delivery = services.delivery_attempt(delivery_id=WebhookDelivery.objects.get().delivery_id)
    assert delivery is not None and delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error == "subscription inactive"
    assert receiver.requests == []
    # New events are not queued for it at all.
    approvals.deployment_request_revoke(
        caller=Caller(user=rita), request=DeploymentRequest.objects.get(), reason="risk"
    )
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.django_db
def test_a_denied_gate_check_is_an_event_and_an_allowed_one_is_not(
    receiver: Receiver, rita: User, alice: User, ci: Caller, version: ModelVersion
):
    _, secret = subscribe(rita, receiver.url, "gate.denied")
    prod = Environment.objects.get(name="prod")
    approvals.gate_check(
        caller=ci, version=version, environment=prod, digest=version.artifact_digest
    )
    delivery = WebhookDelivery.objects.get()
    assert delivery.event_type == "gate.denied"
    tasks.sweep()
    body = verify(receiver.requests[0], secret)
    assert body["data"]["check"]["allowed"] is False
    assert "not_requested" in body["data"]["check"]["reasons"]
    assert body["audit_seq"] == AuditRecord.objects.get(action="gate.checked").seq


@pytest.mark.django_db
def test_a_secret_that_no_longer_decrypts_is_a_failed_attempt_not_a_crash(
    receiver: Receiver, rita: User, alice: User, version: ModelVersion
):
    subscribe(rita, receiver.url, SUBMITTED)
    submit(alice, version)
    with override_settings(WEBHOOK_SECRET_KEY="a-key-that-did-not-encrypt-it"):
        delivery = services.delivery_attempt(delivery_id=WebhookDelivery.objects.get().delivery_id)
    assert delivery is not None and delivery.status == DeliveryStatus.PENDING
    assert "cannot be decrypted" in delivery.last_error
    assert receiver.requests == []

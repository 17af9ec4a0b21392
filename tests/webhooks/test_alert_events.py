"""Alerts that security monitoring keys on go out as webhook events beside their audit
record: the re-authentication failure that locks signing (``signoff.signing_locked``)."""

from __future__ import annotations

import json

import pytest

from audit.models import AuditRecord
from core.accounts.callers import Caller
from governance.approvals import services
from governance.approvals.services import ReauthenticationFailed
from governance.webhooks.models import WebhookDelivery
from tests.webhooks.conftest import subscribe

pytestmark = pytest.mark.django_db


def test_the_failure_that_locks_signing_is_sent_once(alice, victor, rita, version):
    subscribe(rita, "http://127.0.0.1:9/alerts", "signoff.signing_locked")
    request = services.deployment_request_submit(
        caller=Caller(user=alice), version=version, environment="dev", reason="ship"
    )
    for attempt in range(1, 6):
        with pytest.raises(ReauthenticationFailed):
            services.signoff_sign(
                caller=Caller(user=victor), request=request, decision="approve", password="guess"
            )
        sent = WebhookDelivery.objects.filter(event_type="signoff.signing_locked")
        assert sent.count() == (1 if attempt == 5 else 0)

    (delivery,) = WebhookDelivery.objects.filter(event_type="signoff.signing_locked")
    payload = json.loads(bytes(delivery.payload))
    record = AuditRecord.objects.get(seq=payload["audit_seq"])
    assert record.action == "signoff.reauthentication_failed"
    assert json.loads(record.body)["data"]["alert"] == "signing_locked"
    assert payload["actor"]["name"] == victor.printed_name
    assert payload["data"]["alert"]["code"] == "reauthentication_failed"

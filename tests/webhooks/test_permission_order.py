"""Webhooks judge who may act before what they sent: a person who does not manage webhooks is
refused with 403 whatever the body, while the same body from a manager is a 400."""

from __future__ import annotations

import pytest

from governance.webhooks.models import WebhookSubscription
from tests.apitools import assert_error
from tests.conftest import client_for
from tests.webhooks.conftest import subscribe

pytestmark = pytest.mark.django_db

BAD = {"url": "https://hooks.example.org/x", "events": ["no.such_event"]}


def test_a_person_who_does_not_manage_webhooks_gets_403_not_400_for_a_bad_body(alice, rita):
    assert_error(client_for(alice).post("/api/v1/webhooks/", BAD, format="json"), 403)
    judged = client_for(rita).post("/api/v1/webhooks/", BAD, format="json")
    assert_error(judged, 400, field="events")
    assert not WebhookSubscription.objects.exists()


def test_a_change_by_a_non_manager_is_403_before_its_body_is_judged(alice, rita):
    subscription, _ = subscribe(rita, "https://hooks.example.org/a", "gate.denied")
    path = f"/api/v1/webhooks/{subscription.pk}"
    assert_error(client_for(alice).patch(path, {"events": []}, format="json"), 403)
    assert_error(client_for(rita).patch(path, {"events": []}, format="json"), 400, field="events")

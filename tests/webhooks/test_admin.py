"""The admin shows subscriptions and deliveries read-only; its actions call the services."""

from __future__ import annotations

import pytest
from django.contrib.admin import helpers
from django.test import Client

from core.accounts.models import User
from governance.webhooks import crypto
from governance.webhooks.models import WebhookSubscription
from tests.webhooks.conftest import subscribe

pytestmark = pytest.mark.django_db

SUBSCRIPTIONS = "/admin/webhooks/webhooksubscription/"
DELIVERIES = "/admin/webhooks/webhookdelivery/"


@pytest.fixture
def admin_client_for(admin_user: User) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def test_subscriptions_and_deliveries_are_listed_but_not_editable(
    admin_client_for: Client, admin_user: User
):
    subscription, secret = subscribe(admin_user, "https://hooks.example.com/a", "gate.denied")
    listing = admin_client_for.get(SUBSCRIPTIONS)
    assert listing.status_code == 200
    assert "hooks.example.com" in listing.content.decode()
    detail = admin_client_for.get(f"{SUBSCRIPTIONS}{subscription.pk}/change/")
    assert detail.status_code == 200 and secret not in detail.content.decode()
    assert subscription.secret_encrypted not in detail.content.decode()
    assert admin_client_for.get(f"{SUBSCRIPTIONS}add/").status_code == 403
    assert admin_client_for.get(DELIVERIES).status_code == 200
    assert admin_client_for.get(f"{DELIVERIES}add/").status_code == 403


def test_rotating_in_the_admin_shows_the_new_secret_once(
    admin_client_for: Client, admin_user: User
):
    subscription, old = subscribe(admin_user, "https://hooks.example.com/a", "gate.denied")
    response = admin_client_for.post(
        SUBSCRIPTIONS,
        {"action": "rotate_secret", helpers.ACTION_CHECKBOX_NAME: [subscription.pk]},
        follow=True,
    )
    assert response.status_code == 200
    stored = WebhookSubscription.objects.get(pk=subscription.pk)
    new = crypto.decrypt_secret(stored.secret_encrypted)
    assert new != old and new in response.content.decode()
    assert new not in admin_client_for.get(SUBSCRIPTIONS).content.decode()


def test_deactivating_in_the_admin_goes_through_the_service(
    admin_client_for: Client, admin_user: User
):
    subscription, _ = subscribe(admin_user, "https://hooks.example.com/a", "gate.denied")
    admin_client_for.post(
        SUBSCRIPTIONS,
        {"action": "deactivate", helpers.ACTION_CHECKBOX_NAME: [subscription.pk]},
    )
    assert WebhookSubscription.objects.get(pk=subscription.pk).active is False

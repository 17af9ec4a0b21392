"""The webhooks API: who may use it, validation, the secret shown once and never recorded,
the SSRF refusals, delivery history and redelivery. Every write leaves its audit record."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from audit.models import AuditRecord
from core.accounts.models import User
from governance.webhooks import crypto
from governance.webhooks.models import WebhookDelivery, WebhookSubscription
from tests.conftest import client_for, client_with_key
from tests.webhooks.conftest import Receiver, subscribe

pytestmark = pytest.mark.django_db

LIST = "/api/v1/webhooks/"
EVENTS = ["deployment_request.approved", "signoff.signed"]
URL = "https://hooks.example.com/warden"


def create(client: APIClient, **overrides: Any) -> Any:
    return client.post(LIST, {"url": URL, "events": EVENTS, **overrides}, format="json")


def records(action: str) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in AuditRecord.objects.filter(action=action).order_by("seq")]


def test_anonymous_callers_get_401(api: APIClient):
    response = create(api)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert api.get(LIST).status_code == 401


@pytest.mark.parametrize("person", ["alice", "victor", "audrey"])
def test_people_without_the_role_get_403(request: pytest.FixtureRequest, person: str):
    client = client_for(request.getfixturevalue(person))
    assert client.get(LIST).status_code == 403
    response = create(client)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not WebhookSubscription.objects.exists()


def test_api_keys_may_not_manage_webhooks(ci_key: str):
    client = client_with_key(ci_key)
    assert client.get(LIST).status_code == 403
    assert create(client).status_code == 403


@pytest.mark.parametrize("officer", ["rita", "carl", "admin_user"])
def test_officers_and_admins_create_and_the_secret_is_shown_once(
    request: pytest.FixtureRequest, officer: str
):
    user: User = request.getfixturevalue(officer)
    client = client_for(user)
    response = create(client, description="pager")
    assert response.status_code == 201, response.json()
    body = response.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert body["events"] == EVENTS and body["active"] is True and body["owner"] == user.username
    stored = WebhookSubscription.objects.get(pk=body["id"])
    assert secret not in stored.secret_encrypted
    assert crypto.decrypt_secret(stored.secret_encrypted) == secret
    # Never again: not in the detail, not in the list.
    for answer in (client.get(f"{LIST}{body['id']}"), client.get(LIST)):
        assert answer.status_code == 200
        assert secret not in answer.content.decode() and "secret" not in answer.json()
    (record,) = records("webhook_subscription.created")
    assert record["data"]["url"] == URL and record["data"]["events"] == EVENTS
    assert record["data"]["owner"]["id"] == str(user.pk)
    assert record["actor"]["id"] == str(user.pk)


def test_secrets_never_reach_the_audit_log_or_later_answers(rita: User):
    client = client_for(rita)
    created = create(client).json()
    rotated = client.post(f"{LIST}{created['id']}/rotate-secret")
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret != created["secret"]
    stored = WebhookSubscription.objects.get(pk=created["id"])
    assert crypto.decrypt_secret(stored.secret_encrypted) == new_secret
    (record,) = records("webhook_subscription.secret_rotated")
    assert record["object"]["id"] == str(created["id"])
    everything = "".join(AuditRecord.objects.values_list("body", flat=True))
    for secret in (created["secret"], new_secret, stored.secret_encrypted):
        assert secret not in everything
    detail = client.get(f"{LIST}{created['id']}").content.decode()
    assert new_secret not in detail and created["secret"] not in detail


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example.com/x", "https://"),
        ("hooks.example.com/x", "https://"),
        ("https://user:pass@hooks.example.com/x", "credentials"),
        ("https://token@hooks.example.com/x", "credentials"),
        ("https:///nohost", "host"),
        ("https://hooks.example.com/x#frag", "fragment"),
        ("https://hooks.example.com:99999/x", "port"),
        ("https://hooks.example.com/a b", "spaces"),
    ],
)
def test_bad_urls_are_400(rita: User, url: str, message: str):
    response = create(client_for(rita), url=url)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "invalid" and "url" in error["fields"]
    assert message in error["message"]


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hook",
        "http://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://127.0.0.2/hook",
        "http://localhost/hook",
        "http://metadata.localhost/hook",
    ],
)
def test_private_loopback_and_reserved_targets_are_refused(rita: User, url: str):
    response = create(client_for(rita), url=url)
    assert response.status_code == 400, response.json()
    assert "url" in response.json()["error"]["fields"]
    assert not WebhookSubscription.objects.exists()
    assert records("webhook_subscription.created") == []


def test_allow_listed_hosts_and_networks_are_accepted(rita: User):
    client = client_for(rita)
    assert create(client, url="http://127.0.0.1:9/hook").status_code == 201
    with override_settings(WEBHOOK_ALLOWED_HOSTS=["10.20.0.0/16", "hooks.internal"]):
        assert create(client, url="http://10.20.3.4/hook").status_code == 201
        assert create(client, url="http://hooks.internal/hook").status_code == 201
        assert create(client, url="http://10.21.0.1/hook").status_code == 400


def test_production_requires_https_except_for_allowed_hosts(rita: User):
    client = client_for(rita)
    with override_settings(WEBHOOK_REQUIRE_HTTPS=True):
        response = create(client, url="http://1.1.1.1/hook")
        assert response.status_code == 400
        assert "https" in response.json()["error"]["message"]
        assert create(client, url="https://1.1.1.1/hook").status_code == 201
        assert create(client, url="http://127.0.0.1:9/hook").status_code == 201


@pytest.mark.parametrize(
    ("events", "field_message"),
    [
        (["deployment_request.approved", "model.exploded"], "not a valid choice"),
        ([], "may not be empty"),
        ("signoff.signed", "list"),
    ],
)
def test_unknown_or_missing_events_are_400(rita: User, events: Any, field_message: str):
    response = create(client_for(rita), events=events)
    assert response.status_code == 400
    error = response.json()["error"]
    events_errors = {k: v for k, v in error["fields"].items() if k.split(".")[0] == "events"}
    assert field_message in json.dumps(events_errors)


def test_update_changes_events_url_and_active_and_is_recorded(rita: User, carl: User):
    created = create(client_for(rita)).json()
    client = client_for(carl)
    response = client.patch(
        f"{LIST}{created['id']}",
        {
            "events": ["gate.denied"],
            "url": "https://other.example.com/h?token=tok-Qz7-never-logged",
            "active": False,
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["events"] == ["gate.denied"] and body["active"] is False
    assert "secret" not in body
    (record,) = records("webhook_subscription.updated")
    changes = record["data"]["changes"]
    assert changes["active"] == {"from": True, "to": False}
    assert changes["events"]["to"] == ["gate.denied"]
    # Query values may be tokens: the record names the parameter, not its value.
    assert changes["url"]["to"] == "https://other.example.com/h?token=%5Bredacted%5D"
    assert "tok-Qz7-never-logged" not in json.dumps(record)
    bad = client.patch(f"{LIST}{created['id']}", {"events": ["nope"]}, format="json")
    assert bad.status_code == 400
    ssrf = client.patch(f"{LIST}{created['id']}", {"url": "http://10.0.0.1/"}, format="json")
    assert ssrf.status_code == 400


def test_unknown_subscriptions_are_404(rita: User):
    client = client_for(rita)
    assert client.get(f"{LIST}999").status_code == 404
    assert client.patch(f"{LIST}999", {"active": False}, format="json").status_code == 404
    assert client.post(f"{LIST}999/rotate-secret").status_code == 404
    assert client.get(f"{LIST}999/deliveries").status_code == 404


def test_other_roles_cannot_rotate_or_update(rita: User, alice: User):
    created = create(client_for(rita)).json()
    client = client_for(alice)
    assert client.post(f"{LIST}{created['id']}/rotate-secret").status_code == 403
    assert client.patch(f"{LIST}{created['id']}", {"active": False}).status_code == 403
    assert client.get(f"{LIST}{created['id']}/deliveries").status_code == 403


def test_delivery_history_is_paginated_and_redelivery_sends_the_same_body(
    receiver: Receiver, rita: User, alice: User, django_capture_on_commit_callbacks: Any
):
    from tests import factories
    from tests.webhooks.test_delivery import submit, verify

    subscription, secret = subscribe(rita, receiver.url, "deployment_request.submitted")
    model = factories.registered_model(alice, name="churn", risk_tier="low")
    for n in range(3):
        version = factories.model_version(alice, model, artifact_digest=factories.digest(f"c{n}"))
        with django_capture_on_commit_callbacks(execute=True):
            submit(alice, version)
    client = client_for(rita)
    page = client.get(f"{LIST}{subscription.pk}/deliveries", {"page_size": 2})
    assert page.status_code == 200
    assert page.json()["count"] == 3 and len(page.json()["results"]) == 2
    assert page.json()["next"]
    latest = page.json()["results"][0]
    assert latest["status"] == "succeeded" and latest["attempts"] == 1
    assert latest["payload"]["type"] == "deployment_request.submitted"
    assert "secret" not in json.dumps(page.json())
    failed = client.get(f"{LIST}{subscription.pk}/deliveries", {"status": "failed"})
    assert failed.json()["count"] == 0

    url = f"{LIST}{subscription.pk}/deliveries/{latest['delivery_id']}/redeliver"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url)
    assert response.status_code == 202, response.json()
    again = response.json()
    assert again["delivery_id"] != latest["delivery_id"]
    assert again["event_id"] == latest["event_id"]
    assert again["redelivery_of"] == latest["delivery_id"]
    original = WebhookDelivery.objects.get(delivery_id=latest["delivery_id"])
    resent = receiver.requests[-1]
    assert resent.body == bytes(original.payload)
    assert resent.headers["Warden-Webhook-Id"] == again["delivery_id"]
    verify(resent, secret)
    (record,) = records("webhook_delivery.redelivered")
    assert record["data"]["redelivery_of"] == latest["delivery_id"]
    # Out of this subscription's history: 404.
    other, _ = subscribe(rita, receiver.url, "gate.denied")
    assert (
        client.post(f"{LIST}{other.pk}/deliveries/{latest['delivery_id']}/redeliver").status_code
        == 404
    )
    assert client_for(alice).post(url).status_code == 403

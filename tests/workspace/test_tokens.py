"""The API tokens page: a person makes a token (its secret shown once), lists their own,
revokes their own; another person's token is neither listed nor revocable (404). The rules
are the service's: scopes from ``ApiKeyScope``, expiry within ``API_TOKEN_MAX_AGE_DAYS``."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditRecord
from core.accounts.callers import Caller
from core.accounts.models import ApiKey, User
from governance.accounts.services import api_key_create
from tests import factories
from tests.conftest import client_with_key

pytestmark = pytest.mark.django_db

URL = "/tokens/"


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def secret_of(html: str) -> str:
    (secret,) = re.findall(r'id="token-secret-value">([^<]+)<', html)
    return secret


def make(client: Client, **fields: object) -> Any:
    data = {"name": "notebook", "scopes": ["registry:read"], "expires_in_days": "30", **fields}
    return client.post(URL, data)


def test_the_page_is_for_signed_in_people():
    response = Client().get(URL)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert reverse("workspace:tokens") == URL


def test_a_new_token_is_shown_once_and_listed(alice):
    client = signed_in(alice)
    response = make(client, scopes=["registry:read", "reports:write"])
    assert response.status_code == 200
    html = response.content.decode()
    secret = secret_of(html)
    assert secret.startswith("wdn_") and "shown only this once" in html
    assert "no-store" in response["Cache-Control"]
    key = ApiKey.objects.get(user=alice)
    assert key.name == "notebook" and key.scopes == ["registry:read", "reports:write"]
    expected = timezone.now() + dt.timedelta(days=30)
    assert key.expires_at is not None
    assert abs((key.expires_at - expected).total_seconds()) < 60
    again = client.get(URL).content.decode()
    assert secret not in again and "token-secret-value" not in again
    assert "notebook" in again and key.prefix in again and "reports:write" in again
    assert "1 token<" in again and "just now" in again and "in 30 days" in again
    record = AuditRecord.objects.get(action="api_key.created")
    body = json.loads(record.body)
    assert body["actor"]["id"] == str(alice.pk) and body["data"]["scopes"] == key.scopes
    assert secret not in record.body


def test_the_created_token_calls_the_api_with_its_scopes_only(alice, team):
    model = factories.registered_model(alice, name="churn", team=team)
    secret = secret_of(make(signed_in(alice), scopes=["registry:read"]).content.decode())
    client = client_with_key(secret)
    listed = client.get("/api/v1/models/")
    assert listed.status_code == 200
    assert model.name in json.dumps(listed.json())
    refused = client.post("/api/v1/reports/", {"kind": "lineage"}, format="json")
    assert refused.status_code == 403
    assert "reports:write" in json.dumps(refused.json())


def test_other_peoples_tokens_are_not_listed_and_not_revocable(alice, bob):
    _, bobs = api_key_create(
        caller=Caller(user=bob), user=bob, name="bob's script", scopes=["gate:read"]
    )
    client = signed_in(alice)
    assert "bob&#x27;s script" not in client.get(URL).content.decode()
    response = client.post(reverse("workspace:token_revoke", args=[bobs.pk]))
    assert response.status_code == 404
    bobs.refresh_from_db()
    assert bobs.revoked_at is None
    assert not AuditRecord.objects.filter(action="api_key.revoked").exists()


def test_revoking_ones_own_token_stops_it(alice):
    client = signed_in(alice)
    secret = secret_of(make(client).content.decode())
    key = ApiKey.objects.get(user=alice)
    assert client.get(URL).content.decode().count("Revoke<") == 1
    response = client.post(reverse("workspace:token_revoke", args=[key.pk]), follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "is revoked; it no longer works" in html and ">Revoked<" in html
    assert "Revoke<" not in html  # no button for a revoked token
    key.refresh_from_db()
    assert key.revoked_at is not None
    record = AuditRecord.objects.get(action="api_key.revoked")
    assert json.loads(record.body)["actor"]["id"] == str(alice.pk)
    assert client_with_key(secret).get("/api/v1/models/").status_code == 401
    again = client.post(reverse("workspace:token_revoke", args=[key.pk]), follow=True)
    assert "already revoked" in again.content.decode()


def test_revoking_needs_a_post_with_the_csrf_token(alice):
    _, key = api_key_create(caller=Caller(user=alice), user=alice, name="n", scopes=["gate:read"])
    client = signed_in(alice)
    assert client.get(reverse("workspace:token_revoke", args=[key.pk])).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post(reverse("workspace:token_revoke", args=[key.pk])).status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"expires_in_days": "91"}, "A personal token expires within 90 days."),
        ({"expires_in_days": "0"}, "A token lives at least 1 day."),
        ({"expires_in_days": "soon"}, "Enter a whole number."),
        ({"scopes": []}, "Choose at least one scope."),
        ({"scopes": ["everything"]}, "Select a valid choice. everything is not one of"),
        ({"name": ""}, "This field is required."),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(alice, fields, message):
    response = make(signed_in(alice), **fields)
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert "There is a problem" in html and "token-secret-value" not in html
    assert not ApiKey.objects.filter(user=alice).exists()


def test_the_longest_expiry_follows_the_setting(alice, settings):
    settings.API_TOKEN_MAX_AGE_DAYS = 7
    client = signed_in(alice)
    page = client.get(URL).content.decode()
    assert 'max="7"' in page and "From 1 to 7 days" in page
    assert make(client, expires_in_days="8").status_code == 400
    assert make(client, expires_in_days="7").status_code == 200

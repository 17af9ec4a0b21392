"""Service accounts and API keys: shown once, stored hashed, never in a record."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit.models import AuditRecord
from core.accounts.callers import Caller
from core.accounts.models import ApiKey, User
from core.errors import Forbidden, InvalidInput
from governance.accounts.services import api_key_create, api_key_revoke, user_flags_change
from tests.apitools import assert_no_record_since, last_seq
from tests.conftest import client_with_key

pytestmark = pytest.mark.django_db


def test_create_service_account_prints_the_key_alone_once(admin_user):
    out = io.StringIO()
    call_command(
        "create_service_account", "ci-fraud", "--scopes", "gate:read,registry:write", stdout=out
    )
    key = out.getvalue().strip()
    assert key.startswith("wdn_") and "\n" not in key
    stored = ApiKey.objects.get(user__username="ci-fraud")
    assert stored.hashed_key == hashlib.sha256(key.encode()).hexdigest()
    assert stored.scopes == ["gate:read", "registry:write"]
    account = User.objects.get(username="ci-fraud")
    assert account.is_service_account and not account.has_usable_password()
    actions = [r.action for r in AuditRecord.objects.order_by("seq")]
    assert actions[-2:] == ["service_account.created", "api_key.created"]
    for record in AuditRecord.objects.all():
        assert key not in record.body
        assert stored.hashed_key not in record.body


def test_create_service_account_refuses_unknown_scope(admin_user):
    mark = last_seq()
    with pytest.raises(CommandError, match="unknown scope"):
        call_command("create_service_account", "ci-x", "--scopes", "root:all", stdout=io.StringIO())
    assert not User.objects.filter(username="ci-x").exists()
    assert_no_record_since(mark)


def test_people_cannot_make_keys_for_others(alice, bob):
    with pytest.raises(Forbidden):
        api_key_create(caller=Caller(user=alice), user=bob, name="x", scopes=["gate:read"])


def test_personal_token_for_oneself(alice):
    key, row = api_key_create(
        caller=Caller(user=alice), user=alice, name="laptop", scopes=["registry:write"]
    )
    assert row.user == alice and key.startswith("wdn_")
    with pytest.raises(InvalidInput):
        api_key_create(caller=Caller(user=alice), user=alice, name="x", scopes=[])


def test_bad_and_revoked_keys_are_401_with_bearer_challenge(ci_key, admin_user):
    url = "/api/v1/models/"
    assert client_with_key(ci_key).get(url).status_code == 200
    bad = client_with_key("wdn_00000000_nope").get(url)
    assert bad.status_code == 401
    assert bad["WWW-Authenticate"].startswith("Bearer")
    row = ApiKey.objects.get(hashed_key=hashlib.sha256(ci_key.encode()).hexdigest())
    api_key_revoke(caller=Caller(user=admin_user), key=row, reason="rotated")
    assert client_with_key(ci_key).get(url).status_code == 401
    assert AuditRecord.objects.order_by("-seq").first().action == "api_key.revoked"


def test_deactivated_service_account_key_is_401(ci_key, ci_account, admin_user):
    user_flags_change(
        caller=Caller(user=admin_user), user=ci_account, is_active=False, reason="pipeline gone"
    )
    assert client_with_key(ci_key).get("/api/v1/models/").status_code == 401


def test_a_personal_token_expires_by_default_after_the_longest_allowed_age(alice, settings):
    settings.API_TOKEN_MAX_AGE_DAYS = 90
    before = timezone.now()
    _, row = api_key_create(
        caller=Caller(user=alice), user=alice, name="laptop", scopes=["registry:read"]
    )
    assert row.expires_at is not None
    assert (
        before + dt.timedelta(days=90) <= row.expires_at <= timezone.now() + dt.timedelta(days=90)
    )
    record = AuditRecord.objects.order_by("-seq").first()
    assert record.action == "api_key.created"
    assert json.loads(record.body)["data"]["expires_at"] == row.expires_at.isoformat().replace(
        "+00:00", "Z"
    )


def test_a_personal_token_cannot_outlive_the_cap(alice, settings):
    settings.API_TOKEN_MAX_AGE_DAYS = 30
    too_late = timezone.now() + dt.timedelta(days=31)
    with pytest.raises(InvalidInput, match="30 days") as exc:
        api_key_create(
            caller=Caller(user=alice),
            user=alice,
            name="forever",
            scopes=["registry:read"],
            expires_at=too_late,
        )
    assert "expires_at" in exc.value.fields
    assert not ApiKey.objects.filter(user=alice).exists()
    assert not AuditRecord.objects.filter(action="api_key.created").exists()
    soon = timezone.now() + dt.timedelta(days=7)
    _, row = api_key_create(
        caller=Caller(user=alice), user=alice, name="week", scopes=["gate:read"], expires_at=soon
    )
    assert row.expires_at == soon


def test_an_administrator_cannot_give_a_person_a_token_without_expiry(alice, admin_user, settings):
    settings.API_TOKEN_MAX_AGE_DAYS = 90
    with pytest.raises(InvalidInput, match="90 days"):
        api_key_create(
            caller=Caller(user=admin_user),
            user=alice,
            name="for alice",
            scopes=["gate:read"],
            expires_at=timezone.now() + dt.timedelta(days=365),
        )


def test_a_token_cannot_be_born_expired(alice):
    with pytest.raises(InvalidInput) as exc:
        api_key_create(
            caller=Caller(user=alice),
            user=alice,
            name="late",
            scopes=["gate:read"],
            expires_at=timezone.now() - dt.timedelta(seconds=1),
        )
    assert "expires_at" in exc.value.fields


def test_a_service_accounts_key_needs_no_expiry(ci_account, admin_user, settings):
    settings.API_TOKEN_MAX_AGE_DAYS = 90
    _, row = api_key_create(
        caller=Caller(user=admin_user), user=ci_account, name="ci", scopes=["gate:read"]
    )
    assert row.expires_at is None
    later = timezone.now() + dt.timedelta(days=400)
    _, row = api_key_create(
        caller=Caller(user=admin_user),
        user=ci_account,
        name="ci yearly",
        scopes=["gate:read"],
        expires_at=later,
    )
    assert row.expires_at == later

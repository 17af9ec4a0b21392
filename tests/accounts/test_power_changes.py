"""Who holds power is recorded: groups (roles and teams), permissions, account flags and
API-key scopes change only through services that record the change with its reason, from
the API, the admin and the commands alike."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client

from audit.models import AuditRecord
from core.accounts.callers import Caller
from core.accounts.models import ApiKey, User
from core.errors import Forbidden, InvalidInput
from core.roles import Role, has_role
from governance.accounts.services import (
    api_key_create,
    api_key_scopes_change,
    group_members_change,
    group_permissions_change,
    user_flags_change,
    user_roles_change,
)
from tests.adminforms import change_form_data
from tests.apitools import actor, assert_no_record_since, last_seq, only_record_since
from tests.support import WRITE, CompletenessGuard, governed_write

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(admin_user) -> Caller:
    return Caller(user=admin_user, auth="session")


@pytest.fixture
def superuser_admin(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def test_granting_a_role_records_groups_before_and_after_with_reason(root, admin_user, bob):
    mark = last_seq()
    user_roles_change(
        caller=root,
        user=bob,
        groups=[*bob.groups.all(), Group.objects.get(name=Role.VALIDATOR)],
        reason="joins model validation",
    )
    record, parsed = only_record_since(mark)
    assert (record.action, record.object_type, record.object_id) == (
        "user.changed",
        "user",
        str(bob.pk),
    )
    assert parsed["actor"] == actor(admin_user)
    assert parsed["data"] == {
        "before": {"groups": ["credit-risk", "data_scientist"]},
        "after": {"groups": ["credit-risk", "data_scientist", "validator"]},
    }
    assert parsed["reason"] == "joins model validation"
    assert has_role(bob, Role.VALIDATOR)


@pytest.mark.parametrize("reason", ["", "   "])
def test_power_changes_need_a_reason(root, bob, reason):
    mark = last_seq()
    with pytest.raises(InvalidInput) as caught:
        user_flags_change(caller=root, user=bob, is_staff=True, reason=reason)
    assert "reason" in caught.value.fields
    assert_no_record_since(mark)
    assert not User.objects.get(pk=bob.pk).is_staff


def test_only_an_administrator_changes_power(alice, bob):
    mark = last_seq()
    with pytest.raises(Forbidden):
        user_flags_change(caller=Caller(user=alice), user=bob, is_active=False, reason="x")
    assert_no_record_since(mark)
    assert User.objects.get(pk=bob.pk).is_active


def test_nobody_grants_themselves_a_role(roles):
    from tests.conftest import make_person

    ada = make_person("ada", Role.ADMIN, full_name="Ada Lovelace")
    mark = last_seq()
    with pytest.raises(Forbidden):
        user_roles_change(
            caller=Caller(user=ada),
            user=ada,
            groups=[*ada.groups.all(), Group.objects.get(name=Role.RISK_OFFICER)],
            reason="I need it",
        )
    assert_no_record_since(mark)
    assert not has_role(ada, Role.RISK_OFFICER)


def test_deactivation_is_recorded(root, bob):
    mark = last_seq()
    user_flags_change(caller=root, user=bob, is_active=False, reason="left the bank")
    _, parsed = only_record_since(mark)
    assert parsed["data"] == {"before": {"is_active": True}, "after": {"is_active": False}}


def test_team_permissions_and_members_are_recorded(root, team, charlie):
    perm = Permission.objects.get(codename="view_dataset")
    mark = last_seq()
    group_permissions_change(caller=root, group=team, permissions=[perm], reason="reads data")
    _, parsed = only_record_since(mark)
    assert parsed["data"] == {
        "before": {"permissions": []},
        "after": {"permissions": ["registry.view_dataset"]},
    }
    mark = last_seq()
    group_members_change(
        caller=root, group=team, members=[*team.user_set.all(), charlie], reason="moved teams"
    )
    _, parsed = only_record_since(mark)
    assert "charlie" in parsed["data"]["after"]["members"]
    assert "charlie" not in parsed["data"]["before"]["members"]


def test_a_roles_permissions_are_not_changed_by_hand(root):
    validator = Group.objects.get(name=Role.VALIDATOR)
    mark = last_seq()
    with pytest.raises(InvalidInput) as caught:
        group_permissions_change(caller=root, group=validator, permissions=[], reason="x")
    assert "permissions" in caught.value.fields
    assert_no_record_since(mark)


def test_api_key_scopes_change_is_recorded(root, ci_account):
    _, key = api_key_create(caller=root, user=ci_account, name="ci", scopes=["gate:read"])
    mark = last_seq()
    api_key_scopes_change(
        caller=root, key=key, scopes=["gate:read", "registry:write"], reason="registers now"
    )
    record, parsed = only_record_since(mark)
    assert record.action == "api_key.changed"
    assert parsed["data"]["before"] == {"scopes": ["gate:read"]}
    assert parsed["data"]["after"] == {"scopes": ["gate:read", "registry:write"]}
    assert parsed["reason"] == "registers now"


@pytest.mark.parametrize(
    "sql",
    [
        'INSERT INTO "accounts_user_groups" ("user_id", "group_id") VALUES (%s, %s)',
        'INSERT OR IGNORE INTO "accounts_user_groups" ("user_id", "group_id") VALUES (%s, %s)',
        'DELETE FROM "accounts_user_groups" WHERE "user_id" = %s',
        'INSERT INTO "accounts_user_user_permissions" ("user_id", "permission_id") VALUES (%s, %s)',
        'INSERT INTO "auth_group_permissions" ("group_id", "permission_id") VALUES (%s, %s)',
        'UPDATE "accounts_user" SET "is_staff" = %s WHERE "accounts_user"."id" = %s',
        'UPDATE "accounts_user" SET "password" = %s, "is_superuser" = %s WHERE "id" = %s',
        'UPDATE "accounts_apikey" SET "scopes" = %s WHERE "id" = %s',
    ],
)
@pytest.mark.database_free
def test_power_tables_are_governed(sql):
    match = WRITE.match(sql)
    assert match is not None
    assert governed_write(sql, match.group(1), match.group(2))


@pytest.mark.database_free
def test_logging_in_is_not_a_power_change():
    sql = 'UPDATE "accounts_user" SET "last_login" = %s WHERE "accounts_user"."id" = %s'
    assert not governed_write(sql, "UPDATE", "accounts_user")


@pytest.mark.no_audit_guard
def test_an_unrecorded_role_grant_is_a_completeness_violation(bob):
    guard = CompletenessGuard()
    with connection.execute_wrapper(guard), transaction.atomic():
        bob.groups.add(Group.objects.get(name=Role.RISK_OFFICER))
    assert guard.finish() == [
        "a transaction wrote ['accounts_user_groups'] without an audit record"
    ]


def test_admin_user_change_records_groups_and_flags_in_one_record(superuser_admin, bob):
    url = f"/admin/accounts/user/{bob.pk}/change/"
    data = change_form_data(superuser_admin.get(url).content.decode(), "user_form")
    risk = str(Group.objects.get(name=Role.RISK_OFFICER).pk)
    groups = data.get("groups", [])
    groups = [groups] if isinstance(groups, str) else groups
    mark = last_seq()
    response = superuser_admin.post(
        url,
        {**data, "groups": [*groups, risk], "is_staff": "on", "reason": "second line of defence"},
    )
    assert response.status_code == 302
    record, parsed = only_record_since(mark)
    assert record.action == "user.changed"
    assert parsed["data"]["before"] == {
        "is_staff": False,
        "groups": ["credit-risk", "data_scientist"],
    }
    assert parsed["data"]["after"] == {
        "is_staff": True,
        "groups": ["credit-risk", "data_scientist", "risk_officer"],
    }
    assert parsed["reason"] == "second line of defence"


def test_admin_add_user_records_the_new_account(superuser_admin):
    mark = last_seq()
    response = superuser_admin.post(
        "/admin/accounts/user/add/",
        {
            "username": "nina",
            "usable_password": "true",
            "password1": "a-long-enough-password-42",
            "password2": "a-long-enough-password-42",
            "reason": "new validator",
            "_save": "Save",
        },
    )
    assert response.status_code == 302, (
        response.context["adminform"].form.errors if response.context else response
    )
    nina = User.objects.get(username="nina")
    record, parsed = only_record_since(mark)
    assert (record.action, record.object_id) == ("user.created", str(nina.pk))
    assert parsed["reason"] == "new validator"
    assert parsed["data"]["groups"] == [] and parsed["data"]["is_superuser"] is False


def test_admin_revokes_an_api_key_with_a_reason(superuser_admin, root, ci_account):
    _, key = api_key_create(caller=root, user=ci_account, name="ci", scopes=["gate:read"])
    url = f"/admin/accounts/apikey/{key.pk}/change/"
    data = change_form_data(superuser_admin.get(url).content.decode(), "apikey_form")
    mark = last_seq()
    response = superuser_admin.post(url, {**data, "revoke": "on", "reason": "leaked in a log"})
    assert response.status_code == 302
    record, parsed = only_record_since(mark)
    assert record.action == "api_key.revoked"
    assert parsed["reason"] == "leaked in a log"
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None


def test_admin_cannot_delete_groups(superuser_admin, team):
    response = superuser_admin.post(f"/admin/auth/group/{team.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Group.objects.filter(pk=team.pk).exists()
    assert json.dumps(sorted(team.user_set.values_list("username", flat=True)))


def test_seed_demo_records_every_account_and_grant(settings, roles):
    settings.DEBUG = True
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    created = AuditRecord.objects.filter(action="user.created")
    assert sorted(created.values_list("object_id", flat=True)) == sorted(
        str(pk) for pk in User.objects.filter(kind=User.Kind.PERSON).values_list("pk", flat=True)
    )
    admin = User.objects.get(username="admin")
    dana = json.loads(created.get(object_id=str(User.objects.get(username="dana").pk)).body)
    assert dana["actor"]["id"] == str(admin.pk)
    assert dana["data"]["groups"] == ["data_scientist", "recidivism-team"]
    mark = last_seq()
    call_command("seed_demo", stdout=io.StringIO())  # again: new passwords, nothing granted
    assert not AuditRecord.objects.filter(seq__gt=mark, action__startswith="user.").exists()

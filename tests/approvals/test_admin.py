"""The admin signs through the same service: separation of duties and re-authentication hold
there too, and every refusal leaves its security event."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from core.accounts.callers import Caller
from governance.accounts.services import user_flags_change
from governance.approvals import services
from governance.approvals.models import SignOff
from tests.apitools import last_seq, only_record_since
from tests.approvals.conftest import deploy
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/approvals/deploymentrequest/"


def staff(user) -> Client:
    """A client of ``user`` in the admin (granting admin access is recorded, once)."""
    user_flags_change(caller=None, user=user, is_staff=True, reason="admin access")
    client = Client()
    client.force_login(user)
    return client


def sign_in_admin(user, request, password=PASSWORD, decision="approve"):
    return staff(user).post(
        CHANGELIST,
        {
            "action": "sign_requests",
            "_selected_action": [str(request.pk)],
            "apply": "1",
            "decision": decision,
            "comment": "looked at it",
            "acknowledge_evidence": "on",
            "password": password,
        },
        follow=True,
    )


@pytest.fixture
def test_request(alice, version, ci):
    deploy(ci, version, "dev")
    return services.deployment_request_submit(
        caller=Caller(user=alice), version=version, environment="test", reason="qa"
    )


@pytest.fixture
def prod_request(alice, version, ci):
    deploy(ci, version, "dev")
    deploy(ci, version, "test")
    return services.deployment_request_submit(
        caller=Caller(user=alice), version=version, environment="prod", reason="live"
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.mark.parametrize(
    ("who", "fixture", "code"),
    [
        ("alice", "test_request", "requester_cannot_sign"),
        ("carl", "prod_request", "role_required"),
        ("admin_user", "prod_request", "role_required"),
    ],
)
def test_admin_sign_refuses_like_the_api(request, who, fixture, code):
    user = request.getfixturevalue(who)
    target = request.getfixturevalue(fixture)
    staff(user)
    seq = last_seq()
    response = sign_in_admin(user, target)
    assert response.status_code == 200
    assert any(f"({code})" in m for m in messages_of(response)), messages_of(response)
    record, body = only_record_since(seq)
    assert record.action == "signoff.refused"
    assert body["data"]["code"] == code
    assert not SignOff.objects.filter(request=target).exists()


def test_admin_sign_refuses_the_author(bob, alice, version, ci):
    deploy(ci, version, "dev")
    target = services.deployment_request_submit(
        caller=Caller(user=bob), version=version, environment="test", reason="qa"
    )
    staff(alice)
    seq = last_seq()
    response = sign_in_admin(alice, target)
    assert any("(author_cannot_sign)" in m for m in messages_of(response))
    record, _ = only_record_since(seq)
    assert record.action == "signoff.refused"


def test_admin_sign_needs_the_password(victor, prod_request):
    staff(victor)
    seq = last_seq()
    response = sign_in_admin(victor, prod_request, password="wrong")
    assert any("(reauthentication_failed)" in m for m in messages_of(response))
    record, _ = only_record_since(seq)
    assert record.action == "signoff.reauthentication_failed"


def test_admin_sign_second_step_by_the_same_person_is_refused(victor, prod_request):
    assert "signed." in messages_of(sign_in_admin(victor, prod_request))[0]
    staff(victor)
    seq = last_seq()
    response = sign_in_admin(victor, prod_request)
    assert any("(already_signed_this_step)" in m for m in messages_of(response))
    record, _ = only_record_since(seq)
    assert record.action == "signoff.refused"


def test_admin_sign_leaves_one_verifiable_record(bob, test_request):
    from audit.verifier import check_signature_record

    staff(bob)
    seq = last_seq()
    response = sign_in_admin(bob, test_request)
    assert messages_of(response) == [f"{test_request}: signed."]
    record, body = only_record_since(seq)
    assert record.action == "signoff.signed"
    assert check_signature_record(json.loads(record.body)) is None
    assert body["data"]["request_state"] == "approved"


def test_admin_shows_the_password_form_first(bob, test_request):
    response = staff(bob).post(
        CHANGELIST, {"action": "sign_requests", "_selected_action": [str(test_request.pk)]}
    )
    assert response.status_code == 200
    assert b'type="password"' in response.content
    assert not SignOff.objects.exists()


def test_admin_cannot_add_change_or_delete_requests(admin_user, test_request):
    client = staff(admin_user)
    assert client.get(f"{CHANGELIST}add/").status_code == 403
    page = client.get(f"{CHANGELIST}{test_request.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content

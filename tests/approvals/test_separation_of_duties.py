"""Separation of duties and re-authentication through the API: each rule refuses with its
own code, changes nothing, and leaves exactly one security event."""

from __future__ import annotations

import json

import pytest

from audit.models import AuditRecord
from core.accounts.callers import Caller
from core.roles import Role
from governance.approvals import services
from governance.approvals.models import DeploymentRequest, SignOff
from tests import factories
from tests.apitools import assert_error, last_seq, only_record_since
from tests.approvals.conftest import deploy
from tests.conftest import PASSWORD, add_to_groups, client_for, client_with_key, make_person

pytestmark = pytest.mark.django_db


def request_for(version, environment, requester, ci):
    if environment in ("test", "prod"):
        deploy(ci, version, "dev")
    if environment == "prod":
        deploy(ci, version, "test")
    return services.deployment_request_submit(
        caller=Caller(user=requester), version=version, environment=environment, reason="ship"
    )


def assert_refused(user, request, code, *, password=PASSWORD, action="signoff.refused"):
    seq = last_seq()
    signed_before = SignOff.objects.filter(request=request).count()
    response = client_for(user).post(
        f"/api/v1/deployment-requests/{request.pk}/sign",
        {"decision": "approve", "password": password},
        format="json",
    )
    error = assert_error(response, 403, code=code)
    record, body = only_record_since(seq)
    assert record.action == action
    assert body["data"]["code"] == code
    assert body["actor"]["id"] == str(user.pk)
    assert body["object"] == {
        "type": "deployment_request",
        "id": str(request.pk),
        "label": str(request),
    }
    before = DeploymentRequest.objects.get(pk=request.pk)
    assert before.state == request.state
    assert SignOff.objects.filter(request=request).count() == signed_before
    return error


def test_requester_cannot_sign_own_request(bob, alice, version, ci):
    # bob requests a version alice authored; bob may not review his own request.
    request = request_for(version, "test", bob, ci)
    assert_refused(bob, request, "requester_cannot_sign")


def test_author_cannot_sign_the_deployment_of_their_version(alice, bob, version, ci):
    request = request_for(version, "test", bob, ci)
    assert_refused(alice, request, "author_cannot_sign")


def test_owner_cannot_sign_an_independent_step(alice, bob, model, ci):
    add_to_groups(alice, make_person("x", Role.VALIDATOR).groups.get(name=Role.VALIDATOR))
    version = factories.model_version(bob, model)
    request = request_for(version, "prod", bob, ci)
    assert_refused(alice, request, "owner_cannot_sign_independent_step")


def test_one_person_signs_one_step(alice, roles, ci, team):
    both = make_person("vicky", Role.VALIDATOR, Role.RISK_OFFICER, full_name="Vicky Both")
    model = factories.registered_model(alice, name="limits", risk_tier="medium", team=team)
    version = factories.model_version(alice, model)
    request = request_for(version, "prod", alice, ci)
    services.signoff_sign(
        caller=Caller(user=both), request=request, decision="approve", password=PASSWORD
    )
    request.refresh_from_db()
    assert_refused(both, request, "already_signed_another_step")


def test_the_same_validator_cannot_count_twice_for_two_signers(alice, victor, version, ci):
    request = request_for(version, "prod", alice, ci)
    services.signoff_sign(
        caller=Caller(user=victor),
        request=request,
        decision="approve",
        password=PASSWORD,
        acknowledge_evidence=True,
    )
    assert_refused(victor, request, "already_signed_this_step")


def test_step_role_is_required(alice, carl, version, ci):
    request = request_for(version, "prod", alice, ci)
    assert_refused(carl, request, "role_required")


def test_superuser_without_the_role_cannot_sign(alice, admin_user, version, ci):
    request = request_for(version, "prod", alice, ci)
    assert_refused(admin_user, request, "role_required")


def test_wrong_password_is_refused_and_recorded(alice, victor, version, ci):
    request = request_for(version, "prod", alice, ci)
    error = assert_refused(
        victor,
        request,
        "reauthentication_failed",
        password="not-my-password",
        action="signoff.reauthentication_failed",
    )
    assert "password" in error["fields"]


def test_missing_password_is_refused_and_recorded(alice, victor, version, ci):
    request = request_for(version, "prod", alice, ci)
    assert_refused(
        victor,
        request,
        "reauthentication_failed",
        password="",
        action="signoff.reauthentication_failed",
    )


def test_five_failed_reauthentications_lock_signing(alice, victor, version, ci):
    request = request_for(version, "prod", alice, ci)
    for _ in range(5):
        assert_refused(
            victor,
            request,
            "reauthentication_failed",
            password="guess",
            action="signoff.reauthentication_failed",
        )
    # Even the right password is refused now.
    assert_refused(victor, request, "signing_locked")
    # The failure that locked signing carries the alert; the ones before it do not.
    failures = [
        json.loads(r.body)["data"]
        for r in AuditRecord.objects.filter(
            action="signoff.reauthentication_failed", actor_id=str(victor.pk)
        ).order_by("seq")
    ]
    assert [f["failures"] for f in failures] == [1, 2, 3, 4, 5]
    assert [f["alert"] for f in failures] == [None, None, None, None, "signing_locked"]


def test_an_api_key_cannot_sign(alice, version, ci, ci_key):
    request = request_for(version, "test", alice, ci)
    response = client_with_key(ci_key).post(
        f"/api/v1/deployment-requests/{request.pk}/sign",
        {"decision": "approve", "password": PASSWORD},
        format="json",
    )
    assert_error(response, 403)


def test_a_stranger_does_not_see_the_request(alice, charlie, version, ci):
    request = request_for(version, "test", alice, ci)
    response = client_for(charlie).post(
        f"/api/v1/deployment-requests/{request.pk}/sign",
        {"decision": "approve", "password": PASSWORD},
        format="json",
    )
    assert_error(response, 404)
    assert_error(client_for(charlie).get(f"/api/v1/deployment-requests/{request.pk}/"), 404)


def test_signing_a_finished_request_is_a_conflict(alice, bob, victor, version, ci):
    request = request_for(version, "test", alice, ci)
    services.signoff_sign(
        caller=Caller(user=bob), request=request, decision="approve", password=PASSWORD
    )
    seq = last_seq()
    response = client_for(victor).post(
        f"/api/v1/deployment-requests/{request.pk}/sign",
        {"decision": "approve", "password": PASSWORD},
        format="json",
    )
    assert_error(response, 409, code="transition_not_allowed")
    record, _ = only_record_since(seq)
    assert record.action == "signoff.refused"


def test_only_an_officer_revokes(alice, bob, victor, version, ci):
    request = request_for(version, "test", alice, ci)
    services.signoff_sign(
        caller=Caller(user=bob), request=request, decision="approve", password=PASSWORD
    )
    seq = last_seq()
    response = client_for(victor).post(
        f"/api/v1/deployment-requests/{request.pk}/revoke", {"reason": "no"}, format="json"
    )
    assert_error(response, 403, code="permission_denied")
    record, body = only_record_since(seq)
    assert record.action == "deployment_request.refused"
    assert json.loads(record.body)["data"]["code"] == "permission_denied"
    assert body["scope"]["environment"] == "test"


def test_request_api_matrix(api, alice, charlie, version, ci):
    deploy(ci, version, "dev")
    payload = {"model": "credit-score", "version": 1, "environment": "test", "reason": "go"}
    assert api.post("/api/v1/deployment-requests/", payload, format="json").status_code == 401
    assert_error(client_for(charlie).post("/api/v1/deployment-requests/", payload), 404)
    assert_error(
        client_for(alice).post(
            "/api/v1/deployment-requests/", {**payload, "reason": ""}, format="json"
        ),
        400,
        field="reason",
    )
    assert_error(
        client_for(alice).post(
            "/api/v1/deployment-requests/", {**payload, "environment": "qa"}, format="json"
        ),
        400,
        field="environment",
    )
    seq = last_seq()
    created = client_for(alice).post("/api/v1/deployment-requests/", payload, format="json")
    assert created.status_code == 201
    record, body = only_record_since(seq)
    assert record.action == "deployment_request.submitted"
    assert body["data"]["policy"]["version"] == 1
    assert_error(
        client_for(alice).post("/api/v1/deployment-requests/", payload, format="json"), 409
    )
    listed = client_for(alice).get("/api/v1/deployment-requests/", {"environment": "test"})
    assert [r["id"] for r in listed.json()["results"]] == [created.json()["id"]]
    assert client_for(charlie).get("/api/v1/deployment-requests/").json()["results"] == []

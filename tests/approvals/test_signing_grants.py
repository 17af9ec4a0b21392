"""Per-model signing grants (DESIGN 3): a person or a team may sign one model's requests in a
role they do not hold through a group. Risk officers and administrators grant and revoke,
never to themselves; each change is recorded with its reason; separation of duties applies
to a grantee exactly as to a group member; a grant reaches no other model."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from core.accounts.callers import Caller
from core.roles import Role
from governance.approvals import selectors, services
from governance.approvals.models import SignOff
from registry.selectors import signing_grant_list, signing_roles_granted
from tests import factories
from tests.apitools import assert_error, assert_no_record_since, last_seq, only_record_since
from tests.approvals.test_separation_of_duties import assert_refused, request_for
from tests.conftest import PASSWORD, add_to_groups, client_for, client_with_key, make_person
from tests.registry.test_admin import admin_client

pytestmark = pytest.mark.django_db

GRANTS = "/api/v1/models/credit-score/signing-grants"


def grant(by, *, role="validator", reason="second-line cover for Q4", **who):
    return client_for(by).post(GRANTS, {"role": role, "reason": reason, **who}, format="json")


def revoke(by, *, role="validator", reason="cover ended", **who):
    return client_for(by).post(
        f"{GRANTS}/revoke", {"role": role, "reason": reason, **who}, format="json"
    )


def sign(user, request):
    return services.signoff_sign(
        caller=Caller(user=user),
        request=request,
        decision="approve",
        password=PASSWORD,
        acknowledge_evidence=True,
    )


def test_a_granted_person_signs_for_that_model_in_that_role(alice, charlie, rita, version, ci):
    # charlie is a data scientist of another team: he neither sees credit-score nor validates.
    assert client_for(charlie).get("/api/v1/models/credit-score/").status_code == 404
    request = request_for(version, "prod", alice, ci)

    seq = last_seq()
    created = grant(rita, user="charlie")
    assert created.status_code == 201, created.content
    assert created.json() == {
        "model": "credit-score",
        "role": "validator",
        "user": "charlie",
        "group": None,
    }
    record, body = only_record_since(seq)
    assert record.action == "signing.granted"
    assert body["actor"]["id"] == str(rita.pk)
    assert body["object"]["type"] == "registered_model"
    assert body["data"] == {
        "role": "validator",
        "grantee": {"type": "user", "id": str(charlie.pk), "name": "charlie"},
    }
    assert body["reason"] == "second-line cover for Q4"

    assert client_for(charlie).get("/api/v1/models/credit-score/").status_code == 200
    assert selectors.user_roles(charlie, version.model) >= {Role.VALIDATOR}
    assert Role.VALIDATOR not in selectors.user_roles(charlie)
    assert request in selectors.deployment_requests_awaiting(user=charlie)
    signoff = sign(charlie, request)
    assert (signoff.step, signoff.signer) == ("validation", charlie)

    listed = client_for(alice).get(GRANTS)
    assert listed.status_code == 200
    assert listed.json() == [created.json()]

    # The grant is for credit-score only.
    other = factories.registered_model(
        alice, name="limits", risk_tier="high", team=version.model.team
    )
    other_request = request_for(factories.model_version(alice, other), "prod", alice, ci)
    refusal = selectors.signing_refusal(user=charlie, request=other_request)
    assert refusal is not None and "role" in refusal
    assert client_for(charlie).get("/api/v1/models/limits/").status_code == 404


def test_a_team_grant_lets_each_member_sign(alice, rita, version, ci, roles):
    reviewers = Group.objects.create(name="model-review-emea")
    dora = make_person("dora", Role.DATA_SCIENTIST, team=reviewers, full_name="Dora Diaz")
    request = request_for(version, "prod", alice, ci)
    signing = client_for(dora).post(
        f"/api/v1/deployment-requests/{request.pk}/sign",
        {"decision": "approve", "password": PASSWORD},
        format="json",
    )
    assert_error(signing, 404)  # not her team's model, until the grant
    created = grant(rita, group="model-review-emea")
    assert created.status_code == 201, created.content
    assert created.json()["group"] == "model-review-emea"
    assert Role.VALIDATOR in signing_roles_granted(dora, version.model)
    assert sign(dora, request).signer == dora


def test_revoking_stops_further_signatures_and_keeps_those_given(alice, charlie, rita, version, ci):
    assert grant(rita, user="charlie").status_code == 201
    first = request_for(version, "prod", alice, ci)
    sign(charlie, first)

    seq = last_seq()
    revoked = revoke(rita, user="charlie")
    assert revoked.status_code == 200, revoked.content
    record, body = only_record_since(seq)
    assert record.action == "signing.revoked"
    assert body["reason"] == "cover ended"
    assert client_for(rita).get(GRANTS).json() == []

    assert SignOff.objects.filter(request=first, signer=charlie).exists()
    add_to_groups(charlie, "credit-risk")  # so that he still sees it
    second_version = factories.model_version(alice, version.model)
    second = request_for(second_version, "prod", alice, ci)
    assert_refused(charlie, second, "role_required")


def test_separation_of_duties_binds_a_grantee(alice, bob, rita, version, ci):
    # A grant cannot make the version's author or the model's owner an independent signer.
    assert grant(rita, user="alice").status_code == 201
    assert grant(rita, user="bob").status_code == 201
    request = request_for(version, "prod", bob, ci)
    assert_refused(alice, request, "author_cannot_sign")
    assert_refused(bob, request, "requester_cannot_sign")


def test_only_officers_and_administrators_grant(charlie, victor, admin_user, model, ci_key):
    seq = last_seq()
    error = assert_error(grant(victor, user="charlie"), 403, code="permission_denied")
    assert "grant_signing" in error["message"]
    record, body = only_record_since(seq)
    assert (record.action, body["data"]["code"]) == ("signing.refused", "permission_denied")

    key = client_with_key(ci_key)
    assert_error(
        key.post(GRANTS, {"role": "validator", "user": "charlie", "reason": "x"}, format="json"),
        403,
    )
    assert key.get(GRANTS).status_code == 200

    # The administrators' role holds the permission (superuser status is not what counts).
    assert grant(admin_user, user="charlie").status_code == 201
    assert signing_grant_list(model=model)[0].user == charlie


def test_nobody_grants_to_themselves_or_their_group(rita, model):
    seq = last_seq()
    assert_error(grant(rita, user="rita"), 403, code="grant_needs_another_person")
    record, body = only_record_since(seq)
    assert (record.action, body["data"]["code"]) == (
        "signing.refused",
        "grant_needs_another_person",
    )
    add_to_groups(rita, "risk-emea")
    assert_error(grant(rita, group="risk-emea"), 403, code="grant_needs_another_person")
    assert signing_grant_list(model=model) == []


def test_superuser_status_is_not_a_signing_grant(admin_user, version):
    assert signing_roles_granted(admin_user, version.model) == frozenset()
    assert selectors.user_roles(admin_user, version.model) == {Role.ADMIN}


def test_bad_grants_are_refused_and_change_nothing(charlie, rita, ci_account, version):
    seq = last_seq()
    assert_error(grant(rita, user="nobody"), 400, field="user")
    assert_error(grant(rita, group="no-such-team"), 400, field="group")
    assert_error(grant(rita, user="charlie", group="credit-risk"), 400, field="user")
    assert_error(grant(rita), 400, field="user")
    assert_error(grant(rita, role="admin", user="charlie"), 400, field="role")
    assert_error(grant(rita, role="auditor", user="charlie"), 400, field="role")
    assert_error(grant(rita, reason="", user="charlie"), 400, field="reason")
    assert_error(grant(rita, user=ci_account.username), 400, field="user")
    assert_error(
        client_for(rita).post(
            "/api/v1/models/no-such-model/signing-grants",
            {"role": "validator", "user": "charlie", "reason": "x"},
            format="json",
        ),
        404,
    )
    assert_error(revoke(rita, user="charlie"), 404)
    assert_no_record_since(seq)
    assert signing_grant_list(model=version.model) == []

    assert grant(rita, user="charlie").status_code == 201
    seq = last_seq()
    assert_error(grant(rita, user="charlie"), 409, code="conflict")
    record, _ = only_record_since(seq)
    assert record.action == "signing.refused"
    assert len(signing_grant_list(model=version.model)) == 1


def test_a_granted_validator_raises_findings_on_that_model(charlie, rita, alice, version):
    assert grant(rita, user="charlie").status_code == 201
    finding = services.finding_open(
        caller=Caller(user=charlie),
        version=version,
        title="Calibration drifts for applicants over 70",
        severity="high",
        owner=alice,
    )
    assert finding.raised_by == charlie


def test_the_model_admin_lists_the_grants(rita, charlie, model):
    page = f"/admin/registry/registeredmodel/{model.pk}/change/"
    assert "only role group members sign" in admin_client(rita).get(page).content.decode()
    assert grant(rita, user="charlie").status_code == 201
    Group.objects.create(name="model-review-emea")
    assert grant(rita, group="model-review-emea", role="compliance_officer").status_code == 201
    shown = admin_client(rita).get(page).content.decode()
    assert "charlie (Validator); team model-review-emea (Compliance officer)" in shown

"""The approval pages (Django test client): the acceptance scenario through the forms,
separation of duties through the forms (each rule refused with its reason and recorded as a
security event), re-authentication, CSRF, login and scope."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.test import Client

from audit.models import AuditRecord
from core.accounts.callers import Caller
from core.roles import Role
from governance.approvals import services
from governance.approvals.models import DeploymentRequest, SignOff
from registry.services import DatasetRef
from tests import factories
from tests.apitools import last_seq, records_since
from tests.approvals.conftest import FixtureEvidence, deploy, provided_evidence
from tests.conftest import PASSWORD, add_to_groups, client_with_key, make_person

pytestmark = pytest.mark.django_db


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response) -> str:
    return html.unescape(response.content.decode())


def request_deployment(user, version, environment, reason="ship it"):
    return browser(user).post(
        "/approvals/new/",
        {"model_version": version.pk, "environment": environment, "reason": reason},
    )


def created_id(response) -> int:
    assert response.status_code == 302, text(response)
    match = re.fullmatch(r"/approvals/(\d+)/", response["Location"])
    assert match, response["Location"]
    return int(match.group(1))


def shown_content(page) -> list[str]:
    """The sign page's hidden ``shown_content`` values (what it showed, per choice)."""
    return re.findall(r'<input type="hidden" name="shown_content" value="([^"]+)"', text(page))


def sign(
    user,
    request_id,
    *,
    decision="approve",
    password=PASSWORD,
    meaning=None,
    comment="",
    acknowledge=False,
):
    """Sign through the form; ``acknowledge`` ticks the box that approving while required
    evidence is not passing needs."""
    client = browser(user)
    page = client.get(f"/approvals/{request_id}/sign/")
    assert page.status_code == 200
    step = page.context["step"]
    form = {
        "decision": decision,
        "meaning": meaning or (step.meaning if step else "approval"),
        "comment": comment,
        "password": password,
        "shown_content": shown_content(page),
    }
    if acknowledge:
        form["acknowledge_evidence"] = "on"
    return client.post(f"/approvals/{request_id}/sign/", form)


def gate_on_review(user, request_id):
    response = browser(user).get(f"/approvals/{request_id}/")
    assert response.status_code == 200
    gate = response.context["gate"]
    page = text(response)
    for reason in gate.reasons:
        assert reason in page
    assert ("✓ Allowed" if gate.allowed else "✕ Denied") in page
    return gate


def gate_api(key, version, environment):
    response = client_with_key(key).get(
        "/api/v1/gate",
        {
            "model": version.model.name,
            "version": version.version,
            "environment": environment,
            "digest": version.artifact_digest,
        },
    )
    assert response.status_code == 200
    return response.json()


def test_high_risk_model_through_the_forms_denied_at_every_step_then_allowed(
    people, version, ci, ci_key
):
    alice, bob, victor, vera, rita, carl = (
        people.alice,
        people.bob,
        people.victor,
        people.vera,
        people.rita,
        people.carl,
    )

    # Skipping dev and test is refused in the form, with the reason.
    response = request_deployment(alice, version, "prod")
    assert response.status_code == 409
    assert "previous_environment_missing" in text(response)
    assert 'role="alert"' in text(response)
    assert not DeploymentRequest.objects.exists()

    # dev: approved at request time.
    dev_id = created_id(request_deployment(alice, version, "dev"))
    assert DeploymentRequest.objects.get(pk=dev_id).state == "approved"
    assert gate_on_review(alice, dev_id).allowed
    deploy(ci, version, "dev")

    # test: one reviewer other than the requester and the author.
    test_id = created_id(request_deployment(alice, version, "test"))
    assert gate_on_review(alice, test_id).reasons == ["pending_step:review"]
    response = sign(bob, test_id, comment="looks right")
    assert response.status_code == 302
    assert gate_on_review(alice, test_id).allowed
    deploy(ci, version, "test")

    # prod: two validators, the risk officer, the compliance officer, and evidence.
    prod_id = created_id(request_deployment(bob, version, "prod", reason="quarterly release"))
    missing = ["evidence_missing:fairness", "evidence_missing:drift"]
    assert gate_on_review(victor, prod_id).reasons == ["pending_step:validation", *missing]
    review = text(browser(victor).get(f"/approvals/{prod_id}/"))
    assert review.count("✕ Missing") == 2

    for signer, next_reason in [
        (victor, "pending_step:validation"),
        (vera, "pending_step:risk_approval"),
        (rita, "pending_step:compliance_approval"),
    ]:
        response = sign(signer, prod_id, acknowledge=True)
        assert response.status_code == 302, text(response)
        assert gate_on_review(signer, prod_id).reasons == [next_reason, *missing]
        assert gate_api(ci_key, version, "prod")["reasons"] == [next_reason, *missing]

    response = sign(carl, prod_id, acknowledge=True)
    assert response.status_code == 302
    assert DeploymentRequest.objects.get(pk=prod_id).state == "approved"
    # Every signature given, but the evidence does not exist yet: still denied.
    assert gate_on_review(carl, prod_id).reasons == missing

    with provided_evidence(
        {"fairness": FixtureEvidence("fairness"), "drift": FixtureEvidence("drift")}
    ):
        gate = gate_on_review(carl, prod_id)
        assert gate.allowed and gate.reasons == []
        answer = gate_api(ci_key, version, "prod")
        assert answer["allowed"] is True and answer["reasons"] == []

    # The review page shows every signature (name, printed name, meaning, decision, digest)
    # and the audit trail of the request.
    page = browser(alice).get(f"/approvals/{prod_id}/")
    body = text(page)
    signoffs = list(SignOff.objects.filter(request_id=prod_id).order_by("signed_at"))
    assert [s.signer for s in signoffs] == [victor, vera, rita, carl]
    for signoff in signoffs:
        assert signoff.printed_name in body
        assert signoff.signed_sha256 in body
    assert "Responsibility" in body  # the compliance step's meaning
    trail = page.context["trail"]
    assert [row["action"] for row in trail] == [
        "deployment_request.submitted",
        "signoff.signed",
        "signoff.signed",
        "signoff.signed",
        "signoff.signed",
    ]
    assert [row["actor"] for row in trail] == [
        "Bob Baker",
        "Victor Vance",
        "Vera Valdez",
        "Rita Rossi",
        "Carl Cruz",
    ]
    for row in trail:
        assert str(row["seq"]) in body


def test_signing_shows_what_is_signed_and_records_that_digest(people, version, ci):
    deploy(ci, version, "dev")
    request_id = created_id(request_deployment(people.alice, version, "test"))
    client = browser(people.bob)
    page = client.get(f"/approvals/{request_id}/sign/")
    preview = page.context["preview"]
    assert preview["content"]["artifact_digest"] == version.artifact_digest
    assert preview["content"]["step"] == "review"
    assert preview["sha256"] in text(page)
    assert version.artifact_digest in text(page)

    seq = last_seq()
    response = client.post(
        f"/approvals/{request_id}/sign/",
        {
            "decision": "approve",
            "meaning": "review",
            "comment": "ok",
            "password": PASSWORD,
            "shown_content": shown_content(page),
        },
        follow=True,
    )
    signoff = SignOff.objects.get(request_id=request_id)
    assert signoff.signed_sha256 == services.signed_sha256(signoff.signed_content)
    assert signoff.signed_sha256 in text(response)  # announced after signing
    assert signoff.comment == "ok" and signoff.meaning == "review"
    # What was shown is what was signed, but for the moment of signing.
    shown = {k: v for k, v in preview["content"].items() if k != "signed_at"}
    assert {k: v for k, v in signoff.signed_content.items() if k != "signed_at"} == shown
    (record,) = records_since(seq)
    assert record.action == "signoff.signed"
    assert json.loads(record.body)["data"]["signed_sha256"] == signoff.signed_sha256


def request_for(version, environment, requester, ci):
    if environment in ("test", "prod"):
        deploy(ci, version, "dev")
    if environment == "prod":
        deploy(ci, version, "test")
    return services.deployment_request_submit(
        caller=Caller(user=requester), version=version, environment=environment, reason="ship"
    )


def assert_refused_on_form(user, request, code, *, password=PASSWORD):
    """The form is shown again with the service's reason (403), nothing is signed, and
    exactly one security event names the rule."""
    signed_before = SignOff.objects.filter(request=request).count()
    seq = last_seq()
    response = sign(user, request.pk, password=password)
    assert response.status_code == 403, text(response)
    body = text(response)
    assert 'role="alert"' in body
    assert "Your signature was refused" in body
    assert '<form method="post"' in body  # the form stays
    (record,) = records_since(seq)
    data = json.loads(record.body)
    assert record.action in ("signoff.refused", "signoff.reauthentication_failed")
    assert data["data"]["code"] == code
    assert data["actor"]["id"] == str(user.pk)
    assert data["object"]["type"] == "deployment_request"
    assert data["object"]["id"] == str(request.pk)
    assert data["data"]["message"] in body
    assert SignOff.objects.filter(request=request).count() == signed_before
    assert DeploymentRequest.objects.get(pk=request.pk).state == request.state
    return data["data"]["message"]


def test_requester_cannot_sign_own_request_through_the_form(alice, bob, version, ci):
    request = request_for(version, "test", bob, ci)
    message = assert_refused_on_form(bob, request, "requester_cannot_sign")
    assert "requester" in message


def test_author_cannot_sign_through_the_form(alice, bob, version, ci):
    request = request_for(version, "test", bob, ci)
    assert_refused_on_form(alice, request, "author_cannot_sign")


def test_owner_cannot_sign_an_independent_step_through_the_form(alice, bob, model, ci):
    add_to_groups(alice, make_person("x", Role.VALIDATOR).groups.get(name=Role.VALIDATOR))
    version = factories.model_version(bob, model)
    request = request_for(version, "prod", bob, ci)
    assert_refused_on_form(alice, request, "owner_cannot_sign_independent_step")


def test_one_person_signs_one_step_through_the_form(alice, roles, team, ci):
    both = make_person("vicky", Role.VALIDATOR, Role.RISK_OFFICER, full_name="Vicky Both")
    model = factories.registered_model(alice, name="limits", risk_tier="medium", team=team)
    version = factories.model_version(alice, model)
    request = request_for(version, "prod", alice, ci)
    assert sign(both, request.pk).status_code == 302
    request.refresh_from_db()
    assert_refused_on_form(both, request, "already_signed_another_step")


def test_second_signature_on_the_same_step_is_refused(people, version, ci):
    request = request_for(version, "prod", people.bob, ci)
    assert sign(people.victor, request.pk, acknowledge=True).status_code == 302
    assert_refused_on_form(people.victor, request, "already_signed_this_step")


def test_missing_role_is_refused_through_the_form(people, version, ci):
    request = request_for(version, "prod", people.bob, ci)
    assert_refused_on_form(people.rita, request, "role_required")


def test_wrong_password_is_refused_and_recorded(people, version, ci):
    request = request_for(version, "prod", people.bob, ci)
    message = assert_refused_on_form(
        people.victor, request, "reauthentication_failed", password="not-my-password"
    )
    assert "wrong password" in message


def test_empty_password_is_a_form_error_and_signs_nothing(people, version, ci):
    request = request_for(version, "prod", people.bob, ci)
    seq = last_seq()
    response = browser(people.victor).post(
        f"/approvals/{request.pk}/sign/", {"decision": "approve", "meaning": "review"}
    )
    assert response.status_code == 400
    assert "This field is required." in text(response)
    assert records_since(seq) == []
    assert not SignOff.objects.filter(request=request).exists()


def test_a_rejection_through_the_form_rejects_the_request(people, version, ci):
    request = request_for(version, "prod", people.bob, ci)
    response = sign(people.victor, request.pk, decision="reject", comment="bias unexplained")
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.state == "rejected"
    assert gate_on_review(people.alice, request.pk).reasons[0] == "rejected"


def test_csrf_is_enforced_on_the_sign_form(people, version, ci):
    request = request_for(version, "prod", people.bob, ci)
    client = Client(enforce_csrf_checks=True)
    client.force_login(people.victor)
    form = {
        "decision": "approve",
        "meaning": "review",
        "password": PASSWORD,
        "acknowledge_evidence": "on",
    }
    seq = last_seq()
    response = client.post(f"/approvals/{request.pk}/sign/", form)
    assert response.status_code == 403
    assert records_since(seq) == []
    assert not SignOff.objects.filter(request=request).exists()

    page = client.get(f"/approvals/{request.pk}/sign/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text(page)).group(1)
    response = client.post(
        f"/approvals/{request.pk}/sign/",
        {**form, "shown_content": shown_content(page), "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
    assert SignOff.objects.filter(request=request, signer=people.victor).exists()


def test_csrf_is_enforced_on_the_request_form(alice, version):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(
        "/approvals/new/", {"model_version": version.pk, "environment": "dev", "reason": "x"}
    )
    assert response.status_code == 403
    assert not DeploymentRequest.objects.exists()


@pytest.mark.parametrize(
    "path", ["/approvals/", "/approvals/new/", "/approvals/1/", "/approvals/1/sign/"]
)
def test_pages_need_a_login(path):
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def test_anonymous_post_signs_nothing(people, version, ci):
    request = request_for(version, "prod", people.bob, ci)
    response = Client().post(
        f"/approvals/{request.pk}/sign/", {"decision": "approve", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert not SignOff.objects.filter(request=request).exists()


def test_login_and_logout_pages(victor):
    client = Client()
    page = client.get("/accounts/login/?next=/approvals/")
    assert page.status_code == 200 and 'for="id_password"' in text(page)
    wrong = client.post("/accounts/login/", {"username": "victor", "password": "nope"})
    assert wrong.status_code == 200 and 'role="alert"' in text(wrong)
    response = client.post(
        "/accounts/login/",
        {"username": "victor", "password": PASSWORD, "next": "/approvals/"},
    )
    assert response.status_code == 302 and response["Location"] == "/approvals/"
    assert client.get("/approvals/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/approvals/").status_code == 302


def test_out_of_scope_request_is_404(people, charlie, version, ci):
    request = request_for(version, "prod", people.bob, ci)
    client = browser(charlie)
    for path in ("", "sign/", "withdraw/", "revoke/"):
        assert client.get(f"/approvals/{request.pk}/{path}").status_code == 404
    seq = last_seq()
    response = client.post(
        f"/approvals/{request.pk}/sign/",
        {"decision": "approve", "meaning": "review", "password": PASSWORD},
    )
    assert response.status_code == 404
    assert records_since(seq) == []
    listing = client.get("/approvals/")
    assert list(listing.context["page"].object_list) == []
    assert client.get("/approvals/999999/").status_code == 404


def test_request_form_offers_only_visible_versions(alice, charlie, version):
    page = browser(charlie).get("/approvals/new/")
    assert version.artifact_digest[:19] not in text(page)
    response = request_deployment(charlie, version, "dev")
    assert response.status_code == 400
    assert "Select a valid choice" in text(response)
    assert not DeploymentRequest.objects.exists()
    assert version.artifact_digest[:19] in text(browser(alice).get("/approvals/new/"))


def test_list_filters_and_awaiting_my_signature(people, version, ci):
    prod = request_for(version, "prod", people.bob, ci)
    other = factories.model_version(people.alice, version.model)
    dev = services.deployment_request_submit(
        caller=Caller(user=people.alice), version=other, environment="dev", reason="try"
    )

    def listed(user, query=""):
        response = browser(user).get(f"/approvals/{query}")
        assert response.status_code == 200
        return [r.pk for r in response.context["page"].object_list]

    assert listed(people.victor) == [dev.pk, prod.pk]
    assert listed(people.victor, "?environment=prod") == [prod.pk]
    assert listed(people.victor, "?state=approved") == [dev.pk]
    assert listed(people.victor, "?awaiting=on") == [prod.pk]
    assert listed(people.rita, "?awaiting=on") == []  # validation comes first
    assert listed(people.bob, "?awaiting=on") == []  # the requester never signs
    sign(people.victor, prod.pk, acknowledge=True)
    assert listed(people.victor, "?awaiting=on") == []
    assert listed(people.vera, "?awaiting=on&environment=prod") == [prod.pk]


def test_requester_withdraws_and_others_are_refused(people, version, ci):
    request = request_for(version, "prod", people.bob, ci)
    seq = last_seq()
    refused = browser(people.alice).post(
        f"/approvals/{request.pk}/withdraw/", {"reason": "not mine"}
    )
    assert refused.status_code == 403
    assert "only the requester may withdraw a request" in text(refused)
    (record,) = records_since(seq)
    assert record.action == "deployment_request.refused"

    review = browser(people.bob).get(f"/approvals/{request.pk}/")
    assert review.context["can_withdraw"] is True
    response = browser(people.bob).post(
        f"/approvals/{request.pk}/withdraw/", {"reason": "wrong version"}
    )
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.state == "withdrawn" and request.close_reason == "wrong version"
    assert AuditRecord.objects.filter(action="deployment_request.withdrawn").count() == 1


def test_risk_officer_revokes_an_approval(people, version, ci):
    deploy(ci, version, "dev")
    request = services.deployment_request_submit(
        caller=Caller(user=people.alice), version=version, environment="test", reason="t"
    )
    sign(people.bob, request.pk)
    refused = browser(people.victor).post(f"/approvals/{request.pk}/revoke/", {"reason": "no"})
    assert refused.status_code == 403
    assert "only a risk or compliance officer may revoke an approval" in text(refused)

    assert browser(people.rita).get(f"/approvals/{request.pk}/").context["can_revoke"] is True
    response = browser(people.rita).post(
        f"/approvals/{request.pk}/revoke/", {"reason": "data issue found"}
    )
    assert response.status_code == 302
    assert gate_on_review(people.rita, request.pk).reasons == ["revoked"]


def test_review_page_compares_with_the_live_version(people, model, ci):
    live = factories.model_version(
        people.alice, model, parameters={"depth": 4, "lr": 0.1}, metrics={"auc": 0.81}
    )
    deploy(ci, live, "dev")
    new = factories.model_version(
        people.alice, model, parameters={"depth": 6, "lr": 0.1, "l2": 1}, metrics={"auc": 0.84}
    )
    request = services.deployment_request_submit(
        caller=Caller(user=people.bob), version=new, environment="dev", reason="better"
    )
    response = browser(people.victor).get(f"/approvals/{request.pk}/")
    assert response.context["live"] == live
    diffs = dict(response.context["diffs"])
    assert {(d.name, d.change) for d in diffs["Parameters"]} == {
        ("depth", "changed"),
        ("lr", "same"),
        ("l2", "added"),
    }
    assert [(d.name, d.live, d.requested) for d in diffs["Metrics"]] == [("auc", 0.81, 0.84)]
    body = text(response)
    assert live.artifact_digest in body and new.artifact_digest in body


def test_review_page_shows_lineage(people, model):
    data = factories.dataset(people.alice, name="applications")
    train = factories.dataset_version(people.alice, data)
    version = factories.model_version(
        people.alice,
        model,
        datasets=[DatasetRef(dataset="applications", version=train.version, role="training")],
    )
    request = services.deployment_request_submit(
        caller=Caller(user=people.alice), version=version, environment="dev", reason="go"
    )
    response = browser(people.alice).get(f"/approvals/{request.pk}/")
    (row,) = response.context["lineage"]["datasets"]
    assert row["dataset"] == "applications" and row["role"] == "training"
    assert train.content_digest in text(response)

"""The unrecorded gate status, signatures bound to the content shown (API and forms), and the
break-glass pages (the emergency request and the retrospective review through the forms)."""

from __future__ import annotations

import json
import re

import pytest

from audit.models import AuditRecord
from governance.approvals.models import DeploymentRequest, GateCheck, SignOff
from tests.apitools import assert_error, last_seq, records_since
from tests.approvals.conftest import FixtureEvidence, provided_evidence
from tests.approvals.test_forms import browser, request_for, shown_content, text
from tests.conftest import PASSWORD, client_for, client_with_key

pytestmark = pytest.mark.django_db


def question(version, environment="prod", digest=None):
    return {
        "model": version.model.name,
        "version": version.version,
        "environment": environment,
        "digest": digest or version.artifact_digest,
    }


def test_gate_status_answers_like_the_gate_and_records_nothing(people, version, ci, ci_key):
    request_for(version, "prod", people.bob, ci)
    seq = last_seq()
    checks = GateCheck.objects.count()

    response = client_with_key(ci_key).get("/api/v1/gate/status", question(version))

    assert response.status_code == 200, response.content
    status = response.json()
    assert set(status) == {"allowed", "status", "reasons", "request", "signoffs"}
    assert status["allowed"] is False and status["status"] == "pending"
    assert status["reasons"][0] == "pending_step:validation"
    assert records_since(seq) == []
    assert GateCheck.objects.count() == checks
    recorded = client_with_key(ci_key).get("/api/v1/gate", question(version)).json()
    assert {k: recorded[k] for k in status} == status
    assert [r.action for r in records_since(seq)] == ["gate.checked"]


def test_gate_status_http_errors_are_those_of_the_gate(api, version, ci_key, alice, admin_user):
    from core.accounts.callers import Caller
    from governance.accounts.services import api_key_create

    assert api.get("/api/v1/gate/status", question(version)).status_code == 401
    key, _ = api_key_create(
        caller=Caller(user=admin_user, auth="cli"),
        user=alice,
        name="no gate scope",
        scopes=["deployments:write"],
    )
    assert client_with_key(key).get("/api/v1/gate/status", question(version)).status_code == 403
    client = client_with_key(ci_key)
    assert_error(client.get("/api/v1/gate/status", {**question(version), "version": 9}), 404)
    assert_error(client.get("/api/v1/gate/status", {**question(version), "digest": "md5:x"}), 400)
    assert_error(client.get("/api/v1/gate/status", {**question(version), "pipeline_run": "x"}), 400)
    assert not GateCheck.objects.exists()


def test_gate_status_is_in_the_openapi_schema(api, admin_user):
    schema = client_for(admin_user).get("/api/schema/", {"format": "json"})
    if schema.status_code != 200:
        pytest.skip(f"no schema endpoint at /api/schema/ ({schema.status_code})")
    paths = json.loads(schema.content)["paths"]
    answer = paths["/api/v1/gate/status"]["get"]["responses"]["200"]
    assert "GateStatus" in json.dumps(answer)
    assert "/api/v1/deployment-requests/{request_id}/signing-content" in paths


def preview(user, request_id, **query):
    response = client_for(user).get(
        f"/api/v1/deployment-requests/{request_id}/signing-content", query
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_api_signature_with_the_shown_digest_signs_it(people, version, ci):
    request = request_for(version, "prod", people.bob, ci)
    shown = preview(people.victor, request.pk, decision="approve")
    assert shown["step"] == "validation" and "signed_at" not in shown["content"]

    response = client_for(people.victor).post(
        f"/api/v1/deployment-requests/{request.pk}/sign",
        {
            "decision": "approve",
            "password": PASSWORD,
            "expected_content_sha256": shown["sha256"],
            "acknowledge_evidence": True,
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    signoff = SignOff.objects.get(request=request)
    unsigned = {k: v for k, v in signoff.signed_content.items() if k != "signed_at"}
    assert unsigned == shown["content"]


def test_api_signature_refused_when_the_evidence_changed_since_shown(people, version, ci):
    request = request_for(version, "prod", people.bob, ci)
    shown = preview(people.victor, request.pk, decision="approve")  # no evidence yet
    seq = last_seq()

    with provided_evidence({"fairness": FixtureEvidence("fairness")}):
        response = client_for(people.victor).post(
            f"/api/v1/deployment-requests/{request.pk}/sign",
            {
                "decision": "approve",
                "password": PASSWORD,
                "expected_content_sha256": shown["sha256"],
            },
            format="json",
        )

    assert_error(response, 409, code="content_changed")
    assert not SignOff.objects.filter(request=request).exists()
    (record,) = records_since(seq)
    data = json.loads(record.body)["data"]
    assert record.action == "signoff.refused" and data["code"] == "content_changed"


def test_api_rejects_a_malformed_expected_digest(people, version, ci):
    request = request_for(version, "prod", people.bob, ci)
    response = client_for(people.victor).post(
        f"/api/v1/deployment-requests/{request.pk}/sign",
        {"decision": "approve", "password": PASSWORD, "expected_content_sha256": "abc"},
        format="json",
    )
    assert_error(response, 400)
    assert not SignOff.objects.filter(request=request).exists()


def test_form_signature_refused_when_the_evidence_changed_since_the_page(people, version, ci):
    request = request_for(version, "prod", people.bob, ci)
    client = browser(people.victor)
    page = client.get(f"/approvals/{request.pk}/sign/")
    form = {
        "decision": "approve",
        "meaning": "review",
        "password": PASSWORD,
        "acknowledge_evidence": "on",
        "shown_content": shown_content(page),
    }
    seq = last_seq()

    with provided_evidence({"fairness": FixtureEvidence("fairness", passed=False)}):
        response = client.post(f"/approvals/{request.pk}/sign/", form)
        assert response.status_code == 409, text(response)
        assert "has changed since it was shown to you" in text(response)
        (record,) = records_since(seq)
        assert json.loads(record.body)["data"]["code"] == "content_changed"
        assert not SignOff.objects.filter(request=request).exists()
        # The page shown again carries what it shows now: signing from it works.
        again = client.post(
            f"/approvals/{request.pk}/sign/", {**form, "shown_content": shown_content(response)}
        )
    assert again.status_code == 302, text(again)
    assert SignOff.objects.filter(request=request, signer=people.victor).exists()


def test_form_choosing_reject_is_bound_to_the_reject_content(people, version, ci):
    request = request_for(version, "prod", people.bob, ci)
    client = browser(people.victor)
    page = client.get(f"/approvals/{request.pk}/sign/")
    response = client.post(
        f"/approvals/{request.pk}/sign/",
        {
            "decision": "reject",
            "meaning": "review",
            "password": PASSWORD,
            "comment": "no",
            "shown_content": shown_content(page),
        },
    )
    assert response.status_code == 302, text(response)
    request.refresh_from_db()
    assert request.state == "rejected"


def test_form_without_what_was_shown_signs_nothing(people, version, ci):
    request = request_for(version, "prod", people.bob, ci)
    seq = last_seq()
    response = browser(people.victor).post(
        f"/approvals/{request.pk}/sign/",
        {"decision": "approve", "meaning": "review", "password": PASSWORD},
    )
    assert response.status_code == 400
    assert "did not say what it showed you" in text(response)
    assert records_since(seq) == []
    assert not SignOff.objects.filter(request=request).exists()


def emergency(user, version, *, reason="outage: the live model mis-scores", password=PASSWORD):
    return browser(user).post(
        "/approvals/emergency/",
        {
            "model_version": version.pk,
            "environment": "prod",
            "reason": reason,
            "password": password,
        },
    )


def test_risk_officer_breaks_the_glass_through_the_form(rita, version, ci_key):
    page = browser(rita).get("/approvals/emergency/")
    assert page.status_code == 200 and 'for="id_password"' in text(page)
    seq = last_seq()

    response = emergency(rita, version)

    assert response.status_code == 302, text(response)
    request_id = int(re.fullmatch(r"/approvals/(\d+)/", response["Location"]).group(1))
    found = DeploymentRequest.objects.get(pk=request_id)
    assert found.state == "emergency" and found.requester == rita
    (record,) = records_since(seq)
    assert record.action == "deployment_request.emergency_opened"
    assert client_with_key(ci_key).get("/api/v1/gate", question(version)).json()["allowed"]
    review = browser(rita).get(response["Location"])
    assert "Retrospective review" in text(review)


def test_emergency_needs_the_break_glass_role_and_is_recorded(alice, victor, version):
    assert browser(victor).get("/approvals/emergency/").status_code == 403
    seq = last_seq()
    response = emergency(victor, version)
    assert response.status_code == 403
    assert "break_glass" in text(response)
    (record,) = records_since(seq)
    assert record.action == "deployment_request.refused"
    assert not DeploymentRequest.objects.exists()


def test_emergency_justification_is_mandatory(rita, version):
    seq = last_seq()
    response = emergency(rita, version, reason="   ")
    assert response.status_code == 400
    assert "This field is required." in text(response)
    assert records_since(seq) == []
    assert not DeploymentRequest.objects.exists()


def test_emergency_wrong_password_is_refused_and_recorded(rita, version):
    seq = last_seq()
    response = emergency(rita, version, password="nope")
    assert response.status_code == 403
    assert "wrong password" in text(response)
    (record,) = records_since(seq)
    assert record.action == "signoff.reauthentication_failed"
    assert not DeploymentRequest.objects.exists()


@pytest.fixture
def broken_glass(rita, version):
    response = emergency(rita, version)
    assert response.status_code == 302
    return DeploymentRequest.objects.get(state="emergency")


def retrospective(user, request, *, decision="approve", password=PASSWORD):
    return browser(user).post(
        f"/approvals/{request.pk}/retrospective/",
        {"decision": decision, "comment": "justified", "password": password},
    )


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("rita", "requester_cannot_sign"),
        ("alice", "author_cannot_sign"),
        ("bob", "role_required"),
    ],
)
def test_retrospective_form_refuses_separation_of_duties(people, broken_glass, who, code):
    user = getattr(people, who)
    page = browser(user).get(f"/approvals/{broken_glass.pk}/retrospective/")
    assert page.status_code == 200 and "You cannot sign this review" in text(page)
    seq = last_seq()
    response = retrospective(user, broken_glass)
    assert response.status_code == 403, text(response)
    (record,) = records_since(seq)
    data = json.loads(record.body)["data"]
    assert record.action == "signoff.refused" and data["code"] == code
    assert not SignOff.objects.filter(request=broken_glass).exists()


def test_retrospective_form_wrong_password_is_refused(people, broken_glass):
    response = retrospective(people.victor, broken_glass, password="nope")
    assert response.status_code == 403
    assert "wrong password" in text(response)
    assert not SignOff.objects.filter(request=broken_glass).exists()


def test_validator_signs_the_retrospective_review_through_the_form(people, broken_glass):
    page = browser(people.victor).get(f"/approvals/{broken_glass.pk}/retrospective/")
    assert page.status_code == 200 and broken_glass.reason in text(page)
    seq = last_seq()

    response = retrospective(people.victor, broken_glass)

    assert response.status_code == 302, text(response)
    signoff = SignOff.objects.get(request=broken_glass)
    assert signoff.step == "retrospective" and signoff.signer == people.victor
    (record,) = records_since(seq)
    assert record.action == "signoff.signed"
    again = retrospective(people.carl, broken_glass)
    assert again.status_code == 409
    assert AuditRecord.objects.filter(action="signoff.signed").count() == 1

"""The acceptance scenario through the API: a high-risk model goes dev -> test -> prod; the
seeded prod policy denies at every step with the right reason, and allows once both
validators, the risk officer and the compliance officer signed and the evidence exists."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditRecord
from audit.verifier import check_signature_record
from governance.approvals import services
from governance.approvals.models import DeploymentRequest, SignOff
from tests import factories
from tests.apitools import assert_error, last_seq, only_record_since, records_since
from tests.approvals.conftest import FixtureEvidence, approve_through, deploy, provided_evidence
from tests.conftest import PASSWORD, client_for, client_with_key

pytestmark = pytest.mark.django_db


def gate(key, version, environment, digest=None):
    response = client_with_key(key).get(
        "/api/v1/gate",
        {
            "model": version.model.name,
            "version": version.version,
            "environment": environment,
            "digest": digest or version.artifact_digest,
            "pipeline_run": "https://ci.example.org/run/1",
            "commit": "abc123",
        },
    )
    assert response.status_code == 200, response.content
    return response.json()


def sign(user, request_id, decision="approve", password=PASSWORD, **extra):
    return client_for(user).post(
        f"/api/v1/deployment-requests/{request_id}/sign",
        {"decision": decision, "password": password, "acknowledge_evidence": True, **extra},
        format="json",
    )


def test_high_risk_model_goes_dev_test_prod_denied_at_every_step(people, version, ci_key):
    alice, bob, victor, vera, rita, carl = (
        people.alice,
        people.bob,
        people.victor,
        people.vera,
        people.rita,
        people.carl,
    )
    owner = client_for(alice)

    # dev: no steps, approved at request time, still recorded.
    assert gate(ci_key, version, "dev")["reasons"] == ["not_requested"]
    response = owner.post(
        "/api/v1/deployment-requests/",
        {"model": "credit-score", "version": 1, "environment": "dev", "reason": "try it"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["state"] == "approved"
    answer = gate(ci_key, version, "dev")
    assert answer["allowed"] is True and answer["reasons"] == []
    report = client_with_key(ci_key).post(
        "/api/v1/deployments/",
        {
            "model": "credit-score",
            "version": 1,
            "environment": "dev",
            "event": "deployed",
            "check_id": answer["check_id"],
        },
        format="json",
    )
    assert report.status_code == 201, report.content
    assert report.json()["unchecked"] is False

    # test: one reviewer other than the requester.
    request = owner.post(
        "/api/v1/deployment-requests/",
        {"model": "credit-score", "version": 1, "environment": "test", "reason": "qa"},
        format="json",
    ).json()
    assert gate(ci_key, version, "test")["reasons"] == ["pending_step:review"]
    assert sign(bob, request["id"]).status_code == 201
    answer = gate(ci_key, version, "test")
    assert answer["allowed"] is True
    client_with_key(ci_key).post(
        "/api/v1/deployments/",
        {"model": "credit-score", "version": 1, "environment": "test", "event": "deployed"},
        format="json",
    )

    # prod: two validators, the risk officer, the compliance officer, plus evidence.
    evidence_missing = ["evidence_missing:fairness", "evidence_missing:drift"]
    assert gate(ci_key, version, "prod")["reasons"] == ["not_requested", *evidence_missing]
    request = owner.post(
        "/api/v1/deployment-requests/",
        {"model": "credit-score", "version": 1, "environment": "prod", "reason": "go live"},
        format="json",
    ).json()
    assert request["policy"] == {"environment": "prod", "risk_tier": "high", "version": 1}
    expected = [
        (victor, "pending_step:validation"),
        (vera, "pending_step:risk_approval"),
        (rita, "pending_step:compliance_approval"),
    ]
    assert gate(ci_key, version, "prod")["reasons"] == [
        "pending_step:validation",
        *evidence_missing,
    ]
    for signer, after in expected:
        assert sign(signer, request["id"]).status_code == 201
        answer = gate(ci_key, version, "prod")
        assert answer["allowed"] is False
        assert answer["reasons"] == [after, *evidence_missing]
    assert sign(carl, request["id"], meaning="responsibility").status_code == 201

    # Every signature given; the evidence is what is missing (until the reports exist).
    answer = gate(ci_key, version, "prod")
    assert answer == {
        **answer,
        "allowed": False,
        "status": "approved",
        "reasons": evidence_missing,
        "request": request["id"],
    }
    assert [s["printed_name"] for s in answer["signoffs"]] == [
        "Victor Vance",
        "Vera Valdez",
        "Rita Rossi",
        "Carl Cruz",
    ]

    # With the evidence provided through the evidence seam, the gate allows.
    with provided_evidence(
        {"fairness": FixtureEvidence("fairness"), "drift": FixtureEvidence("drift")}
    ):
        answer = gate(ci_key, version, "prod")
        assert answer["allowed"] is True, answer
        assert answer["reasons"] == []
        # A different artifact is still denied.
        other = gate(ci_key, version, "prod", digest=factories.digest("tampered"))
        assert other["allowed"] is False
        assert other["reasons"] == ["digest_mismatch"]

    # Every gate check was recorded; the log and the signatures verify.
    record = AuditRecord.objects.get(seq=answer["audit_seq"])
    assert record.action == "gate.checked"
    assert json.loads(record.body)["data"]["check_id"] == answer["check_id"]
    for signature in AuditRecord.objects.filter(action="signoff.signed"):
        assert check_signature_record(json.loads(signature.body)) is None
    call_command("audit_verify")


@pytest.mark.parametrize(
    "drift",
    [
        ({"passed": False}, "evidence_failed:drift"),
        ({"age": dt.timedelta(days=31)}, "evidence_stale:drift"),
    ],
)
def test_failed_or_stale_evidence_denies(people, version, ci, ci_key, drift):
    kind_status, reason = drift
    deploy(ci, version, "dev")
    deploy(ci, version, "test")
    approve_through(
        version, "prod", people.alice, people.victor, people.vera, people.rita, people.carl
    )
    with provided_evidence(
        {
            "fairness": FixtureEvidence("fairness"),
            "drift": FixtureEvidence("drift", **kind_status),
        }
    ):
        assert gate(ci_key, version, "prod")["reasons"] == [reason]


def test_a_different_digest_is_denied(alice, version, ci_key):
    approve_through(version, "dev", alice)
    answer = gate(ci_key, version, "dev", digest=factories.digest("something else"))
    assert answer["allowed"] is False
    assert answer["reasons"] == ["digest_mismatch"]


def test_skipping_test_is_denied(alice, version, ci, ci_key, passing_evidence):
    deploy(ci, version, "dev")
    seq = last_seq()
    response = client_for(alice).post(
        "/api/v1/deployment-requests/",
        {"model": "credit-score", "version": 1, "environment": "prod", "reason": "skip"},
        format="json",
    )
    error = assert_error(response, 409, code="conflict")
    assert "previous_environment_missing" in error["message"]
    record, body = only_record_since(seq)
    assert record.action == "deployment_request.refused"
    assert body["data"]["code"] == "conflict"
    assert "previous_environment_missing" in gate(ci_key, version, "prod")["reasons"]


def test_a_rolled_back_version_does_not_count_as_deployed_before(alice, bob, version, ci, ci_key):
    deploy(ci, version, "dev")
    approve_through(version, "test", alice, bob)
    deploy(ci, version, "test")
    deploy(ci, version, "test", event="rolled_back")
    assert "previous_environment_missing" in gate(ci_key, version, "prod")["reasons"]


def test_an_expired_approval_is_denied(people, version, ci, ci_key, monkeypatch):
    deploy(ci, version, "dev")
    request = approve_through(version, "test", people.alice, people.bob)
    assert gate(ci_key, version, "test")["allowed"] is True
    later = timezone.now() + dt.timedelta(days=31)
    monkeypatch.setattr(services.timezone, "now", lambda: later)
    answer = gate(ci_key, version, "test")
    assert answer["allowed"] is False
    assert answer["status"] == "expired"
    assert answer["reasons"] == ["expired"]

    seq = last_seq()
    assert services.deployment_requests_expire_due() == 1
    record, body = only_record_since(seq)
    assert record.action == "deployment_request.expired"
    assert body["actor"]["type"] == "system"
    request.refresh_from_db()
    assert request.state == "expired"
    assert gate(ci_key, version, "test")["reasons"] == ["expired"]


def test_a_revoked_approval_is_denied(people, version, ci, ci_key):
    deploy(ci, version, "dev")
    request = approve_through(version, "test", people.alice, people.bob)
    seq = last_seq()
    response = client_for(people.rita).post(
        f"/api/v1/deployment-requests/{request.pk}/revoke",
        {"reason": "model card is wrong"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "revoked"
    record, _ = only_record_since(seq)
    assert record.action == "deployment_request.revoked"
    assert gate(ci_key, version, "test")["reasons"] == ["revoked"]


def test_rejection_by_one_signer_rejects_the_request(alice, victor, version, ci, ci_key):
    deploy(ci, version, "dev")
    deploy(ci, version, "test")
    request = services.deployment_request_submit(
        caller=services.Caller(user=alice), version=version, environment="prod", reason="x"
    )
    response = client_for(victor).post(
        f"/api/v1/deployment-requests/{request.pk}/reject",
        {"password": PASSWORD, "comment": "fairness not shown"},
        format="json",
    )
    assert response.status_code == 201, response.content
    request.refresh_from_db()
    assert request.state == "rejected"
    assert "rejected" in gate(ci_key, version, "prod")["reasons"]


def test_withdraw_by_the_requester(alice, bob, version, ci, ci_key):
    deploy(ci, version, "dev")
    request = services.deployment_request_submit(
        caller=services.Caller(user=alice), version=version, environment="test", reason="x"
    )
    refused = client_for(bob).post(
        f"/api/v1/deployment-requests/{request.pk}/withdraw", {"reason": "no"}, format="json"
    )
    assert_error(refused, 403, code="permission_denied")
    seq = last_seq()
    response = client_for(alice).post(
        f"/api/v1/deployment-requests/{request.pk}/withdraw", {"reason": "oops"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["state"] == "withdrawn"
    record, _ = only_record_since(seq)
    assert record.action == "deployment_request.withdrawn"
    assert gate(ci_key, version, "test")["reasons"] == ["not_requested"]
    again = client_for(alice).post(
        f"/api/v1/deployment-requests/{request.pk}/withdraw", {"reason": "oops"}, format="json"
    )
    assert_error(again, 409, code="transition_not_allowed")


@pytest.mark.usefixtures("alice", "bob")
def test_a_wait_after_the_last_signature_delays_the_gate(people, admin_user, version, ci, ci_key):
    alice, bob = people.alice, people.bob
    services.signoff_policy_publish(
        caller=services.Caller(user=admin_user),
        environment="test",
        risk_tier="high",
        steps=[{"name": "review", "roles": ["data_scientist"], "meaning": "review"}],
        wait_seconds=3600,
    )
    deploy(ci, version, "dev")
    approve_through(version, "test", alice, bob)
    reasons = gate(ci_key, version, "test")["reasons"]
    assert len(reasons) == 1 and reasons[0].startswith("waiting_until:")


def test_a_request_keeps_the_policy_version_it_started_under(alice, bob, admin_user, version, ci):
    deploy(ci, version, "dev")
    request = services.deployment_request_submit(
        caller=services.Caller(user=alice), version=version, environment="test", reason="x"
    )
    policy = services.signoff_policy_publish(
        caller=services.Caller(user=admin_user),
        environment="test",
        risk_tier="high",
        steps=[{"name": "validation", "roles": ["validator"], "required": 2}],
    )
    assert policy.version == 2
    services.signoff_sign(
        caller=services.Caller(user=bob), request=request, decision="approve", password=PASSWORD
    )
    request.refresh_from_db()
    assert request.state == "approved"
    assert request.policy.version == 1


def test_gate_http_errors_never_mean_denied(api, version, gate_only_key, ci_key, alice):
    query = {
        "model": "credit-score",
        "version": 1,
        "environment": "dev",
        "digest": version.artifact_digest,
    }
    assert api.get("/api/v1/gate", query).status_code == 401
    assert client_with_key("wdn_bad_key").get("/api/v1/gate", query).status_code == 401
    assert_error(client_with_key(ci_key).get("/api/v1/gate", {**query, "version": 9}), 404)
    assert_error(client_with_key(ci_key).get("/api/v1/gate", {**query, "model": "nope"}), 404)
    assert_error(
        client_with_key(ci_key).get("/api/v1/gate", {**query, "digest": "md5:x"}),
        400,
        field="digest",
    )
    assert_error(
        client_with_key(ci_key).get("/api/v1/gate", {**query, "environment": "staging"}),
        400,
        field="environment",
    )
    seq = last_seq()
    assert client_with_key(gate_only_key).get("/api/v1/gate", query).status_code == 200
    record, body = only_record_since(seq)
    assert record.action == "gate.checked"
    assert body["data"]["allowed"] is False
    assert body["data"]["reasons"] == ["not_requested"]


def test_gate_key_cannot_report_deployments(gate_only_key, version):
    response = client_with_key(gate_only_key).post(
        "/api/v1/deployments/",
        {"model": "credit-score", "version": 1, "environment": "dev", "event": "deployed"},
        format="json",
    )
    assert_error(response, 403)


def test_a_deployment_without_an_allowing_check_is_flagged(version, ci_key):
    seq = last_seq()
    response = client_with_key(ci_key).post(
        "/api/v1/deployments/",
        {"model": "credit-score", "version": 1, "environment": "dev", "event": "deployed"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["unchecked"] is True
    record, body = only_record_since(seq)
    assert record.action == "deployment.deployed"
    assert body["data"]["alert"] == "deployed_without_allowing_gate_check"


def test_a_rollback_changes_the_live_answer_at_the_right_instant(alice, model, version, ci):
    v2 = factories.model_version(alice, model)
    t0 = timezone.now() - dt.timedelta(hours=3)
    deploy(ci, version, "dev", at=t0)
    deploy(ci, v2, "dev", at=t0 + dt.timedelta(hours=1))
    deploy(ci, v2, "dev", event="rolled_back", at=t0 + dt.timedelta(hours=2))
    client = client_for(alice)

    def live_at(moment):
        response = client.get("/api/v1/environments/dev/live", {"at": moment.isoformat()})
        assert response.status_code == 200, response.content
        return [(entry["model"], entry["version"]) for entry in response.json()["live"]]

    assert live_at(t0 - dt.timedelta(seconds=1)) == []
    assert live_at(t0) == [("credit-score", 1)]
    assert live_at(t0 + dt.timedelta(minutes=59)) == [("credit-score", 1)]
    assert live_at(t0 + dt.timedelta(hours=1)) == [("credit-score", 2)]
    assert live_at(t0 + dt.timedelta(hours=2) - dt.timedelta(microseconds=1)) == [
        ("credit-score", 2)
    ]
    assert live_at(t0 + dt.timedelta(hours=2)) == [("credit-score", 1)]
    deploy(ci, version, "dev", event="retired", at=t0 + dt.timedelta(hours=2, minutes=30))
    assert live_at(t0 + dt.timedelta(hours=3)) == []

    history = client.get("/api/v1/models/credit-score/deployments", {"environment": "dev"})
    assert [(e["version"], e["event"]) for e in history.json()["results"]] == [
        (1, "deployed"),
        (2, "deployed"),
        (2, "rolled_back"),
        (1, "retired"),
    ]


def test_rolling_back_a_version_that_is_not_live_is_refused(version, ci_key):
    seq = last_seq()
    response = client_with_key(ci_key).post(
        "/api/v1/deployments/",
        {"model": "credit-score", "version": 1, "environment": "dev", "event": "rolled_back"},
        format="json",
    )
    assert_error(response, 409)
    record, _ = only_record_since(seq)
    assert record.action == "deployment.refused"


def test_live_of_a_stranger_hides_models_out_of_scope(charlie, version, ci):
    deploy(ci, version, "dev")
    response = client_for(charlie).get("/api/v1/environments/dev/live")
    assert response.json()["live"] == []
    assert client_for(charlie).get("/api/v1/environments/nope/live").status_code == 404


def test_break_glass_then_retrospective_review(alice, rita, carl, version, ci_key):
    refused = client_for(alice).post(
        "/api/v1/deployment-requests/emergency",
        {
            "model": "credit-score",
            "version": 1,
            "environment": "prod",
            "reason": "outage",
            "password": PASSWORD,
        },
        format="json",
    )
    assert_error(refused, 403, code="permission_denied")
    response = client_for(rita).post(
        "/api/v1/deployment-requests/emergency",
        {
            "model": "credit-score",
            "version": 1,
            "environment": "prod",
            "reason": "outage: the old model mis-scores everyone",
            "password": PASSWORD,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    request = response.json()
    assert request["state"] == "emergency"
    assert request["retrospective_overdue"] is False
    answer = gate(ci_key, version, "prod")
    assert answer["allowed"] is True
    assert answer["status"] == "emergency"

    own = client_for(rita).post(
        f"/api/v1/deployment-requests/{request['id']}/retrospective",
        {"password": PASSWORD},
        format="json",
    )
    assert_error(own, 403, code="requester_cannot_sign")
    seq = last_seq()
    review = client_for(carl).post(
        f"/api/v1/deployment-requests/{request['id']}/retrospective",
        {"password": PASSWORD, "comment": "justified"},
        format="json",
    )
    assert review.status_code == 201, review.content
    record, body = only_record_since(seq)
    assert record.action == "signoff.signed"
    assert body["data"]["signed_content"]["step"] == "retrospective"
    assert check_signature_record(body) is None


def test_a_rejected_retrospective_review_revokes_the_break_glass_request(
    rita, carl, version, ci_key
):
    response = client_for(rita).post(
        "/api/v1/deployment-requests/emergency",
        {
            "model": "credit-score",
            "version": 1,
            "environment": "prod",
            "reason": "outage",
            "password": PASSWORD,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    request = response.json()
    assert gate(ci_key, version, "prod")["allowed"] is True
    seq = last_seq()
    review = client_for(carl).post(
        f"/api/v1/deployment-requests/{request['id']}/retrospective",
        {"password": PASSWORD, "decision": "reject", "comment": "not an emergency"},
        format="json",
    )
    assert review.status_code == 201, review.content
    record, body = only_record_since(seq)
    assert record.action == "signoff.signed" and body["data"]["request_state"] == "revoked"
    assert DeploymentRequest.objects.get(pk=request["id"]).state == "revoked"
    answer = gate(ci_key, version, "prod")
    assert answer["allowed"] is False and "revoked" in answer["reasons"]


def test_every_signature_is_bound_to_its_request_and_step(alice, bob, version, ci):
    deploy(ci, version, "dev")
    seq = last_seq()
    request = approve_through(version, "test", alice, bob)
    signoff = SignOff.objects.get(request=request)
    content = signoff.signed_content
    assert content["request"] == request.pk
    assert content["step"] == "review"
    assert content["artifact_digest"] == version.artifact_digest
    assert content["environment"] == "test"
    assert content["policy"]["version"] == 1
    assert content["printed_name"] == "Bob Baker"
    records = records_since(seq)
    assert [r.action for r in records] == ["deployment_request.submitted", "signoff.signed"]
    body = json.loads(records[1].body)
    assert body["data"]["signed_sha256"] == signoff.signed_sha256
    assert body["data"]["signed_content"] == content
    assert check_signature_record(body) is None
    moved = {**body, "data": {**body["data"], "signed_content": {**content, "step": "other"}}}
    assert check_signature_record(moved) == "signed_sha256 does not match the signed content"
    assert DeploymentRequest.objects.get(pk=request.pk).state == "approved"

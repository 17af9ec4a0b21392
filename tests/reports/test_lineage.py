"""Lineage reports (METRICS_SPEC section 3): a version's data, parents, commit, the sign-offs
of each request and the live intervals per environment, each fact with the seq of the audit
record that wrote it; completeness checks as the verdict; the PDF and its embedded JSON."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import subprocess

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditRecord
from core.accounts.callers import Caller
from governance.approvals import services as approvals
from governance.approvals.models import Environment
from governance.reports.lineage import live_intervals
from governance.reports.models import Report
from registry.services import DatasetRef
from tests import factories
from tests.approvals.conftest import PASSWORD, approve_through
from tests.audit.conftest import only_signing_key
from tests.conftest import client_for
from tests.reports.conftest import COMPAS, stored_files, upload
from tests.reports.test_acceptance import output_dir
from tests.reports.test_pdf import attachment_of, text_of
from tests.support import need

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def test_live_intervals_follow_deploy_replace_rollback_and_retire():
    events = [
        (1, "deployed", at(0), 1),
        (2, "deployed", at(1), 2),  # v2 replaces v1
        (2, "rolled_back", at(2), 2),  # v1 live again
        (1, "retired", at(3), 1),
        (1, "deployed", at(4), 1),
    ]
    assert live_intervals(events, 1) == [
        {"from": at(0).isoformat(), "until": at(1).isoformat(),
         "started_by": "deployed", "ended_by": "replaced by v2"},
        {"from": at(2).isoformat(), "until": at(3).isoformat(),
         "started_by": "rollback of v2", "ended_by": "retired"},
        {"from": at(4).isoformat(), "until": None, "started_by": "deployed", "ended_by": None},
    ]  # fmt: skip
    assert live_intervals(events, 2) == [
        {"from": at(1).isoformat(), "until": at(2).isoformat(),
         "started_by": "deployed", "ended_by": "rolled_back"},
    ]  # fmt: skip
    assert live_intervals(events, 3) == []


def test_a_version_rolled_back_while_another_is_live_changes_nothing_for_it():
    events = [(1, "deployed", at(0), 1), (2, "deployed", at(1), 2), (1, "rolled_back", at(2), 1)]
    # v1 was not live when it was rolled back: v2 stays live, v1's interval ended at v2.
    assert [i["ended_by"] for i in live_intervals(events, 1)] == ["replaced by v2"]
    assert live_intervals(events, 2)[0]["until"] is None


def gated_deploy(ci: Caller, version, environment: str, when: dt.datetime, event="deployed"):
    """What a pipeline does: ask the gate, then report the deployment with the check's id."""
    env = Environment.objects.get(name=environment)
    check_id = None
    if event == "deployed":
        answer = approvals.gate_check(
            caller=ci, version=version, environment=env, digest=version.artifact_digest
        )
        assert answer.check.allowed, answer.check.reasons
        check_id = answer.check.check_id
    return approvals.deployment_report(
        caller=ci, version=version, environment=environment, event=event, occurred_at=when,
        check_id=check_id, pipeline_run=f"https://ci.example/run/{environment}", commit="9f2c1e7",
    )  # fmt: skip


@pytest.fixture
def credit(people, ci):
    return deployed_credit_model(people, ci)


def deployed_credit_model(people, ci):
    """A medium-risk model: v1 trained on PII data, deployed dev -> test -> prod through the
    seeded policies; v2 (parent v1) deployed to dev and rolled back, so v1 is live again."""
    alice = people.alice
    model = factories.registered_model(
        alice, name="credit-limit", risk_tier="medium", team=alice.groups.get(name="credit-risk")
    )
    applications = factories.dataset(alice, name="applications", pii=True)
    factories.dataset_version(alice, applications, row_count=120_000, pii=True)
    factories.dataset_version(alice, applications, row_count=150_000, pii=True)
    holdout = factories.dataset(alice, name="holdout")
    factories.dataset_version(alice, holdout, row_count=20_000)
    v1 = factories.model_version(
        alice, model, source_commit="4be1c0ffee", training_run_id="run-17",
        datasets=[DatasetRef("applications", 1, "training"), DatasetRef("holdout", 1, "test")],
    )  # fmt: skip
    v2 = factories.model_version(
        alice, model, source_commit="77aa12", parent_version=1,
        datasets=[DatasetRef("applications", 2, "training")],
    )  # fmt: skip
    now = timezone.now()
    approve_through(v1, "dev", alice)  # dev's policy has no step: approved at once
    gated_deploy(ci, v1, "dev", now - dt.timedelta(days=9))
    approve_through(v1, "test", alice, people.bob)
    gated_deploy(ci, v1, "test", now - dt.timedelta(days=8))
    approve_through(v1, "prod", alice, people.victor, people.rita)
    gated_deploy(ci, v1, "prod", now - dt.timedelta(days=7))
    approve_through(v2, "dev", alice)
    gated_deploy(ci, v2, "dev", now - dt.timedelta(days=3))
    gated_deploy(ci, v2, "dev", now - dt.timedelta(days=2), event="rolled_back")
    return v1, v2


def lineage_report(post, user, version) -> tuple[dict, dict]:
    response = post(user, kind="lineage", model=version.model.name, version=version.version)
    assert response.status_code == 202, response.json()
    body = client_for(user).get(f"/api/v1/reports/{response.json()['id']}").json()
    assert body["status"] == "done", body
    return body, json.loads(Report.objects.get(pk=body["id"]).result_json)


def first_seq(object_type: str, object_id) -> int:
    return (
        AuditRecord.objects.filter(object_type=object_type, object_id=str(object_id))
        .order_by("seq")
        .values_list("seq", flat=True)[0]
    )


def test_lineage_report_of_a_deployed_version(people, credit, post):
    v1, _ = credit
    finding = approvals.finding_open(
        caller=Caller(user=people.victor), version=v1, title="Thin data for applicants over 70",
        severity="medium", owner=people.alice,
    )  # fmt: skip
    approvals.finding_resolve(
        caller=Caller(user=people.rita), finding=finding, resolution="Accepted: monitored monthly"
    )
    body, result = lineage_report(post, people.rita, v1)
    assert body["verdict"] == "pass"
    assert body["summary"] == {
        "verdict": "pass", "verdict_reasons": [], "parents": 0, "datasets": 2, "requests": 3,
        "signoffs": 3, "deployments": 3, "live_now": ["dev", "test", "prod"],
    }  # fmt: skip
    assert body["inputs"] == [] and body["policy_label"].startswith("none")
    subject = result["model_version"]
    assert subject["source_commit"] == "4be1c0ffee" and subject["training_run_id"] == "run-17"
    assert subject["audit_seq"] == first_seq("model_version", v1.pk)
    datasets = {(d["dataset"], d["version"]): d for d in result["datasets"]}
    assert set(datasets) == {("applications", 1), ("holdout", 1)}
    training = datasets["applications", 1]
    assert training["role"] == "training" and training["pii"] is True
    assert training["row_count"] == 120_000
    assert training["content_digest"].startswith("sha256:")
    # Sign-offs per request, in order, with printed names and the record that holds each.
    requests = {r["environment"]: r for r in result["requests"]}
    assert [s["printed_name"] for s in requests["test"]["signoffs"]] == [people.bob.get_full_name()]
    prod = requests["prod"]
    assert prod["state"] == "approved"
    assert [(s["step"], s["printed_name"]) for s in prod["signoffs"]] == [
        ("validation", people.victor.get_full_name()),
        ("risk_approval", people.rita.get_full_name()),
    ]
    for signoff in prod["signoffs"]:
        record = AuditRecord.objects.get(seq=signoff["audit_seq"])
        body_data = json.loads(record.body)
        assert record.action == "signoff.signed"
        assert body_data["data"]["signed_sha256"] == signoff["signed_sha256"]
    # Deployments, each relying on its gate check, and the live intervals.
    assert all(not d["unchecked"] and d["gate_check"] for d in result["deployments"])
    live = {(row["environment"], row["started_by"]): row for row in result["live"]}
    assert set(live) == {("dev", "deployed"), ("dev", "rollback of v2"), ("test", "deployed"),
                         ("prod", "deployed")}  # fmt: skip
    assert live["dev", "deployed"]["ended_by"] == "replaced by v2"
    assert live["dev", "rollback of v2"]["until"] is None
    # Findings, with the record that raised each.
    [listed] = result["findings"]
    assert (listed["id"], listed["status"], listed["resolved_by"]) == (
        finding.pk,
        "resolved",
        "rita",
    )
    assert listed["audit_seq"] == first_seq("finding", finding.pk)
    # The graph joins the prod deployment to the request whose approval the gate relied on.
    assert [d["request"] for d in result["deployments"] if d["environment"] == "prod"] == [
        prod["id"]
    ]
    # Beside the record, the gate's answer for the registered artifact, as CI would hear it.
    assert [row["environment"] for row in result["gate"]] == ["dev", "test", "prod"]
    for row in result["gate"]:
        asked = client_for(people.rita).get(
            "/api/v1/gate/status",
            {"model": v1.model.name, "version": 1, "environment": row["environment"],
             "digest": v1.artifact_digest},
        ).json()  # fmt: skip
        assert (row["allowed"], row["reasons"]) == (asked["allowed"], asked["reasons"])


def test_parent_versions_and_their_data_are_part_of_the_lineage(people, credit, post):
    _, v2 = credit
    _, result = lineage_report(post, people.alice, v2)
    assert [(p["version"], p["source_commit"]) for p in result["parents"]] == [(1, "4be1c0ffee")]
    assert {(d["used_by"], d["dataset"], d["version"]) for d in result["datasets"]} == {
        (2, "applications", 2), (1, "applications", 1), (1, "holdout", 1),
    }  # fmt: skip
    assert [(r["environment"], r["state"], r["signoffs"]) for r in result["requests"]] == [
        ("dev", "approved", [])
    ]
    assert [(r["environment"], r["ended_by"]) for r in result["live"]] == [("dev", "rolled_back")]
    assert result["live_now"] == []


def test_an_incomplete_record_fails_with_one_reason_per_gap(people, ci, post, monkeypatch):
    alice = people.alice
    model = factories.registered_model(
        alice, name="churn", risk_tier="low", team=alice.groups.get(name="credit-risk")
    )
    version = factories.model_version(alice, model)  # no data, no commit
    # CI reports a deployment the gate never allowed, and a break-glass deployment's review
    # is overdue (opened with a review window that has already passed).
    monkeypatch.setattr(approvals.emergency, "RETROSPECTIVE_DUE", -dt.timedelta(hours=1))
    approvals.deployment_report(caller=ci, version=version, environment="dev", event="deployed")
    request = approvals.deployment_emergency(
        caller=Caller(user=people.rita), version=version, environment="test",
        reason="outage", password=PASSWORD,
    )  # fmt: skip
    body, result = lineage_report(post, alice, version)
    assert body["verdict"] == "fail"
    failed = {c["name"]: c["detail"] for c in result["checks"] if not c["passed"]}
    assert set(failed) == {"training_data", "source_commit", "gated_deployments", "retrospectives"}
    assert "dev at" in failed["gated_deployments"]
    assert f"#{request.pk}" in failed["retrospectives"]
    assert len(body["summary"]["verdict_reasons"]) == 4


def test_lineage_takes_no_inputs_and_stores_nothing_when_given_one(
    people, credit, post, report_dirs
):
    before = Report.objects.count(), AuditRecord.objects.count()
    response = post(
        people.alice, kind="lineage", model="credit-limit", version=1, evaluation=upload(COMPAS),
        label="two_year_recid",
    )  # fmt: skip
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"evaluation", "label"}
    assert (Report.objects.count(), AuditRecord.objects.count()) == before
    assert stored_files(report_dirs["uploads"]) == []
    assert post(people.alice, kind="lineage", model="credit-limit", version=9).status_code == 404


def test_a_version_out_of_scope_is_not_found(credit, post, charlie):
    response = post(charlie, kind="lineage", model="credit-limit", version=1)
    assert response.status_code == 404


def test_the_lineage_pdf_shows_the_graph_the_signatures_and_embeds_the_result(
    people, credit, post, tmp_path
):
    need(shutil.which("pdftoppm") is not None, "poppler-utils", "apt-get install poppler-utils")
    v1, _ = credit
    body, result = lineage_report(post, people.rita, v1)
    response = client_for(people.rita).get(f"/api/v1/reports/{body['id']}/pdf")
    assert response.status_code == 200
    name = "api-lineage-credit-limit-v1"
    pdf = output_dir() / f"{name}.pdf"
    pdf.write_bytes(b"".join(response.streaming_content))
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(pdf), str(output_dir() / name)], check=True)
    text = text_of(pdf)
    assert "Lineage report" in text and "Lineage record complete" in text
    for person in (people.bob, people.victor, people.rita):
        assert person.get_full_name() in text
    assert "replaced by v2" in text and "rollback of v2" in text
    assert "4be1c0ffee" in text and "applications v1" in text
    attached, data = attachment_of(pdf, tmp_path)
    assert attached == f"warden-report-{body['id']}.json"
    assert json.loads(data) == result


def test_a_models_export_renders_for_the_regulator_with_its_signatures(
    people, credit, settings, tmp_path
):
    """The audit records of the deployed model, exported from the database (a filtered
    bundle with inclusion proofs), verified and rendered with every e-signature listed."""
    need(shutil.which("pdftotext") is not None, "poppler-utils", "apt-get install poppler-utils")
    signer = only_signing_key(settings, tmp_path, publish=True)
    bundle = tmp_path / "credit-limit.zip"
    call_command("audit_export", "--out", str(bundle), "--model", "credit-limit",
                 stdout=io.StringIO())  # fmt: skip
    pdf = output_dir() / "regulator-export-credit-limit.pdf"
    printed = io.StringIO()
    call_command(
        "audit_export_pdf", str(bundle), "--key", signer.verifier().key_string(),
        "--out", str(pdf), "--json", stdout=printed,
    )  # fmt: skip
    document = json.loads(printed.getvalue())
    assert document["verdict"] == "pass"
    assert document["verification"]["kind"] == "partial"
    warnings = {f["code"] for f in document["verification"]["findings"]}
    assert warnings == {"W_PARTIAL"}
    names = [s["printed_name"] for s in document["signatures"]]
    assert names == [p.get_full_name() for p in (people.bob, people.victor, people.rita)]
    text = text_of(pdf)
    assert "Every record proven in the log" in text and "Filtered export" in text
    for person in (people.bob, people.victor, people.rita):
        assert person.get_full_name() in text
    subprocess.run(
        ["pdftoppm", "-r", "50", "-png", str(pdf), str(output_dir() / pdf.stem)], check=True
    )

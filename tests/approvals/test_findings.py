"""Findings (SR 11-7's effective challenge): validators and officers raise them against a
version; an open high or critical finding blocks the gate (``open_finding:<id>``) until
someone independent of the model resolves it; everything is recorded, refusals included."""

from __future__ import annotations

import json

import pytest

from audit.models import AuditRecord
from core.roles import Role
from tests.apitools import (
    assert_error,
    assert_no_record_since,
    assert_unauthenticated,
    last_seq,
    only_record_since,
)
from tests.approvals.conftest import approve_through
from tests.approvals.test_scenario import gate
from tests.conftest import add_to_groups, client_for, client_with_key

pytestmark = pytest.mark.django_db


def findings_url(version) -> str:
    return f"/api/v1/models/{version.model.name}/versions/{version.version}/findings"


def raise_finding(user, version, **fields):
    body = {"title": "Calibration drifts for applicants over 60", "severity": "high",
            "owner": "alice", **fields}  # fmt: skip
    return client_for(user).post(findings_url(version), body, format="json")


def test_an_open_high_finding_blocks_the_gate_until_an_independent_officer_resolves_it(
    alice, victor, rita, version, ci_key
):
    approve_through(version, "dev", alice)
    assert gate(ci_key, version, "dev")["allowed"] is True
    seq = last_seq()
    response = raise_finding(victor, version, due_date="2026-12-31")
    assert response.status_code == 201, response.json()
    finding = response.json()
    assert (finding["status"], finding["blocks_gate"], finding["owner"]) == ("open", True, "alice")
    record, body = only_record_since(seq)
    assert (record.action, body["object"]["type"]) == ("finding.opened", "finding")
    assert body["data"]["severity"] == "high" and body["data"]["due_date"] == "2026-12-31"

    answer = gate(ci_key, version, "dev")
    assert answer["allowed"] is False
    assert answer["reasons"] == [f"open_finding:{finding['id']}"]
    # A low finding is recorded but does not block.
    assert raise_finding(victor, version, severity="low").status_code == 201
    assert gate(ci_key, version, "dev")["reasons"] == [f"open_finding:{finding['id']}"]

    seq = last_seq()
    resolved = client_for(rita).post(
        f"/api/v1/findings/{finding['id']}/resolve",
        {"resolution": "Recalibrated in v1's monitoring; accepted with a quarterly review."},
        format="json",
    )
    assert resolved.status_code == 200, resolved.json()
    assert (resolved.json()["status"], resolved.json()["resolved_by"]) == ("resolved", "rita")
    record, body = only_record_since(seq)
    assert record.action == "finding.resolved"
    assert body["data"]["before"]["status"] == "open"
    assert body["data"]["after"]["status"] == "resolved"
    assert body["reason"].startswith("Recalibrated")
    assert gate(ci_key, version, "dev")["allowed"] is True
    # Resolved once: a second resolution is a conflict.
    again = client_for(rita).post(
        f"/api/v1/findings/{finding['id']}/resolve", {"resolution": "again"}, format="json"
    )
    assert_error(again, 409)
    listed = client_for(alice).get(findings_url(version)).json()["results"]
    assert [f["severity"] for f in listed] == ["low", "high"]


def test_only_validators_and_officers_raise_findings_and_refusals_are_recorded(alice, version):
    seq = last_seq()
    assert_error(raise_finding(alice, version), 403)
    record, body = only_record_since(seq)
    assert record.action == "finding.refused"
    assert "validator" in body["data"]["message"]


def test_the_models_own_people_cannot_resolve_its_findings(alice, victor, version):
    finding = raise_finding(victor, version).json()
    # Alice is the model's owner and the version's author; a validator role does not change it.
    add_to_groups(alice, Role.VALIDATOR)
    seq = last_seq()
    refused = client_for(alice).post(
        f"/api/v1/findings/{finding['id']}/resolve", {"resolution": "fixed"}, format="json"
    )
    assert_error(refused, 403)
    assert refused.json()["error"]["code"] == "finding_needs_independent_resolver"
    record, _ = only_record_since(seq)
    assert record.action == "finding.refused"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"severity": "urgent"}, "severity"),
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"owner": "nobody"}, "owner"),
        ({"due_date": "next week"}, "due_date"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_input_names_the_field_and_records_nothing(victor, version, fields, field):
    seq = last_seq()
    response = raise_finding(victor, version, **fields)
    assert_error(response, 400)
    assert field in response.json()["error"]["fields"]
    assert_no_record_since(seq)


def test_unknown_or_invisible_versions_are_not_found(victor, charlie, version, api):
    assert_unauthenticated(api.get(findings_url(version)))
    unknown = client_for(victor).post(
        f"/api/v1/models/{version.model.name}/versions/9/findings",
        {"title": "t", "severity": "low", "owner": "alice"},
        format="json",
    )
    assert_error(unknown, 404)
    finding = raise_finding(victor, version).json()
    assert_error(client_for(charlie).get(findings_url(version)), 404)
    assert_error(client_for(charlie).get(f"/api/v1/findings/{finding['id']}"), 404)
    assert_error(client_for(victor).get("/api/v1/findings/999999"), 404)


def test_a_pipeline_key_reads_findings_but_never_raises_or_resolves_them(victor, version, ci_key):
    finding = raise_finding(victor, version).json()
    client = client_with_key(ci_key)
    assert client.get(findings_url(version)).status_code == 200
    assert client.get(f"/api/v1/findings/{finding['id']}").json()["title"] == finding["title"]
    seq = last_seq()
    assert_error(
        client.post(findings_url(version), {"title": "t", "severity": "low", "owner": "alice"},
                    format="json"),
        403,
    )  # fmt: skip
    assert_error(
        client.post(f"/api/v1/findings/{finding['id']}/resolve", {"resolution": "r"},
                    format="json"),
        403,
    )  # fmt: skip
    assert_no_record_since(seq)
    records = AuditRecord.objects.filter(action="finding.opened")
    assert [json.loads(r.body)["data"]["id"] for r in records] == [finding["id"]]

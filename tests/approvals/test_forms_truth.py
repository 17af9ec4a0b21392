"""Forms that say what is true: the meaning is the step's, a rejection needs a comment,
approving while evidence is not passing needs an acknowledgement kept in the signature, an
approved request the gate denies says so, open findings show, and actions are offered only
to those who may take them. Also the audit admin's actor names and the findings admin."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditRecord
from audit.verifier import check_signature_record
from core.accounts.callers import Caller
from governance.accounts.services import user_flags_change
from governance.approvals import readable, services
from governance.approvals.models import SignOff
from tests.apitools import assert_error, last_seq, records_since
from tests.approvals.conftest import approve_through, deploy
from tests.approvals.test_forms import browser, request_for, shown_content, sign, text
from tests.conftest import PASSWORD, client_for

pytestmark = pytest.mark.django_db

MISSING = [{"kind": "fairness", "status": "missing"}, {"kind": "drift", "status": "missing"}]


@pytest.fixture
def prod_request(people, version, ci):
    return request_for(version, "prod", people.bob, ci)


def post_sign(user, request_id, **fields):
    client = browser(user)
    page = client.get(f"/approvals/{request_id}/sign/")
    form = {"decision": "approve", "password": PASSWORD, "shown_content": shown_content(page)}
    return client.post(f"/approvals/{request_id}/sign/", {**form, **fields})


def test_sign_form_shows_the_steps_meaning_and_offers_no_choice(people, prod_request):
    page = browser(people.victor).get(f"/approvals/{prod_request.pk}/sign/")
    body = text(page)
    assert page.status_code == 200
    assert 'name="meaning" value="review"' in body and 'type="radio" name="meaning"' not in body
    assert "Meaning of your signature" in body and "<strong>Review</strong>" in body
    # One bound digest per decision, both with the step's meaning.
    assert sorted(v.rsplit(":", 1)[0] for v in shown_content(page)) == [
        "approve:review",
        "reject:review",
    ]


def test_form_signature_with_another_meaning_is_refused(people, prod_request):
    response = post_sign(
        people.victor, prod_request.pk, meaning="approval", acknowledge_evidence="on"
    )
    assert response.status_code == 400
    assert "A signature on this step means “Review”" in text(response)
    assert not SignOff.objects.filter(request=prod_request).exists()


def test_api_signature_with_another_meaning_is_refused(people, prod_request):
    response = client_for(people.victor).post(
        f"/api/v1/deployment-requests/{prod_request.pk}/sign",
        {"decision": "approve", "meaning": "approval", "password": PASSWORD,
         "acknowledge_evidence": True},
        format="json",
    )  # fmt: skip
    error = assert_error(response, 400, field="meaning")
    assert "means 'review', not 'approval'" in error["message"]
    assert not SignOff.objects.filter(request=prod_request).exists()


def test_form_rejection_without_a_comment_is_refused(people, prod_request):
    response = post_sign(people.victor, prod_request.pk, decision="reject", comment="  ")
    assert response.status_code == 400
    assert response.context["form"].errors["comment"] == ["Say why you reject the request."]
    assert not SignOff.objects.filter(request=prod_request).exists()
    prod_request.refresh_from_db()
    assert prod_request.state == "pending"


def test_api_rejection_without_a_comment_is_refused(people, prod_request):
    for path, body in [
        ("reject", {"password": PASSWORD}),
        ("sign", {"decision": "reject", "password": PASSWORD, "comment": ""}),
    ]:
        response = client_for(people.victor).post(
            f"/api/v1/deployment-requests/{prod_request.pk}/{path}", body, format="json"
        )
        error = assert_error(response, 400, field="comment")
        assert error["message"] == "a rejection needs a comment saying why"
    assert not SignOff.objects.filter(request=prod_request).exists()


def test_a_rejection_with_a_comment_needs_no_acknowledgement(people, prod_request):
    response = post_sign(people.victor, prod_request.pk, decision="reject", comment="no fairness")
    assert response.status_code == 302, text(response)
    signoff = SignOff.objects.get(request=prod_request)
    assert signoff.comment == "no fairness" and signoff.evidence_acknowledged == []


def test_form_approval_while_evidence_is_missing_needs_the_acknowledgement(people, prod_request):
    page = browser(people.victor).get(f"/approvals/{prod_request.pk}/sign/")
    assert "fairness: missing; drift: missing" in text(page)

    refused = post_sign(people.victor, prod_request.pk)
    assert refused.status_code == 400
    assert refused.context["form"].errors["acknowledge_evidence"] == [
        "Acknowledge the evidence not passing: fairness (missing), drift (missing)."
    ]
    assert not SignOff.objects.filter(request=prod_request).exists()

    seq = last_seq()
    signed = post_sign(people.victor, prod_request.pk, acknowledge_evidence="on")
    assert signed.status_code == 302, text(signed)
    signoff = SignOff.objects.get(request=prod_request)
    assert signoff.evidence_acknowledged == MISSING
    assert signoff.signed_content["evidence_acknowledged"] == MISSING
    (record,) = records_since(seq)
    body = json.loads(record.body)
    assert record.action == "signoff.signed"
    assert body["data"]["evidence_acknowledged"] == MISSING
    assert body["data"]["signed_content"]["evidence_acknowledged"] == MISSING
    assert check_signature_record(body) is None  # bound into the signed digest

    review = text(browser(people.alice).get(f"/approvals/{prod_request.pk}/"))
    assert "Acknowledged evidence not passing: fairness (missing), drift (missing)." in review


def test_api_approval_while_evidence_is_missing_needs_acknowledge_evidence(people, prod_request):
    url = f"/api/v1/deployment-requests/{prod_request.pk}/sign"
    refused = client_for(people.victor).post(
        url, {"decision": "approve", "password": PASSWORD}, format="json"
    )
    error = assert_error(
        refused, 400, field="acknowledge_evidence", code="evidence_not_acknowledged"
    )
    assert "fairness (missing), drift (missing)" in error["message"]
    assert not SignOff.objects.filter(request=prod_request).exists()

    signed = client_for(people.victor).post(
        url, {"decision": "approve", "password": PASSWORD, "acknowledge_evidence": True},
        format="json",
    )  # fmt: skip
    assert signed.status_code == 201, signed.content
    assert signed.json()["evidence_acknowledged"] == MISSING


def test_approval_with_passing_evidence_acknowledges_nothing(
    people, prod_request, passing_evidence
):
    response = post_sign(people.victor, prod_request.pk)
    assert response.status_code == 302, text(response)
    signoff = SignOff.objects.get(request=prod_request)
    assert signoff.evidence_acknowledged == []
    assert "evidence_acknowledged" not in signoff.signed_content


def test_approved_request_the_gate_denies_says_it_is_blocked(people, version, ci):
    approve_through(version, "dev", people.alice)
    deploy(ci, version, "dev")
    deploy_test = approve_through(version, "test", people.alice, people.bob)
    deploy(ci, version, "test")
    prod = approve_through(
        version, "prod", people.bob, people.victor, people.vera, people.rita, people.carl
    )
    assert prod.state == "approved" and deploy_test.state == "approved"

    review = text(browser(people.alice).get(f"/approvals/{prod.pk}/"))
    assert (
        'Approved, blocked at the gate</span> <span class="state-blocked">by: fairness '
        "evidence is missing; drift evidence is missing</span>"
    ) in review
    listing = text(browser(people.alice).get("/approvals/?state=approved"))
    assert "by: fairness evidence is missing; drift evidence is missing" in listing
    # The test request the gate allows reads plainly "Approved".
    test_review = text(browser(people.alice).get(f"/approvals/{deploy_test.pk}/"))
    assert "blocked at the gate" not in test_review and "✓ Approved" in test_review


def test_review_page_shows_open_findings_and_which_blocks_the_gate(people, version, prod_request):
    high = services.finding_open(
        caller=Caller(user=people.victor), version=version, title="Calibration drifts",
        severity="high", owner=people.alice, due_date=dt.date(2030, 1, 31),
    )  # fmt: skip
    services.finding_open(
        caller=Caller(user=people.victor), version=version, title="Docs thin",
        severity="low", owner=people.alice,
    )  # fmt: skip
    page = browser(people.rita).get(f"/approvals/{prod_request.pk}/")
    body = text(page)
    assert f"open finding #{high.pk}" in body.lower()
    assert f"Blocks the gate:</strong> open high finding #{high.pk} “Calibration drifts”" in body
    assert "Docs thin" in body and "Does not block" in body
    assert [row["blocks"] for row in page.context["findings"]] == [True, False]
    assert 'href="/models/credit-score/"' in body


def test_request_a_report_is_offered_to_who_may_request_reports(people, audrey, prod_request):
    link = "/reports/new/?model=credit-score&version=1"
    assert link in text(browser(people.victor).get(f"/approvals/{prod_request.pk}/"))
    assert link not in text(browser(audrey).get(f"/approvals/{prod_request.pk}/"))


def test_the_auditor_is_offered_no_action(people, audrey, prod_request):
    listing = text(browser(audrey).get("/approvals/"))
    assert "Request a deployment" not in listing
    review = browser(audrey).get(f"/approvals/{prod_request.pk}/")
    body = text(review)
    assert review.context["can_sign"] is False
    assert "Sign this request" not in body and "Withdraw" not in body and "Revoke" not in body
    assert "You cannot sign" not in body  # no signing role: nothing to explain


def test_sign_is_offered_only_to_who_may_sign_the_step_now(people, prod_request):
    def offered(user) -> bool:
        return "Sign this request" in text(browser(user).get(f"/approvals/{prod_request.pk}/"))

    assert offered(people.victor)
    assert not offered(people.bob)  # the requester
    assert not offered(people.rita)  # the risk step is not the current one
    page = text(browser(people.rita).get(f"/approvals/{prod_request.pk}/"))
    assert "You cannot sign the current step:" in page
    assert "Request a deployment" in text(browser(people.alice).get("/approvals/"))


def test_revoke_is_offered_to_officers_only(people, version):
    approved = approve_through(version, "dev", people.alice)
    assert browser(people.rita).get(f"/approvals/{approved.pk}/").context["can_revoke"] is True
    assert browser(people.victor).get(f"/approvals/{approved.pk}/").context["can_revoke"] is False


def test_plural_signatures_and_relative_times(people, version, ci):
    request = request_for(version, "test", people.alice, ci)
    assert sign(people.bob, request.pk, comment="ok").status_code == 302
    body = text(browser(people.alice).get(f"/approvals/{request.pk}/"))
    assert "(1 signature)" in body and "signature(s)" not in body
    assert "1 of 1 signature ·" not in body and "1 of 1 signature<" in body.replace("</span>", "<")
    assert "(just now)" in body and "0 minutes" not in body


@pytest.mark.parametrize(
    ("delta", "phrase"),
    [
        (dt.timedelta(seconds=5), "just now"),
        (dt.timedelta(seconds=65), "1 minute ago"),
        (dt.timedelta(minutes=5), "5 minutes ago"),
        (dt.timedelta(hours=1, minutes=20), "1 hour ago"),
        (dt.timedelta(days=3), "3 days ago"),
        (-dt.timedelta(days=2, hours=1), "in 2 days"),
    ],
)
def test_relative_time(delta, phrase):
    now = timezone.now()
    assert readable.relative_time(now - delta, now) == phrase


def test_reason_codes_read_as_words():
    assert readable.reasons_text(
        ["pending_step:validation", "evidence_stale:drift", "open_finding:7", "not_requested"]
    ) == (
        "waiting for the signature of step “validation”; drift evidence is out of date; "
        "open finding #7; no deployment request"
    )


def staff_client(user) -> Client:
    user_flags_change(caller=None, user=user, is_staff=True, reason="admin access")
    client = Client()
    client.force_login(user)
    return client


def test_audit_admin_lists_actors_by_name_and_finds_them_by_name(people, prod_request):
    client = staff_client(people.rita)
    page = client.get("/admin/audit/auditrecord/")
    assert page.status_code == 200
    body = text(page)
    assert "Bob Baker" in body  # who submitted the request
    assert f'<td class="field-actor">{people.bob.pk}</td>' not in body

    found = client.get("/admin/audit/auditrecord/", {"q": "Bob Baker"})
    rows = list(found.context["cl"].result_list)
    assert rows and {r.actor_id for r in rows} == {str(people.bob.pk)}
    assert AuditRecord.objects.filter(actor_id=str(people.bob.pk)).count() == len(rows)


def test_findings_are_visible_to_a_risk_officer_in_the_admin(people, version):
    services.finding_open(
        caller=Caller(user=people.victor), version=version, title="Calibration drifts",
        severity="high", owner=people.alice,
    )  # fmt: skip
    page = staff_client(people.rita).get("/admin/approvals/finding/")
    assert page.status_code == 200
    assert "Calibration drifts" in text(page) and "Alice Archer" in text(page)
    assert staff_client(people.alice).get("/admin/approvals/finding/").status_code == 403

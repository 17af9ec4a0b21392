"""Raising a finding from the pages: offered to the finding roles, refused (and recorded as
refused) for others, 404 for a version one may not see, every bad input a form error that
stores nothing; a high finding blocks the gate."""

from __future__ import annotations

import pytest

from audit.models import AuditRecord
from governance.approvals import selectors
from governance.approvals.models import Environment, Finding
from tests.approvals.test_forms import browser, text

pytestmark = pytest.mark.django_db


def url(version) -> str:
    return f"/approvals/findings/{version.model.name}/{version.version}/new/"


def test_a_validator_raises_a_high_finding_that_blocks_the_gate(alice, victor, version):
    page = browser(victor).get(url(version))
    assert page.status_code == 200
    assert "Raise a finding against" in text(page)
    assert "Alice Archer (alice)" in text(page)  # the owner, preselected by name
    response = browser(victor).post(
        url(version),
        {
            "title": "Calibration drifts for applicants over 60",
            "severity": "high",
            "owner": alice.pk,
            "due_date": "2027-01-15",
            "description": "Seen in the validation split.",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == f"/models/{version.model.name}/#findings"
    finding = Finding.objects.get()
    assert (finding.title, finding.severity, finding.owner, finding.raised_by) == (
        "Calibration drifts for applicants over 60",
        "high",
        alice,
        victor,
    )
    assert AuditRecord.objects.filter(action="finding.opened", object_id=str(finding.pk)).exists()
    decision = selectors.gate_decide(
        version=version,
        environment=Environment.objects.get(name="dev"),
        digest=version.artifact_digest,
    )
    assert f"open_finding:{finding.pk}" in decision.reasons


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"title": "", "severity": "high"}, "title", "This field is required."),
        ({"title": "x", "severity": "urgent"}, "severity", "Select a valid choice."),
        ({"title": "x", "severity": "low", "owner": 999999}, "owner", "Select a valid choice."),
        ({"title": "x", "severity": "low", "due_date": "soon"}, "due_date", "Enter a valid date."),
    ],
)
def test_bad_input_is_a_form_error_and_stores_nothing(
    alice, victor, version, *, fields, field, message
):
    before = AuditRecord.objects.count()
    response = browser(victor).post(url(version), {"owner": alice.pk, **fields})
    assert response.status_code == 400
    body = text(response)
    error = body.split(f'id="id_{field}-error-1">', 1)
    assert len(error) == 2, body
    assert message in error[1].split("</p>", 1)[0]
    assert not Finding.objects.exists()
    assert AuditRecord.objects.count() == before


def test_a_data_scientist_is_refused_and_the_refusal_recorded(alice, version):
    response = browser(alice).get(url(version))
    assert response.status_code == 403
    assert "You cannot raise a finding here" in text(response)
    assert 'class="card form"' not in text(response)  # no form offered
    assert AuditRecord.objects.filter(action="finding.refused").exists()


def test_a_version_one_may_not_see_is_404(charlie, version):
    assert browser(charlie).get(url(version)).status_code == 404
    missing = f"/approvals/findings/{version.model.name}/99/new/"
    assert browser(charlie).get(missing).status_code == 404

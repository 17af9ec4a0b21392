"""The verification endpoint: the whole chain re-checked, readable by the log's readers."""

from __future__ import annotations

import pytest
from django.db import connection

from audit import triggers
from audit.models import AuditRecord
from core.accounts.callers import Caller
from governance.accounts.services import api_key_create
from tests import factories
from tests.apitools import assert_error, assert_unauthenticated, last_seq
from tests.conftest import client_for, client_with_key

pytestmark = pytest.mark.django_db

VERIFY = "/api/v1/audit/verify"


@pytest.fixture
def activity(alice):
    for name in ("credit-score", "churn", "fraud"):
        factories.registered_model(alice, name=name)


def test_anonymous_cannot_verify_and_is_challenged(api, activity):
    assert_unauthenticated(api.get(VERIFY))


def test_gate_only_key_cannot_verify(gate_only_key, activity):
    assert_error(client_with_key(gate_only_key).get(VERIFY), 403)


def test_data_scientist_cannot_verify(alice, activity):
    assert_error(client_for(alice).get(VERIFY), 403)


def test_auditor_verifies_an_intact_log(audrey, activity):
    mark = last_seq()
    response = client_for(audrey).get(VERIFY)
    assert response.status_code == 200
    report = response.json()
    assert report["ok"] is True
    assert report["records"] == AuditRecord.objects.count()
    assert report["first_bad_seq"] is None
    assert report["findings"] == []
    assert report["last_seq"] == mark
    assert last_seq() == mark  # verifying writes nothing


def test_auditor_key_with_audit_scope_verifies(audrey, activity):
    key, _ = api_key_create(
        caller=Caller(user=audrey), user=audrey, name="k", scopes=["audit:read"]
    )
    assert client_with_key(key).get(VERIFY).json()["ok"] is True


def test_a_tampered_record_is_reported_with_its_seq(victor, activity):
    target = AuditRecord.objects.get(
        action="registered_model.created", object_id__isnull=False, scope_model="churn"
    )
    forged = target.body.replace('"risk_tier":"medium"', '"risk_tier":"low"')
    assert forged != target.body
    triggers.uninstall(connection)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE audit_auditrecord SET body = %s WHERE id = %s", [forged, target.pk]
            )
    finally:
        triggers.install(connection)
    report = client_for(victor).get(VERIFY).json()
    assert report["ok"] is False
    assert report["first_bad_seq"] == target.seq
    assert any(f["seq"] == target.seq for f in report["findings"])

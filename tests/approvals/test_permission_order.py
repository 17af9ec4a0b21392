"""Approvals judge who may act before what they sent: a caller who may see the request, the
version, the finding or the model but lacks the role or grant is refused with 403 (and the
refusal recorded, as every refusal here is) whatever the body; the same body from a caller
who may act is a 400, so each case would fail if the body were judged first."""

from __future__ import annotations

import json

import pytest

from audit.models import AuditRecord
from core.accounts.callers import Caller
from governance.approvals import services
from tests.apitools import assert_error, last_seq
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

BAD = {"unknown": True}  # refused by every approvals input serializer (400, field named)


@pytest.fixture
def targets(alice, victor, version):
    request = services.deployment_request_submit(
        caller=Caller(user=alice), version=version, environment="dev", reason="first deployment"
    )
    finding = services.finding_open(
        caller=Caller(user=victor), version=version, title="Drift", severity="low", owner=alice
    )
    name, number = version.model.name, version.version
    return {
        "withdraw": f"/api/v1/deployment-requests/{request.pk}/withdraw",
        "revoke": f"/api/v1/deployment-requests/{request.pk}/revoke",
        "finding": f"/api/v1/models/{name}/versions/{number}/findings",
        "resolve": f"/api/v1/findings/{finding.pk}/resolve",
        "grant": f"/api/v1/models/{name}/signing-grants",
        "ungrant": f"/api/v1/models/{name}/signing-grants/revoke",
    }


# (target, who is refused, the refusal's action, who may act)
CASES: list[tuple[str, str, str, str]] = [
    ("withdraw", "bob", "deployment_request.refused", "alice"),
    ("revoke", "alice", "deployment_request.refused", "rita"),
    ("finding", "alice", "finding.refused", "victor"),
    ("resolve", "alice", "finding.refused", "vera"),
    ("grant", "victor", "signing.refused", "rita"),
    ("ungrant", "victor", "signing.refused", "rita"),
]


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_a_caller_without_the_right_gets_403_not_400_for_a_bad_body(people, targets, case):
    target, refused, action, allowed = case
    mark = last_seq()
    response = client_for(getattr(people, refused)).post(targets[target], BAD, format="json")
    assert_error(response, 403)
    (record,) = AuditRecord.objects.filter(seq__gt=mark)
    assert record.action == action
    assert json.loads(record.body)["actor"]["id"] == str(getattr(people, refused).pk)

    judged = client_for(getattr(people, allowed)).post(targets[target], BAD, format="json")
    assert_error(judged, 400, field="unknown")

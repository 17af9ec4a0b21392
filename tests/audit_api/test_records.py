"""The audit records API: who may read, what an item carries, filters and cursors."""

from __future__ import annotations

import hashlib
import json

import pytest

from audit.models import AuditRecord
from core.accounts.callers import Caller
from governance.accounts.services import api_key_create
from registry import services
from tests import factories
from tests.apitools import assert_error, assert_no_record_since, assert_unauthenticated, last_seq
from tests.conftest import client_for, client_with_key

pytestmark = pytest.mark.django_db

RECORDS = "/api/v1/audit/records/"


@pytest.fixture
def activity(alice, rita, team):
    """Records of two models: created, described, risk changed; and a dataset."""
    model = factories.registered_model(alice, name="credit-score", risk_tier="high", team=team)
    services.model_update(caller=Caller(user=alice), model=model, description="Scores credit.")
    services.model_change_risk(
        caller=Caller(user=rita), model=model, risk_tier="critical", reason="EU AI Act"
    )
    factories.registered_model(alice, name="churn")
    factories.dataset(alice, name="applications")
    return model


def personal_key(user, *scopes):
    key, _ = api_key_create(caller=Caller(user=user), user=user, name="mine", scopes=list(scopes))
    return key


def listed(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_anonymous_cannot_read_the_log_and_is_challenged(api, activity):
    assert_unauthenticated(api.get(RECORDS))


def test_gate_only_key_cannot_read_the_log(gate_only_key, activity):
    error = assert_error(client_with_key(gate_only_key).get(RECORDS), 403)
    assert "audit:read" in error["message"]


def test_data_scientist_cannot_read_the_log(alice, activity):
    assert_error(client_for(alice).get(RECORDS), 403, code="permission_denied")


def test_audit_scope_does_not_lift_a_data_scientist_to_the_log(alice, activity):
    key = personal_key(alice, "audit:read")
    assert_error(client_with_key(key).get(RECORDS), 403)


def test_auditor_key_needs_the_audit_read_scope(audrey, activity):
    assert_error(client_with_key(personal_key(audrey, "registry:read")).get(RECORDS), 403)
    assert listed(client_with_key(personal_key(audrey, "audit:read")).get(RECORDS))


@pytest.mark.parametrize("reader", ["victor", "rita", "carl", "audrey", "admin_user"])
def test_roles_with_the_view_permission_read_the_log(request, activity, reader):
    user = request.getfixturevalue(reader)
    assert listed(client_for(user).get(RECORDS))


def test_an_item_carries_the_exact_body_and_its_leaf(audrey, activity):
    items = listed(client_for(audrey).get(f"{RECORDS}?action=registered_model.risk_changed"))
    [item] = items
    stored = AuditRecord.objects.get(seq=item["seq"])
    assert item["body"] == stored.body
    assert item["leaf"] == hashlib.sha256(b"\x00" + item["body"].encode("utf-8")).hexdigest()
    parsed = json.loads(item["body"])
    for name in ("seq", "ts", "action", "actor", "object", "scope", "data", "reason"):
        assert item[name] == parsed[name], name
    assert item["scope"] == {"model": "credit-score"}
    assert item["reason"] == "EU AI Act"
    assert item["actor"]["name"] == "Rita Rossi"


def test_records_without_reason_show_null(audrey, activity):
    [item] = listed(client_for(audrey).get(f"{RECORDS}?action=dataset.created"))
    assert item["reason"] is None


def test_filter_by_model_object_actor_and_action(audrey, alice, rita, activity):
    client = client_for(audrey)
    by_model = listed(client.get(f"{RECORDS}?model=credit-score"))
    assert [i["action"] for i in by_model] == [
        "registered_model.created",
        "registered_model.updated",
        "registered_model.risk_changed",
    ]
    by_object = listed(
        client.get(f"{RECORDS}?object_type=registered_model&object_id={activity.pk}")
    )
    assert [i["seq"] for i in by_object] == [i["seq"] for i in by_model]
    by_actor = listed(client.get(f"{RECORDS}?actor={rita.pk}"))
    assert [i["action"] for i in by_actor] == ["registered_model.risk_changed"]
    by_action = listed(client.get(f"{RECORDS}?action=registered_model.created"))
    assert [i["object"]["label"] for i in by_action] == ["credit-score", "churn"]
    assert listed(client.get(f"{RECORDS}?actor_type=service")) == []


def test_unknown_action_filter_is_400_naming_it(audrey, activity):
    response = client_for(audrey).get(RECORDS, {"action": "registered_model.renamed"})
    error = assert_error(response, 400, field="action")
    assert "registered_model.renamed" in str(error["fields"]["action"])


def test_filter_by_time_range(audrey, activity):
    client = client_for(audrey)
    everything = listed(client.get(RECORDS))
    middle = everything[2]["ts"]
    since = listed(client.get(RECORDS, {"since": middle}))
    until = listed(client.get(RECORDS, {"until": middle}))
    assert {i["seq"] for i in since} | {i["seq"] for i in until} == {i["seq"] for i in everything}
    assert all(i["ts"] >= middle for i in since)
    assert all(i["ts"] < middle for i in until)
    assert listed(client.get(RECORDS, {"since": "2999-01-01T00:00:00Z"})) == []


def test_bad_time_filter_is_400_naming_it(audrey, activity):
    assert_error(client_for(audrey).get(RECORDS, {"since": "yesterday"}), 400, field="since")


def test_cursor_pages_follow_seq_without_gaps_or_overlap(audrey, activity):
    client = client_for(audrey)
    seen: list[int] = []
    url: str | None = f"{RECORDS}?page_size=2"
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        payload = response.json()
        assert len(payload["results"]) <= 2
        seen.extend(item["seq"] for item in payload["results"])
        url = payload["next"]
        pages += 1
    assert pages >= 3
    assert seen == list(range(seen[0], seen[0] + len(seen)))
    assert seen == sorted(AuditRecord.objects.values_list("seq", flat=True))


def test_the_log_cannot_be_written_through_the_api(audrey, activity):
    mark = last_seq()
    response = client_for(audrey).post(RECORDS, {"action": "x.y"}, format="json")
    assert_error(response, 405)
    assert_no_record_since(mark)

"""The models API: list, register, read, describe, change risk, retire.

Each endpoint: anonymous 401 with the Bearer challenge, a key or role without the right 403,
out of scope 404, bad input 400 naming the field, an illegal transition 409, and success
leaving exactly its audit record (refusals leave none and change nothing).
"""

from __future__ import annotations

import datetime as dt

import pytest

from core.accounts.callers import Caller
from governance.accounts.services import api_key_create
from registry import services
from registry.models import RegisteredModel
from tests import factories
from tests.apitools import (
    actor,
    assert_bad_credential,
    assert_error,
    assert_no_record_since,
    assert_unauthenticated,
    last_seq,
    only_record_since,
    person,
)
from tests.conftest import client_for, client_with_key

pytestmark = pytest.mark.django_db

MODELS = "/api/v1/models/"


@pytest.fixture
def model(alice, team):
    return factories.registered_model(
        alice,
        name="credit-score",
        risk_tier="high",
        team=team,
        description="Scores credit applications.",
        sensitive_attributes=["age"],
    )


@pytest.fixture
def read_key(alice):
    """Alice's personal token that may only read the registry."""
    key, _ = api_key_create(
        caller=Caller(user=alice), user=alice, name="alice read", scopes=["registry:read"]
    )
    return key


def url(name: str, suffix: str = "") -> str:
    return f"{MODELS}{name}/{suffix}"


def test_anonymous_cannot_list_models_and_is_challenged(api, model):
    assert_unauthenticated(api.get(MODELS))


def test_unknown_api_key_is_401_with_challenge(model):
    assert_bad_credential(client_with_key("wdn_nope_nope").get(MODELS))


def test_gate_only_key_cannot_list_models(gate_only_key, model):
    error = assert_error(client_with_key(gate_only_key).get(MODELS), 403, code="permission_denied")
    assert "registry:read" in error["message"]


def test_owner_lists_her_model_with_people_named_by_username(alice, model):
    response = client_for(alice).get(MODELS)
    assert response.status_code == 200
    payload = response.json()
    assert payload["count"] == 1
    [item] = payload["results"]
    assert item["name"] == "credit-score"
    assert item["owner"] == "alice"
    assert item["team"] == "credit-risk"
    assert item["sensitive_attributes"] == ["age"]
    assert "id" not in item


def test_stranger_lists_no_models_of_others(charlie, model):
    response = client_for(charlie).get(MODELS)
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_validator_lists_every_model(victor, model, charlie):
    factories.registered_model(charlie, name="churn")
    response = client_for(victor).get(MODELS)
    assert [m["name"] for m in response.json()["results"]] == ["churn", "credit-score"]


def test_read_only_key_and_ci_key_list_models_of_their_team(read_key, ci_key, model):
    for key in (read_key, ci_key):
        response = client_with_key(key).get(MODELS)
        assert response.status_code == 200
        assert [m["name"] for m in response.json()["results"]] == ["credit-score"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("risk_tier=high", ["credit-score"]),
        ("risk_tier=low", ["churn"]),
        ("status=retired", ["churn"]),
        ("owner=alice", ["credit-score"]),
        ("owner=nobody", []),
        ("team=credit-risk", ["credit-score"]),
        ("search=applications", ["credit-score"]),
        ("search=CHU", ["churn"]),
    ],
)
def test_model_list_filters(victor, charlie, model, query, expected):
    churn = factories.registered_model(charlie, name="churn", risk_tier="low")
    services.model_retire(caller=Caller(user=charlie), model=churn, reason="replaced")
    response = client_for(victor).get(f"{MODELS}?{query}")
    assert response.status_code == 200
    assert [m["name"] for m in response.json()["results"]] == expected


def test_model_list_refuses_unknown_risk_tier_filter(victor, model):
    assert_error(client_for(victor).get(f"{MODELS}?risk_tier=extreme"), 400, field="risk_tier")


def test_model_list_is_paginated(victor, alice):
    for n in range(3):
        factories.registered_model(alice, name=f"model-{n}")
    response = client_for(victor).get(f"{MODELS}?page_size=2")
    payload = response.json()
    assert payload["count"] == 3
    assert len(payload["results"]) == 2
    assert payload["next"]


def new_model(**fields):
    return {"name": "fraud-detector", "risk_tier": "medium", **fields}


def test_anonymous_cannot_register_a_model(api, roles):
    mark = last_seq()
    assert_unauthenticated(api.post(MODELS, new_model(), format="json"))
    assert_no_record_since(mark)
    assert not RegisteredModel.objects.exists()


def test_gate_only_key_cannot_register_a_model(gate_only_key):
    mark = last_seq()
    response = client_with_key(gate_only_key).post(MODELS, new_model(), format="json")
    error = assert_error(response, 403, code="permission_denied")
    assert "registry:write" in error["message"]
    assert_no_record_since(mark)
    assert not RegisteredModel.objects.exists()


def test_read_only_key_cannot_register_a_model(read_key):
    mark = last_seq()
    assert_error(client_with_key(read_key).post(MODELS, new_model(), format="json"), 403)
    assert_no_record_since(mark)


def test_validator_cannot_register_a_model(victor):
    mark = last_seq()
    response = client_for(victor).post(MODELS, new_model(), format="json")
    assert_error(response, 403, code="permission_denied")
    assert_no_record_since(mark)
    assert not RegisteredModel.objects.exists()


@pytest.mark.parametrize("body", [{}, {"name": "no spaces allowed", "risk_tier": "none"}])
def test_a_role_that_may_not_register_models_is_refused_before_its_body_is_judged(victor, body):
    mark = last_seq()
    response = client_for(victor).post(MODELS, body, format="json")
    assert_error(response, 403, code="permission_denied")
    assert_no_record_since(mark)


def test_ci_account_without_a_role_cannot_register_a_model(ci_key):
    mark = last_seq()
    response = client_with_key(ci_key).post(MODELS, new_model(), format="json")
    assert_error(response, 403, code="permission_denied")
    assert_no_record_since(mark)


def test_data_scientist_registers_a_model_and_it_is_recorded(alice, team):
    mark = last_seq()
    response = client_for(alice).post(
        MODELS,
        new_model(
            description="Flags card fraud.",
            intended_use="Card transactions in the EU.",
            limitations="Not for wire transfers.",
            sensitive_attributes=["age", "sex"],
            next_review="2026-06-30",
            team="credit-risk",
        ),
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "fraud-detector"
    assert body["owner"] == "alice"
    assert body["team"] == "credit-risk"
    assert body["status"] == "active"
    model = RegisteredModel.objects.get(name="fraud-detector")
    record, parsed = only_record_since(mark)
    assert record.action == "registered_model.created"
    assert record.object_id == str(model.pk)
    assert parsed["actor"] == actor(alice)
    assert parsed["object"] == {
        "type": "registered_model",
        "id": str(model.pk),
        "label": "fraud-detector",
    }
    assert parsed["scope"] == {"model": "fraud-detector"}
    assert parsed["data"] == {
        "name": "fraud-detector",
        "description": "Flags card fraud.",
        "owner": person(alice),
        "team": "credit-risk",
        "risk_tier": "medium",
        "intended_use": "Card transactions in the EU.",
        "limitations": "Not for wire transfers.",
        "sensitive_attributes": ["age", "sex"],
        "last_validated": None,
        "next_review": "2026-06-30",
        "status": "active",
    }
    assert "reason" not in parsed


def test_registering_for_another_owner_names_them(alice, bob):
    response = client_for(alice).post(MODELS, new_model(owner="bob"), format="json")
    assert response.status_code == 201
    assert response.json()["owner"] == "bob"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "Not A Slug"}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"risk_tier": "extreme"}, "risk_tier"),
        ({"description": "d" * 5001}, "description"),
        ({"intended_use": "u" * 5001}, "intended_use"),
        ({"sensitive_attributes": "age"}, "sensitive_attributes"),
        ({"sensitive_attributes": ["a" * 101]}, "sensitive_attributes"),
        ({"sensitive_attributes": ["age", "age"]}, "sensitive_attributes"),
        ({"next_review": "next year"}, "next_review"),
        ({"team": "no-such-team"}, "team"),
        ({"owner": "nobody"}, "owner"),
        ({"status": "retired"}, "status"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_model_input_is_400_naming_the_field(alice, fields, field):
    mark = last_seq()
    response = client_for(alice).post(MODELS, new_model(**fields), format="json")
    assert_error(response, 400, field=field)
    assert_no_record_since(mark)
    assert not RegisteredModel.objects.exists()


def test_missing_risk_tier_is_400(alice):
    response = client_for(alice).post(MODELS, {"name": "fraud"}, format="json")
    error = assert_error(response, 400, field="risk_tier")
    assert error["message"].startswith("risk_tier:")


def test_service_account_cannot_own_a_model(alice, ci_account):
    mark = last_seq()
    response = client_for(alice).post(MODELS, new_model(owner="ci-credit"), format="json")
    assert_error(response, 400, field="owner")
    assert_no_record_since(mark)


def test_non_json_body_is_a_parse_error(alice):
    mark = last_seq()
    response = client_for(alice).post(MODELS, data="{not json", content_type="application/json")
    assert_error(response, 400, code="parse_error")
    assert_no_record_since(mark)


def test_duplicate_model_name_is_a_conflict(alice, bob, model):
    mark = last_seq()
    response = client_for(bob).post(MODELS, new_model(name="credit-score"), format="json")
    assert_error(response, 409, field="name", code="conflict")
    assert_no_record_since(mark)
    assert RegisteredModel.objects.get(name="credit-score").owner == alice


def test_anonymous_cannot_read_a_model(api, model):
    assert_unauthenticated(api.get(url("credit-score")))


def test_gate_only_key_cannot_read_a_model(gate_only_key, model):
    assert_error(client_with_key(gate_only_key).get(url("credit-score")), 403)


def test_stranger_gets_404_for_someone_elses_model(charlie, model):
    assert_error(client_for(charlie).get(url("credit-score")), 404, code="not_found")


def test_unknown_model_is_404(alice):
    assert_error(client_for(alice).get(url("no-such-model")), 404)


def test_teammate_and_validator_read_the_model(bob, victor, model):
    for user in (bob, victor):
        response = client_for(user).get(url("credit-score"))
        assert response.status_code == 200
        assert response.json()["risk_tier"] == "high"


def test_anonymous_cannot_change_a_model(api, model):
    assert_unauthenticated(api.patch(url("credit-score"), {"description": "x"}, format="json"))


def test_gate_only_key_cannot_change_a_model(gate_only_key, model):
    mark = last_seq()
    response = client_with_key(gate_only_key).patch(
        url("credit-score"), {"description": "x"}, format="json"
    )
    assert_error(response, 403)
    assert_no_record_since(mark)


def test_stranger_gets_404_changing_someone_elses_model(charlie, model):
    mark = last_seq()
    response = client_for(charlie).patch(url("credit-score"), {"description": "x"}, format="json")
    assert_error(response, 404)
    assert_no_record_since(mark)
    model.refresh_from_db()
    assert model.description == "Scores credit applications."


def test_validator_sees_but_cannot_change_a_model(victor, model):
    mark = last_seq()
    response = client_for(victor).patch(url("credit-score"), {"description": "x"}, format="json")
    assert_error(response, 403, code="permission_denied")
    assert_no_record_since(mark)


@pytest.mark.parametrize("field", ["risk_tier", "sensitive_attributes"])
def test_patch_refuses_risk_fields_and_points_to_the_risk_endpoint(alice, model, field):
    mark = last_seq()
    value = "low" if field == "risk_tier" else []
    response = client_for(alice).patch(url("credit-score"), {field: value}, format="json")
    error = assert_error(response, 400, field=field)
    assert "/risk" in error["message"]
    assert_no_record_since(mark)
    model.refresh_from_db()
    assert model.risk_tier == "high"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "renamed"}, "name"),
        ({"owner": "bob"}, "owner"),
        ({"status": "retired"}, "status"),
        ({"description": "d" * 5001}, "description"),
        ({"limitations": 12}, "limitations"),
        ({"next_review": "soon"}, "next_review"),
        ({"description": "ok", "reason": "r" * 2001}, "reason"),
        ({"reason": "nothing else"}, "non_field_errors"),
        ({}, "non_field_errors"),
    ],
)
def test_bad_model_change_is_400_naming_the_field(alice, model, payload, field):
    mark = last_seq()
    response = client_for(alice).patch(url("credit-score"), payload, format="json")
    assert_error(response, 400, field=field)
    assert_no_record_since(mark)


def test_teammate_changes_description_with_reason_and_it_is_recorded(bob, model):
    mark = last_seq()
    response = client_for(bob).patch(
        url("credit-score"),
        {"description": "Scores consumer credit.", "next_review": "2027-01-31", "reason": "audit"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["description"] == "Scores consumer credit."
    record, parsed = only_record_since(mark)
    assert record.action == "registered_model.updated"
    assert record.object_id == str(model.pk)
    assert parsed["actor"] == actor(bob)
    assert parsed["scope"] == {"model": "credit-score"}
    assert parsed["data"] == {
        "before": {"description": "Scores credit applications.", "next_review": None},
        "after": {"description": "Scores consumer credit.", "next_review": "2027-01-31"},
    }
    assert parsed["reason"] == "audit"
    model.refresh_from_db()
    assert model.next_review == dt.date(2027, 1, 31)


def test_unchanged_values_leave_no_record(alice, model):
    mark = last_seq()
    response = client_for(alice).patch(
        url("credit-score"), {"description": "Scores credit applications."}, format="json"
    )
    assert response.status_code == 200
    assert_no_record_since(mark)


def test_retired_model_cannot_be_changed(alice, model):
    services.model_retire(caller=Caller(user=alice), model=model, reason="replaced")
    mark = last_seq()
    response = client_for(alice).patch(url("credit-score"), {"description": "x"}, format="json")
    assert_error(response, 409, code="conflict")
    assert_no_record_since(mark)


def test_anonymous_cannot_change_risk(api, model):
    response = api.post(url("credit-score", "risk"), {"risk_tier": "low", "reason": "x"})
    assert_unauthenticated(response)


def test_gate_only_key_cannot_change_risk(gate_only_key, model):
    response = client_with_key(gate_only_key).post(
        url("credit-score", "risk"), {"risk_tier": "low", "reason": "x"}, format="json"
    )
    assert_error(response, 403)


def test_owner_is_not_a_risk_officer_and_cannot_change_risk(alice, model):
    mark = last_seq()
    response = client_for(alice).post(
        url("credit-score", "risk"), {"risk_tier": "low", "reason": "feels low"}, format="json"
    )
    error = assert_error(response, 403, code="permission_denied")
    assert "risk officer" in error["message"]
    assert_no_record_since(mark)
    model.refresh_from_db()
    assert model.risk_tier == "high"


def test_stranger_gets_404_changing_risk_of_someone_elses_model(charlie, model):
    response = client_for(charlie).post(
        url("credit-score", "risk"), {"risk_tier": "low", "reason": "x"}, format="json"
    )
    assert_error(response, 404)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"risk_tier": "low"}, "reason"),
        ({"risk_tier": "low", "reason": ""}, "reason"),
        ({"risk_tier": "extreme", "reason": "x"}, "risk_tier"),
        ({"sensitive_attributes": "age", "reason": "x"}, "sensitive_attributes"),
        ({"reason": "nothing to change"}, "non_field_errors"),
        ({"risk_tier": "low", "description": "x", "reason": "x"}, "description"),
    ],
)
def test_bad_risk_change_is_400_naming_the_field(rita, model, payload, field):
    mark = last_seq()
    response = client_for(rita).post(url("credit-score", "risk"), payload, format="json")
    assert_error(response, 400, field=field)
    assert_no_record_since(mark)
    model.refresh_from_db()
    assert model.risk_tier == "high"


def test_risk_officer_changes_risk_with_reason_and_it_is_recorded(rita, model):
    mark = last_seq()
    response = client_for(rita).post(
        url("credit-score", "risk"),
        {"risk_tier": "critical", "sensitive_attributes": ["age", "sex"], "reason": "EU AI Act"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["risk_tier"] == "critical"
    record, parsed = only_record_since(mark)
    assert record.action == "registered_model.risk_changed"
    assert record.object_id == str(model.pk)
    assert record.scope_model == "credit-score"
    assert parsed["actor"] == actor(rita)
    assert parsed["data"] == {
        "before": {"risk_tier": "high", "sensitive_attributes": ["age"]},
        "after": {"risk_tier": "critical", "sensitive_attributes": ["age", "sex"]},
    }
    assert parsed["reason"] == "EU AI Act"


def test_risk_of_a_retired_model_cannot_change(alice, rita, model):
    services.model_retire(caller=Caller(user=alice), model=model, reason="replaced")
    mark = last_seq()
    response = client_for(rita).post(
        url("credit-score", "risk"), {"risk_tier": "low", "reason": "x"}, format="json"
    )
    assert_error(response, 409)
    assert_no_record_since(mark)


def test_anonymous_cannot_retire_a_model(api, model):
    assert_unauthenticated(api.post(url("credit-score", "retire"), {"reason": "x"}))


def test_gate_only_key_cannot_retire_a_model(gate_only_key, model):
    response = client_with_key(gate_only_key).post(
        url("credit-score", "retire"), {"reason": "x"}, format="json"
    )
    assert_error(response, 403)


def test_stranger_gets_404_retiring_someone_elses_model(charlie, model):
    mark = last_seq()
    response = client_for(charlie).post(
        url("credit-score", "retire"), {"reason": "x"}, format="json"
    )
    assert_error(response, 404)
    assert_no_record_since(mark)


def test_validator_cannot_retire_a_model(victor, model):
    mark = last_seq()
    response = client_for(victor).post(
        url("credit-score", "retire"), {"reason": "x"}, format="json"
    )
    assert_error(response, 403)
    assert_no_record_since(mark)
    model.refresh_from_db()
    assert model.status == "active"


@pytest.mark.parametrize(("payload", "field"), [({}, "reason"), ({"reason": " "}, "reason")])
def test_retiring_needs_a_reason(alice, model, payload, field):
    mark = last_seq()
    response = client_for(alice).post(url("credit-score", "retire"), payload, format="json")
    assert_error(response, 400, field=field)
    assert_no_record_since(mark)


def test_owner_retires_her_model_and_it_is_recorded(alice, model):
    mark = last_seq()
    response = client_for(alice).post(
        url("credit-score", "retire"), {"reason": "replaced by v2 model"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "retired"
    record, parsed = only_record_since(mark)
    assert record.action == "registered_model.retired"
    assert record.object_id == str(model.pk)
    assert parsed["actor"] == actor(alice)
    assert parsed["data"]["status"] == "retired"
    assert parsed["data"]["name"] == "credit-score"
    assert parsed["reason"] == "replaced by v2 model"


def test_risk_officer_may_retire_any_model(rita, model):
    response = client_for(rita).post(url("credit-score", "retire"), {"reason": "x"}, format="json")
    assert response.status_code == 200


def test_retiring_twice_is_an_illegal_transition(alice, model):
    services.model_retire(caller=Caller(user=alice), model=model, reason="replaced")
    mark = last_seq()
    response = client_for(alice).post(url("credit-score", "retire"), {"reason": "x"}, format="json")
    assert_error(response, 409, code="transition_not_allowed")
    assert_no_record_since(mark)

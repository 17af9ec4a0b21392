"""Fields that decide what a model may be used for and how a dataset's personal data is
handled change only with a reason; a model's owner is someone who builds models on its team.

The API answers 400 naming ``reason`` (or ``owner``) and records nothing; the admin shows the
form again with the error and records nothing.
"""

from __future__ import annotations

import pytest
from django.test import Client

from core.accounts.callers import Caller
from core.roles import Role
from registry import services
from registry.models import Dataset, RegisteredModel
from tests import factories
from tests.apitools import assert_error, assert_no_record_since, last_seq, only_record_since
from tests.conftest import client_for, make_person

pytestmark = pytest.mark.django_db

MODELS = "/api/v1/models/"


@pytest.fixture
def model(alice, team):
    return factories.registered_model(
        alice, name="credit-score", risk_tier="high", team=team, intended_use="EU consumers."
    )


@pytest.fixture
def dataset(alice):
    return factories.dataset(alice, name="applications", pii=True, legal_basis="contract")


def staff(user, admin_user) -> Client:
    from governance.accounts.services import user_flags_change

    if not user.is_staff:
        user_flags_change(
            caller=Caller(user=admin_user, auth="cli"), user=user, is_staff=True, reason="admin"
        )
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "payload", [{"intended_use": "Any market."}, {"intended_use": "x", "reason": " "}]
)
def test_changing_intended_use_without_reason_is_400_naming_reason(alice, model, payload):
    mark = last_seq()
    response = client_for(alice).patch(f"{MODELS}credit-score/", payload, format="json")
    assert_error(response, 400, field="reason")
    assert_no_record_since(mark)
    model.refresh_from_db()
    assert model.intended_use == "EU consumers."


def test_changing_intended_use_with_reason_records_it(alice, model):
    mark = last_seq()
    response = client_for(alice).patch(
        f"{MODELS}credit-score/",
        {"intended_use": "EU and UK consumers.", "reason": "UK launch approved"},
        format="json",
    )
    assert response.status_code == 200, response.content
    record, parsed = only_record_since(mark)
    assert record.action == "registered_model.updated"
    assert parsed["data"] == {
        "before": {"intended_use": "EU consumers."},
        "after": {"intended_use": "EU and UK consumers."},
    }
    assert parsed["reason"] == "UK launch approved"


def test_description_still_changes_without_reason(alice, model):
    mark = last_seq()
    response = client_for(alice).patch(
        f"{MODELS}credit-score/", {"description": "Scores."}, format="json"
    )
    assert response.status_code == 200, response.content
    _record, parsed = only_record_since(mark)
    assert "reason" not in parsed


@pytest.mark.parametrize("payload", [{"pii": False}, {"legal_basis": "consent"}])
def test_changing_pii_or_legal_basis_without_reason_is_400_naming_reason(alice, dataset, payload):
    mark = last_seq()
    response = client_for(alice).patch("/api/v1/datasets/applications/", payload, format="json")
    assert_error(response, 400, field="reason")
    assert_no_record_since(mark)
    dataset.refresh_from_db()
    assert (dataset.pii, dataset.legal_basis) == (True, "contract")


def test_service_refuses_legal_basis_change_without_reason(alice, dataset):
    mark = last_seq()
    with pytest.raises(services.InvalidInput) as caught:
        services.dataset_update(caller=Caller(user=alice), dataset=dataset, legal_basis="consent")
    assert "reason" in caught.value.fields
    assert_no_record_since(mark)


def test_admin_refuses_pii_change_without_reason(alice, admin_user, dataset):
    client = staff(alice, admin_user)
    mark = last_seq()
    response = client.post(
        f"/admin/registry/dataset/{dataset.pk}/change/",
        {
            "datasetversion_set-TOTAL_FORMS": "0",
            "datasetversion_set-INITIAL_FORMS": "0",
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
            "description": "",
            "source_uri": "",
            "legal_basis": "contract",
            "reason": "",
            "_save": "Save",
        },
    )
    assert response.status_code == 200
    assert "reason" in response.context["adminform"].form.errors
    assert_no_record_since(mark)
    assert Dataset.objects.get(pk=dataset.pk).pii is True


def test_admin_refuses_intended_use_change_without_reason(alice, admin_user, model):
    client = staff(alice, admin_user)
    mark = last_seq()
    response = client.post(
        f"/admin/registry/registeredmodel/{model.pk}/change/",
        {
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
            "description": "",
            "intended_use": "Anywhere.",
            "limitations": "",
            "next_review": "",
            "reason": "",
            "_save": "Save",
        },
    )
    assert response.status_code == 200
    assert "reason" in response.context["adminform"].form.errors
    assert_no_record_since(mark)
    assert RegisteredModel.objects.get(pk=model.pk).intended_use == "EU consumers."


def test_validator_cannot_be_made_owner_of_a_model(alice, victor):
    mark = last_seq()
    response = client_for(alice).post(
        MODELS, {"name": "fraud", "risk_tier": "low", "owner": "victor"}, format="json"
    )
    assert_error(response, 400, field="owner")
    assert_no_record_since(mark)
    assert not RegisteredModel.objects.exists()


def test_owner_outside_the_models_team_is_refused(alice, charlie, team):
    mark = last_seq()
    response = client_for(alice).post(
        MODELS,
        {"name": "fraud", "risk_tier": "low", "owner": "charlie", "team": "credit-risk"},
        format="json",
    )
    assert_error(response, 400, field="owner")
    assert_no_record_since(mark)


def test_ml_engineer_on_the_team_may_own_a_model(alice, team):
    make_person("erin", Role.ML_ENGINEER, team=team, full_name="Erin Eng")
    response = client_for(alice).post(
        MODELS,
        {"name": "fraud", "risk_tier": "low", "owner": "erin", "team": "credit-risk"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["owner"] == "erin"


def test_admin_cannot_create_a_model_owned_by_a_risk_officer(admin_user, rita):
    client = staff(admin_user, admin_user)
    mark = last_seq()
    client.post(
        "/admin/registry/registeredmodel/add/",
        {
            "name": "fraud",
            "risk_tier": "low",
            "owner": str(rita.pk),
            "team": "",
            "description": "",
            "intended_use": "",
            "limitations": "",
            "sensitive_attributes": "[]",
            "next_review": "",
            "_save": "Save",
        },
    )
    assert_no_record_since(mark)
    assert not RegisteredModel.objects.filter(name="fraud").exists()

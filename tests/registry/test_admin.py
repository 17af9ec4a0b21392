"""The admin writes through the services (one audit record per change), deletes nothing,
and shows the audit log read-only even to superusers."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from audit.models import AuditRecord, LogHead
from core.accounts.callers import Caller
from governance.accounts.services import user_flags_change
from registry import services
from registry.models import Dataset, ModelVersion, RegisteredModel
from tests import factories
from tests.apitools import actor, assert_no_record_since, last_seq, only_record_since

pytestmark = pytest.mark.django_db

ADMIN = "/admin/registry/registeredmodel/"


def admin_client(user) -> Client:
    if not user.is_staff:
        user_flags_change(caller=None, user=user, is_staff=True, reason="admin access")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff_rita(rita):
    return admin_client(rita)


@pytest.fixture
def staff_admin(admin_user):
    return admin_client(admin_user)


@pytest.fixture
def model(alice, team):
    return factories.registered_model(
        alice, name="credit-score", risk_tier="high", team=team, sensitive_attributes=["age"]
    )


@pytest.fixture
def version(alice, model):
    return factories.model_version(alice, model)


def no_versions(**data):
    """A change form's POST: the fields, plus the (empty) read-only versions inline."""
    return {"versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0", "_save": "Save", **data}


def new_model_form(**data):
    return {
        "name": "fraud-detector",
        "risk_tier": "medium",
        "owner": "",
        "team": "",
        "description": "Flags card fraud.",
        "intended_use": "",
        "limitations": "",
        "sensitive_attributes": '["age"]',
        "next_review": "",
        "_save": "Save",
        **data,
    }


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.mark.parametrize(
    "path",
    [
        ADMIN,
        "/admin/registry/modelversion/",
        "/admin/registry/dataset/",
        "/admin/registry/datasetversion/",
        "/admin/audit/auditrecord/",
    ],
)
def test_risk_officer_views_the_lists_in_the_admin(staff_rita, version, path):
    response = staff_rita.get(path)
    assert response.status_code == 200


def test_risk_officer_sees_every_model_with_its_columns(staff_rita, model, charlie):
    factories.registered_model(charlie, name="churn", risk_tier="low")
    response = staff_rita.get(ADMIN)
    names = [obj.name for obj in response.context["cl"].result_list]
    assert names == ["churn", "credit-score"]
    assert response.context["cl"].list_display[1:] == [
        "name",
        "risk_tier",
        "status",
        "owner",
        "team",
        "next_review",
    ]


def test_risk_officer_may_edit_only_risk_fields_and_the_reason(staff_rita, model, version):
    response = staff_rita.get(f"{ADMIN}{model.pk}/change/")
    assert response.status_code == 200
    assert set(response.context["adminform"].form.fields) == {
        "risk_tier",
        "sensitive_attributes",
        "reason",
    }
    assert str(version.artifact_digest) in response.content.decode()


def test_adding_a_model_in_the_admin_leaves_exactly_one_record(
    staff_admin, admin_user, alice, team
):
    mark = last_seq()
    response = staff_admin.post(
        f"{ADMIN}add/", new_model_form(owner=str(alice.pk), team=str(team.pk))
    )
    assert response.status_code == 302, messages_of(response)
    model = RegisteredModel.objects.get(name="fraud-detector")
    assert model.owner == alice
    assert model.team == team
    record, parsed = only_record_since(mark)
    assert record.action == "registered_model.created"
    assert record.object_id == str(model.pk)
    assert parsed["actor"] == actor(admin_user)
    assert parsed["data"]["sensitive_attributes"] == ["age"]


@pytest.mark.django_db(transaction=True)
def test_adding_a_model_in_the_admin_commits_outside_any_admin_transaction(
    staff_admin, admin_user, alice
):
    response = staff_admin.post(f"{ADMIN}add/", new_model_form(owner=str(alice.pk)))
    assert response.status_code == 302, messages_of(response)
    assert [r.action for r in AuditRecord.objects.all()][-1] == "registered_model.created"
    assert RegisteredModel.objects.filter(name="fraud-detector").exists()


def test_a_refused_add_shows_the_error_and_leaves_nothing(staff_admin, alice, ci_account):
    mark = last_seq()
    response = staff_admin.post(
        f"{ADMIN}add/", new_model_form(owner=str(ci_account.pk)), follow=True
    )
    assert "the owner must be an active person" in messages_of(response)
    assert_no_record_since(mark)
    assert not RegisteredModel.objects.filter(name="fraud-detector").exists()


def test_risk_officer_changes_risk_in_the_admin_with_a_reason(staff_rita, rita, model):
    mark = last_seq()
    response = staff_rita.post(
        f"{ADMIN}{model.pk}/change/",
        no_versions(
            risk_tier="critical", sensitive_attributes='["age", "sex"]', reason="new guidance"
        ),
    )
    assert response.status_code == 302, response.context and response.context["errors"]
    record, parsed = only_record_since(mark)
    assert record.action == "registered_model.risk_changed"
    assert parsed["actor"] == actor(rita)
    assert parsed["reason"] == "new guidance"
    assert parsed["data"] == {
        "before": {"risk_tier": "high", "sensitive_attributes": ["age"]},
        "after": {"risk_tier": "critical", "sensitive_attributes": ["age", "sex"]},
    }


def test_a_risk_change_without_reason_is_refused_by_the_form(staff_rita, model):
    mark = last_seq()
    response = staff_rita.post(
        f"{ADMIN}{model.pk}/change/",
        no_versions(risk_tier="low", sensitive_attributes='["age"]', reason=""),
    )
    assert response.status_code == 200
    assert "reason" in response.context["adminform"].form.errors
    assert_no_record_since(mark)
    model.refresh_from_db()
    assert model.risk_tier == "high"


def test_risk_officer_cannot_rewrite_the_description_in_the_admin(staff_rita, model):
    mark = last_seq()
    staff_rita.post(
        f"{ADMIN}{model.pk}/change/",
        no_versions(
            description="changed", risk_tier="high", sensitive_attributes='["age"]', reason=""
        ),
    )
    assert_no_record_since(mark)
    model.refresh_from_db()
    assert model.description == ""


def test_administrator_edits_descriptions_through_the_service(staff_admin, admin_user, model):
    mark = last_seq()
    response = staff_admin.post(
        f"{ADMIN}{model.pk}/change/",
        no_versions(
            description="Scores credit.",
            intended_use="",
            limitations="",
            next_review="2027-03-01",
            reason="annual review",
        ),
    )
    assert response.status_code == 302
    record, parsed = only_record_since(mark)
    assert record.action == "registered_model.updated"
    assert parsed["actor"] == actor(admin_user)
    assert parsed["data"]["after"] == {"description": "Scores credit.", "next_review": "2027-03-01"}
    assert parsed["reason"] == "annual review"


def test_a_refused_change_is_an_error_message_and_changes_nothing(staff_admin, alice, model):
    services.model_retire(caller=Caller(user=alice), model=model, reason="replaced")
    mark = last_seq()
    response = staff_admin.post(
        f"{ADMIN}{model.pk}/change/",
        no_versions(description="too late", intended_use="", limitations="", next_review=""),
        follow=True,
    )
    assert "model 'credit-score' is retired" in messages_of(response)
    assert_no_record_since(mark)
    model.refresh_from_db()
    assert model.description == ""


def test_adding_a_dataset_in_the_admin_goes_through_the_service(staff_admin, admin_user):
    mark = last_seq()
    response = staff_admin.post(
        "/admin/registry/dataset/add/",
        {
            "name": "applications",
            "description": "",
            "source_uri": "s3://data/apps/",
            "pii": "on",
            "legal_basis": "",
            "_save": "Save",
        },
    )
    assert response.status_code == 302
    record, parsed = only_record_since(mark)
    assert record.action == "dataset.created"
    assert parsed["data"]["pii"] is True
    assert Dataset.objects.get(name="applications").owner == admin_user


def test_retire_action_asks_for_a_reason_then_retires_through_the_service(staff_rita, rita, model):
    mark = last_seq()
    selection = {"action": "retire_models", "_selected_action": [str(model.pk)]}
    page = staff_rita.post(ADMIN, selection)
    assert page.status_code == 200
    assert "reason" in page.context["form"].fields
    assert_no_record_since(mark)
    done = staff_rita.post(ADMIN, {**selection, "apply": "1", "reason": "end of life"})
    assert done.status_code == 302
    record, parsed = only_record_since(mark)
    assert record.action == "registered_model.retired"
    assert parsed["actor"] == actor(rita)
    assert parsed["reason"] == "end of life"
    model.refresh_from_db()
    assert model.status == "retired"


def test_retire_action_without_reason_shows_the_form_again(staff_rita, model):
    mark = last_seq()
    page = staff_rita.post(
        ADMIN,
        {"action": "retire_models", "_selected_action": [str(model.pk)], "apply": "1"},
    )
    assert page.status_code == 200
    assert "reason" in page.context["form"].errors
    assert_no_record_since(mark)


def test_retire_action_reports_a_refusal_as_an_error(staff_rita, alice, model):
    services.model_retire(caller=Caller(user=alice), model=model, reason="replaced")
    mark = last_seq()
    response = staff_rita.post(
        ADMIN,
        {
            "action": "retire_models",
            "_selected_action": [str(model.pk)],
            "apply": "1",
            "reason": "again",
        },
        follow=True,
    )
    assert any("already retired" in m for m in messages_of(response))
    assert_no_record_since(mark)


def test_deprecate_action_changes_version_status_through_the_service(staff_rita, rita, version):
    mark = last_seq()
    response = staff_rita.post(
        "/admin/registry/modelversion/",
        {
            "action": "deprecate_versions",
            "_selected_action": [str(version.pk)],
            "apply": "1",
            "reason": "superseded",
        },
    )
    assert response.status_code == 302
    record, parsed = only_record_since(mark)
    assert record.action == "model_version.status_changed"
    assert parsed["actor"] == actor(rita)
    assert parsed["data"] == {"before": {"status": "registered"}, "after": {"status": "deprecated"}}
    version.refresh_from_db()
    assert version.status == "deprecated"


def test_versions_are_read_only_in_the_admin(staff_admin, version):
    response = staff_admin.get(f"/admin/registry/modelversion/{version.pk}/change/")
    assert response.status_code == 200
    assert list(response.context["adminform"].form.fields) == []
    assert staff_admin.get("/admin/registry/modelversion/add/").status_code == 403


def test_nothing_in_the_registry_can_be_deleted_from_the_admin(staff_admin, version):
    dataset = factories.dataset(version.author, name="applications")
    snapshot = factories.dataset_version(version.author, dataset)
    targets = {
        "registeredmodel": version.model.pk,
        "modelversion": version.pk,
        "dataset": dataset.pk,
        "datasetversion": snapshot.pk,
    }
    mark = last_seq()
    for name, pk in targets.items():
        base = f"/admin/registry/{name}/"
        assert staff_admin.get(f"{base}{pk}/delete/").status_code == 403
        assert staff_admin.post(f"{base}{pk}/delete/", {"post": "yes"}).status_code == 403
        actions = staff_admin.get(base).context["action_form"]
        choices = [value for value, _ in actions.fields["action"].choices] if actions else []
        assert "delete_selected" not in choices
        staff_admin.post(
            base, {"action": "delete_selected", "_selected_action": [str(pk)], "post": "yes"}
        )
    assert_no_record_since(mark)
    assert RegisteredModel.objects.filter(pk=version.model.pk).exists()
    assert ModelVersion.objects.filter(pk=version.pk).exists()
    assert Dataset.objects.filter(pk=dataset.pk).exists()


def test_audit_records_are_read_only_even_for_a_superuser(staff_admin, model):
    record = AuditRecord.objects.get(action="registered_model.created")
    base = "/admin/audit/auditrecord/"
    listing = staff_admin.get(base)
    assert listing.status_code == 200
    assert listing.context["action_form"] is None
    view = staff_admin.get(f"{base}{record.pk}/change/")
    assert view.status_code == 200
    assert list(view.context["adminform"].form.fields) == []
    assert staff_admin.post(f"{base}{record.pk}/change/", {"action": "x.y"}).status_code == 403
    assert staff_admin.get(f"{base}add/").status_code == 403
    assert staff_admin.post(f"{base}{record.pk}/delete/", {"post": "yes"}).status_code == 403
    staff_admin.post(base, {"action": "delete_selected", "_selected_action": [str(record.pk)]})
    after = AuditRecord.objects.get(pk=record.pk)
    assert (after.action, after.body) == (record.action, record.body)
    assert json.loads(after.body)["object"]["label"] == "credit-score"


def test_the_log_head_is_read_only_for_a_superuser(staff_admin, model):
    head = LogHead.objects.get()
    base = "/admin/audit/loghead/"
    assert staff_admin.get(base).status_code == 200
    path = f"{base}{head.pk}/change/"
    assert staff_admin.post(path, {"size": "0"}).status_code == 403
    assert staff_admin.post(f"{base}{head.pk}/delete/", {"post": "yes"}).status_code == 403
    head.refresh_from_db()
    assert head.size == AuditRecord.objects.count()

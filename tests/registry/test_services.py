"""Registry services: each use case leaves exactly its audit record, refusals leave nothing."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from audit.models import AuditRecord
from core.accounts.callers import Caller
from core.errors import Conflict, Forbidden, InvalidInput, TransitionNotAllowed
from registry import services
from registry.models import ModelVersion, RegisteredModel, VersionStatus
from tests import factories


def records_since(seq: int) -> list[dict]:
    return [json.loads(r.body) for r in AuditRecord.objects.filter(seq__gt=seq).order_by("seq")]


def last_seq() -> int:
    last = AuditRecord.objects.order_by("-seq").first()
    return last.seq if last else -1


pytestmark = pytest.mark.django_db


def test_model_create_records_full_snapshot_with_owner_name(alice, team):
    mark = last_seq()
    model = services.model_create(
        caller=Caller(user=alice),
        name="credit-score",
        risk_tier="high",
        team=team,
        sensitive_attributes=["sex", "age"],
    )
    [record] = records_since(mark)
    assert record["action"] == "registered_model.created"
    assert record["object"] == {
        "type": "registered_model",
        "id": str(model.pk),
        "label": "credit-score",
    }
    assert record["actor"] == {
        "type": "user",
        "id": str(alice.pk),
        "name": "Alice Archer",
        "auth": "session",
    }
    assert record["scope"] == {"model": "credit-score"}
    assert record["data"]["risk_tier"] == "high"
    assert record["data"]["owner"] == {"id": str(alice.pk), "name": "Alice Archer"}
    assert record["data"]["sensitive_attributes"] == ["sex", "age"]
    assert record["data"]["team"] == "credit-risk"


def test_teammate_gets_per_model_rights_and_stranger_none(alice, bob, charlie, team):
    model = factories.registered_model(alice, team=team)
    assert bob.has_perm("registry.register_version_registeredmodel", model)
    assert not charlie.has_perm("registry.register_version_registeredmodel", model)


def test_update_records_only_changed_fields(alice):
    model = factories.registered_model(alice, description="old")
    mark = last_seq()
    services.model_update(caller=Caller(user=alice), model=model, description="new", limitations="")
    [record] = records_since(mark)
    assert record["action"] == "registered_model.updated"
    assert record["data"] == {"before": {"description": "old"}, "after": {"description": "new"}}


def test_update_without_change_writes_nothing(alice):
    model = factories.registered_model(alice, description="same")
    mark = last_seq()
    services.model_update(caller=Caller(user=alice), model=model, description="same")
    assert records_since(mark) == []


def test_update_refuses_risk_fields(alice):
    model = factories.registered_model(alice)
    with pytest.raises(InvalidInput) as exc:
        services.model_update(caller=Caller(user=alice), model=model, risk_tier="low")
    assert "risk_tier" in exc.value.fields


def test_stranger_cannot_update(alice, charlie):
    model = factories.registered_model(alice)
    mark = last_seq()
    with pytest.raises(Forbidden):
        services.model_update(caller=Caller(user=charlie), model=model, description="x")
    assert records_since(mark) == []


def test_only_risk_officer_changes_risk_tier_with_reason(alice, rita, admin_user):
    model = factories.registered_model(alice, risk_tier="low")
    with pytest.raises(Forbidden):
        services.model_change_risk(
            caller=Caller(user=alice), model=model, risk_tier="high", reason="r"
        )
    # a superuser is not a risk officer: role checks never rely on has_perm
    with pytest.raises(Forbidden):
        services.model_change_risk(
            caller=Caller(user=admin_user), model=model, risk_tier="high", reason="r"
        )
    with pytest.raises(InvalidInput):
        services.model_change_risk(
            caller=Caller(user=rita), model=model, risk_tier="high", reason=" "
        )
    mark = last_seq()
    services.model_change_risk(
        caller=Caller(user=rita), model=model, risk_tier="high", reason="credit decisions"
    )
    [record] = records_since(mark)
    assert record["action"] == "registered_model.risk_changed"
    assert record["data"] == {"before": {"risk_tier": "low"}, "after": {"risk_tier": "high"}}
    assert record["reason"] == "credit decisions"
    model.refresh_from_db()
    assert model.risk_tier == "high"


def test_retire_is_recorded_and_cannot_repeat(alice):
    model = factories.registered_model(alice)
    mark = last_seq()
    services.model_retire(caller=Caller(user=alice), model=model, reason="replaced")
    [record] = records_since(mark)
    assert record["action"] == "registered_model.retired"
    assert record["data"]["status"] == "retired"
    with pytest.raises(TransitionNotAllowed):
        services.model_retire(caller=Caller(user=alice), model=model, reason="again")
    assert RegisteredModel.objects.filter(pk=model.pk).exists()


def test_governed_rows_cannot_be_deleted(alice):
    model = factories.registered_model(alice)
    with pytest.raises(RuntimeError, match="retire"):
        model.delete()


def test_version_register_numbers_and_records_lineage(alice):
    model = factories.registered_model(alice)
    data = factories.dataset(alice, name="loans")
    factories.dataset_version(alice, data)
    first = factories.model_version(alice, model)
    mark = last_seq()
    second = services.model_version_register(
        caller=Caller(user=alice),
        model=model,
        artifact_uri="s3://m/2",
        artifact_digest=factories.digest("v2"),
        parameters={"lr": 0.1, "depth": 6},
        metrics={"auc": 0.81},
        parent_version=first.version,
        datasets=[services.DatasetRef("loans", 1, "training")],
    )
    assert (first.version, second.version) == (1, 2)
    [record] = records_since(mark)
    assert record["action"] == "model_version.registered"
    assert record["scope"] == {"model": model.name, "version": 2}
    assert record["data"]["parameters"] == [["depth", 6], ["lr", "0.1"]]
    assert record["data"]["metrics"] == [["auc", "0.81"]]
    assert record["data"]["parent"] == 1
    assert record["data"]["datasets"][0]["role"] == "training"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"artifact_digest": "sha256:ABC"}, "artifact_digest"),
        ({"artifact_digest": "md5:" + "0" * 32}, "artifact_digest"),
        ({"parameters": {"x": {"nested": 1}}}, "parameters"),
        ({"metrics": {"auc": "high"}}, "metrics"),
        ({"datasets": [services.DatasetRef("nope", 1, "training")]}, "datasets"),
        ({"parent_version": 9}, "parent_version"),
        ({"artifact_uri": "x" * 1001}, "artifact_uri"),
    ],
)
def test_version_register_refuses_bad_input_and_writes_nothing(alice, fields, field):
    model = factories.registered_model(alice)
    mark = last_seq()
    with pytest.raises(InvalidInput) as exc:
        factories.model_version(alice, model, **fields)
    assert field in exc.value.fields
    assert records_since(mark) == []
    assert not ModelVersion.objects.filter(model=model).exists()


def test_same_artifact_twice_is_a_conflict(alice):
    model = factories.registered_model(alice)
    factories.model_version(alice, model, artifact_digest=factories.digest("same"))
    with pytest.raises(Conflict):
        factories.model_version(alice, model, artifact_digest=factories.digest("same"))


def test_explicit_existing_version_number_is_a_conflict(alice):
    model = factories.registered_model(alice)
    factories.model_version(alice, model)
    with pytest.raises(Conflict):
        factories.model_version(alice, model, version=1)


def test_service_account_must_name_a_human_author(alice, ci_account):
    model = factories.registered_model(alice, team=alice.groups.get(name="credit-risk"))
    with pytest.raises(InvalidInput) as exc:
        services.model_version_register(
            caller=Caller(user=ci_account),
            model=model,
            artifact_uri="s3://x",
            artifact_digest=factories.digest(),
        )
    assert "author" in exc.value.fields
    version = services.model_version_register(
        caller=Caller(user=ci_account),
        model=model,
        artifact_uri="s3://x",
        artifact_digest=factories.digest(),
        author=alice,
    )
    assert version.author == alice
    assert version.created_by == ci_account


def test_status_validated_is_never_set_by_a_registry_write(alice, rita):
    version = factories.model_version(alice, factories.registered_model(alice))
    with pytest.raises(Forbidden):
        services.model_version_set_status(
            caller=Caller(user=rita), version=version, status="validated", reason="looks fine"
        )


def test_status_transitions_follow_the_table(alice):
    version = factories.model_version(alice, factories.registered_model(alice))
    mark = last_seq()
    services.model_version_set_status(
        caller=Caller(user=alice), version=version, status="deprecated", reason="superseded"
    )
    [record] = records_since(mark)
    assert record["data"] == {"before": {"status": "registered"}, "after": {"status": "deprecated"}}
    assert record["reason"] == "superseded"
    services.model_version_set_status(
        caller=Caller(user=alice), version=version, status="retired", reason="gone"
    )
    with pytest.raises(TransitionNotAllowed):
        services.model_version_set_status(
            caller=Caller(user=alice), version=version, status="deprecated", reason="back"
        )
    version.refresh_from_db()
    assert version.status == VersionStatus.RETIRED


def test_rolled_back_change_leaves_no_record_and_no_gap(alice):
    model = factories.registered_model(alice)
    mark = last_seq()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.model_update(caller=Caller(user=alice), model=model, description="doomed")
        raise RuntimeError("crash after the service, before commit")
    assert records_since(mark) == []
    services.model_update(caller=Caller(user=alice), model=model, description="kept")
    [record] = records_since(mark)
    assert record["seq"] == mark + 1


def test_dataset_version_records_schema_as_pairs(alice):
    data = factories.dataset(alice, pii=True)
    mark = last_seq()
    version = factories.dataset_version(alice, data, schema={"zip": "string", "age": "integer"})
    [record] = records_since(mark)
    assert record["action"] == "dataset_version.registered"
    assert record["data"]["schema"] == [["age", "integer"], ["zip", "string"]]
    assert record["data"]["pii"] is True
    assert version.version == 1


def test_dataset_version_refuses_unknown_column_type(alice):
    data = factories.dataset(alice)
    with pytest.raises(InvalidInput) as exc:
        factories.dataset_version(alice, data, schema={"age": "tensor"})
    assert "schema" in exc.value.fields


def test_retired_dataset_cannot_feed_new_lineage(alice):
    data = factories.dataset(alice, name="old-data")
    factories.dataset_version(alice, data)
    services.dataset_retire(caller=Caller(user=alice), dataset=data, reason="expired consent")
    model = factories.registered_model(alice)
    with pytest.raises(InvalidInput, match="retired"):
        factories.model_version(
            alice, model, datasets=[services.DatasetRef("old-data", 1, "training")]
        )


def test_a_role_group_cannot_be_a_models_team(alice):
    from django.contrib.auth.models import Group

    with pytest.raises(InvalidInput) as exc:
        factories.registered_model(alice, team=Group.objects.get(name="validator"))
    assert "team" in exc.value.fields
    assert not RegisteredModel.objects.exists()


def test_only_members_name_a_team(charlie, team):
    with pytest.raises(InvalidInput, match="not a member"):
        factories.registered_model(charlie, team=team)


def test_a_data_scientist_of_another_team_cannot_register_dataset_versions(alice, charlie):
    data = factories.dataset(alice)
    mark = last_seq()
    with pytest.raises(Forbidden, match="register versions of"):
        factories.dataset_version(charlie, data)
    assert records_since(mark) == []
    assert not data.versions.exists()


def test_a_teammate_registers_dataset_versions_but_only_the_owner_changes_it(alice, bob):
    data = factories.dataset(alice)
    mark = last_seq()
    factories.dataset_version(bob, data)
    [record] = records_since(mark)
    assert record["action"] == "dataset_version.registered"
    with pytest.raises(Forbidden):
        services.dataset_update(caller=Caller(user=bob), dataset=data, description="mine")
    with pytest.raises(Forbidden):
        services.dataset_retire(caller=Caller(user=bob), dataset=data, reason="mine")
    assert len(records_since(mark)) == 1


def test_per_dataset_grants_decide_who_writes_it(alice, charlie):
    from guardian.shortcuts import assign_perm

    data = factories.dataset(alice)
    assign_perm("registry.register_version_dataset", charlie, data)
    factories.dataset_version(charlie, data)
    with pytest.raises(Forbidden):
        services.dataset_update(caller=Caller(user=charlie), dataset=data, description="x")
    assign_perm("registry.change_dataset", charlie, data)
    mark = last_seq()
    services.dataset_update(caller=Caller(user=charlie), dataset=data, description="x")
    [record] = records_since(mark)
    assert record["action"] == "dataset.updated"

"""The model versions API: list, register (people and CI), read, change status."""

from __future__ import annotations

import pytest

from core.accounts.callers import Caller
from registry import services
from registry.models import ModelVersion
from tests import factories
from tests.apitools import (
    actor,
    assert_error,
    assert_no_record_since,
    assert_unauthenticated,
    key_prefix,
    last_seq,
    only_record_since,
    person,
)
from tests.conftest import client_for, client_with_key

pytestmark = pytest.mark.django_db

VERSIONS = "/api/v1/models/credit-score/versions/"
DIGEST = factories.digest("credit-score-v1")


@pytest.fixture
def model(alice, team):
    return factories.registered_model(alice, name="credit-score", risk_tier="high", team=team)


@pytest.fixture
def training_data(alice):
    dataset = factories.dataset(alice, name="credit-applications")
    return factories.dataset_version(alice, dataset, content_digest=factories.digest("apps-v1"))


@pytest.fixture
def version_one(alice, model, training_data):
    return factories.model_version(
        alice,
        model,
        artifact_digest=DIGEST,
        datasets=[services.DatasetRef("credit-applications", 1, "training")],
    )


def registration(**fields):
    return {
        "artifact_uri": "s3://models/credit-score/2.pkl",
        "artifact_digest": factories.digest("credit-score-v2"),
        **fields,
    }


def version_url(n: int, suffix: str = "") -> str:
    return f"{VERSIONS}{n}/{suffix}"


def test_anonymous_cannot_list_versions(api, version_one):
    assert_unauthenticated(api.get(VERSIONS))


def test_gate_only_key_cannot_list_versions(gate_only_key, version_one):
    assert_error(client_with_key(gate_only_key).get(VERSIONS), 403)


def test_stranger_gets_404_listing_versions_of_someone_elses_model(charlie, version_one):
    assert_error(client_for(charlie).get(VERSIONS), 404)


def test_teammate_lists_versions_with_lineage_and_usernames(bob, version_one):
    response = client_for(bob).get(VERSIONS)
    assert response.status_code == 200
    [item] = response.json()["results"]
    assert item["model"] == "credit-score"
    assert item["version"] == 1
    assert item["artifact_digest"] == DIGEST
    assert item["author"] == "alice"
    assert item["created_by"] == "alice"
    assert item["parent_version"] is None
    assert item["datasets"] == [
        {
            "dataset": "credit-applications",
            "version": 1,
            "content_digest": factories.digest("apps-v1"),
            "role": "training",
        }
    ]


def test_version_list_filters_by_status(alice, version_one, model):
    factories.model_version(alice, model)
    services.model_version_set_status(
        caller=Caller(user=alice), version=version_one, status="deprecated", reason="old"
    )
    response = client_for(alice).get(f"{VERSIONS}?status=deprecated")
    assert [v["version"] for v in response.json()["results"]] == [1]
    assert_error(client_for(alice).get(f"{VERSIONS}?status=shiny"), 400, field="status")


def test_anonymous_cannot_register_a_version(api, model):
    mark = last_seq()
    assert_unauthenticated(api.post(VERSIONS, registration(), format="json"))
    assert_no_record_since(mark)


def test_gate_only_key_cannot_register_a_version(gate_only_key, model, alice):
    mark = last_seq()
    response = client_with_key(gate_only_key).post(
        VERSIONS, registration(author="alice"), format="json"
    )
    error = assert_error(response, 403, code="permission_denied")
    assert "registry:write" in error["message"]
    assert_no_record_since(mark)
    assert not ModelVersion.objects.exists()


def test_stranger_gets_404_registering_a_version_of_someone_elses_model(charlie, model):
    mark = last_seq()
    response = client_for(charlie).post(VERSIONS, registration(), format="json")
    assert_error(response, 404, code="not_found")
    assert_no_record_since(mark)
    assert not ModelVersion.objects.exists()


def test_stranger_gets_404_even_with_a_bad_body(charlie, model):
    response = client_for(charlie).post(VERSIONS, {"artifact_digest": "nope"}, format="json")
    assert_error(response, 404)


def test_validator_sees_but_cannot_register_a_version(victor, model):
    mark = last_seq()
    response = client_for(victor).post(VERSIONS, registration(), format="json")
    assert_error(response, 403)
    assert_no_record_since(mark)


def test_owner_registers_a_version_with_lineage_and_it_is_recorded(alice, model, training_data):
    mark = last_seq()
    response = client_for(alice).post(
        VERSIONS,
        registration(
            framework="sklearn",
            parameters={"max_depth": 6, "criterion": "gini"},
            metrics={"auc": 0.81},
            source_commit="4f2a9c1",
            training_run_id="run-42",
            environment_digest="sha256:" + "e" * 64,
            random_seed=7,
            datasets=[{"dataset": "credit-applications", "version": 1, "role": "training"}],
        ),
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["version"] == 1
    assert body["status"] == "registered"
    assert body["author"] == "alice"
    assert body["metrics"] == {"auc": 0.81}
    version = ModelVersion.objects.get(model=model, version=1)
    record, parsed = only_record_since(mark)
    assert record.action == "model_version.registered"
    assert record.object_type == "model_version"
    assert record.object_id == str(version.pk)
    assert parsed["actor"] == actor(alice)
    assert parsed["scope"] == {"model": "credit-score", "version": 1}
    assert parsed["data"] == {
        "model": "credit-score",
        "version": 1,
        "artifact_uri": "s3://models/credit-score/2.pkl",
        "artifact_digest": factories.digest("credit-score-v2"),
        "framework": "sklearn",
        "parameters": [["criterion", "gini"], ["max_depth", 6]],
        "metrics": [["auc", "0.81"]],
        "source_commit": "4f2a9c1",
        "training_run_id": "run-42",
        "environment_digest": "sha256:" + "e" * 64,
        "random_seed": 7,
        "parent": None,
        "author": person(alice),
        "status": "registered",
        "datasets": [
            {
                "dataset": "credit-applications",
                "version": 1,
                "content_digest": factories.digest("apps-v1"),
                "role": "training",
            }
        ],
    }


def test_next_version_number_and_parent(alice, version_one):
    response = client_for(alice).post(VERSIONS, registration(parent_version=1), format="json")
    assert response.status_code == 201
    assert response.json()["version"] == 2
    assert response.json()["parent_version"] == 1


def test_ci_key_registering_without_author_is_400_naming_author(ci_key, model):
    mark = last_seq()
    response = client_with_key(ci_key).post(VERSIONS, registration(), format="json")
    error = assert_error(response, 400, field="author")
    assert "author" in error["message"]
    assert_no_record_since(mark)
    assert not ModelVersion.objects.exists()


def test_ci_key_registers_with_a_human_author_recorded_as_the_service(
    ci_key, ci_account, alice, model
):
    mark = last_seq()
    response = client_with_key(ci_key).post(VERSIONS, registration(author="alice"), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["author"] == "alice"
    assert response.json()["created_by"] == "ci-credit"
    record, parsed = only_record_since(mark)
    assert record.action == "model_version.registered"
    assert record.actor_type == "service"
    assert record.actor_id == str(ci_account.pk)
    assert parsed["actor"] == actor(ci_account, f"api_key:{key_prefix(ci_key)}")
    assert parsed["actor"]["type"] == "service"
    assert parsed["data"]["author"] == person(alice)


def test_ci_key_cannot_name_a_service_account_as_author(ci_key, model):
    response = client_with_key(ci_key).post(
        VERSIONS, registration(author="ci-credit"), format="json"
    )
    assert_error(response, 400, field="author")


def test_a_person_cannot_name_someone_else_as_author(alice, bob, model):
    response = client_for(alice).post(VERSIONS, registration(author="bob"), format="json")
    assert_error(response, 400, field="author")


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 65,
        "md5:" + "a" * 32,
        "a" * 64,
        "sha256:" + "g" * 64,
        "sha256:" + "a" * 64 + "\n",
        "",
        None,
        64,
    ],
)
def test_malformed_artifact_digest_is_400_naming_artifact_digest(alice, model, digest):
    mark = last_seq()
    response = client_for(alice).post(VERSIONS, registration(artifact_digest=digest), format="json")
    assert_error(response, 400, field="artifact_digest")
    assert_no_record_since(mark)
    assert not ModelVersion.objects.exists()


def test_missing_artifact_digest_is_400(alice, model):
    payload = registration()
    del payload["artifact_digest"]
    assert_error(
        client_for(alice).post(VERSIONS, payload, format="json"), 400, field="artifact_digest"
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"artifact_uri": "s3://" + "x" * 1000}, "artifact_uri"),
        ({"framework": "f" * 101}, "framework"),
        ({"source_commit": "c" * 101}, "source_commit"),
        ({"training_run_id": "r" * 201}, "training_run_id"),
        ({"environment_digest": "e" * 201}, "environment_digest"),
        ({"random_seed": "seven"}, "random_seed"),
        ({"random_seed": 2**64}, "random_seed"),
        ({"parameters": ["not", "a", "map"]}, "parameters"),
        ({"parameters": {"nested": {"a": 1}}}, "parameters"),
        ({"metrics": {"auc": "high"}}, "metrics"),
        ({"parent_version": 0}, "parent_version"),
        ({"parent_version": 9}, "parent_version"),
        ({"version": 0}, "version"),
        ({"version": "2"}, "version"),
        ({"datasets": [{"dataset": "credit-applications", "version": 1}]}, "datasets"),
        ({"datasets": [{"dataset": "credit-applications", "version": 1, "role": "x"}]}, "datasets"),
        ({"datasets": "credit-applications"}, "datasets"),
        ({"author": "nobody"}, "author"),
        ({"status": "validated"}, "status"),
        ({"checksum": "abc"}, "checksum"),
    ],
)
def test_bad_version_input_is_400_naming_the_field(alice, model, training_data, fields, field):
    mark = last_seq()
    response = client_for(alice).post(VERSIONS, registration(**fields), format="json")
    assert_error(response, 400, field=field)
    assert_no_record_since(mark)
    assert not ModelVersion.objects.exists()


def test_unknown_dataset_is_400_naming_datasets(alice, model, training_data):
    mark = last_seq()
    response = client_for(alice).post(
        VERSIONS,
        registration(datasets=[{"dataset": "no-such-data", "version": 1, "role": "training"}]),
        format="json",
    )
    error = assert_error(response, 400, field="datasets")
    assert "no-such-data" in error["message"]
    assert_no_record_since(mark)
    assert not ModelVersion.objects.exists()


def test_unknown_dataset_version_is_400_naming_datasets(alice, model, training_data):
    response = client_for(alice).post(
        VERSIONS,
        registration(datasets=[{"dataset": "credit-applications", "version": 2, "role": "test"}]),
        format="json",
    )
    assert_error(response, 400, field="datasets")


def test_non_json_body_is_a_parse_error(alice, model):
    mark = last_seq()
    response = client_for(alice).post(VERSIONS, data="{not json", content_type="application/json")
    assert_error(response, 400, code="parse_error")
    assert_no_record_since(mark)


def test_duplicate_digest_is_a_conflict_naming_artifact_digest(alice, version_one):
    mark = last_seq()
    response = client_for(alice).post(VERSIONS, registration(artifact_digest=DIGEST), format="json")
    error = assert_error(response, 409, field="artifact_digest", code="conflict")
    assert "v1" in error["message"]
    assert_no_record_since(mark)
    assert ModelVersion.objects.count() == 1


def test_duplicate_version_number_is_a_conflict(alice, version_one):
    mark = last_seq()
    response = client_for(alice).post(VERSIONS, registration(version=1), format="json")
    assert_error(response, 409, field="version", code="conflict")
    assert_no_record_since(mark)
    assert ModelVersion.objects.count() == 1


def test_explicit_version_number_is_kept(alice, model):
    response = client_for(alice).post(VERSIONS, registration(version=5), format="json")
    assert response.status_code == 201
    assert response.json()["version"] == 5


def test_retired_model_takes_no_new_versions(alice, model):
    services.model_retire(caller=Caller(user=alice), model=model, reason="replaced")
    mark = last_seq()
    response = client_for(alice).post(VERSIONS, registration(), format="json")
    assert_error(response, 409)
    assert_no_record_since(mark)


def test_anonymous_cannot_read_a_version(api, version_one):
    assert_unauthenticated(api.get(version_url(1)))


def test_gate_only_key_cannot_read_a_version(gate_only_key, version_one):
    assert_error(client_with_key(gate_only_key).get(version_url(1)), 403)


def test_stranger_gets_404_for_a_version_of_someone_elses_model(charlie, version_one):
    assert_error(client_for(charlie).get(version_url(1)), 404)


def test_unknown_version_is_404(alice, version_one):
    assert_error(client_for(alice).get(version_url(2)), 404)


def test_validator_reads_a_version(victor, version_one):
    response = client_for(victor).get(version_url(1))
    assert response.status_code == 200
    assert response.json()["artifact_digest"] == DIGEST


def status_change(status: str = "deprecated", reason: str = "superseded by v2"):
    return {"status": status, "reason": reason}


def test_anonymous_cannot_change_a_version_status(api, version_one):
    assert_unauthenticated(api.post(version_url(1, "status"), status_change(), format="json"))


def test_gate_only_key_cannot_change_a_version_status(gate_only_key, version_one):
    mark = last_seq()
    response = client_with_key(gate_only_key).post(
        version_url(1, "status"), status_change(), format="json"
    )
    assert_error(response, 403)
    assert_no_record_since(mark)


def test_stranger_gets_404_changing_status_of_someone_elses_version(charlie, version_one):
    mark = last_seq()
    response = client_for(charlie).post(version_url(1, "status"), status_change(), format="json")
    assert_error(response, 404)
    assert_no_record_since(mark)


def test_validator_cannot_deprecate_a_version(victor, version_one):
    mark = last_seq()
    response = client_for(victor).post(version_url(1, "status"), status_change(), format="json")
    assert_error(response, 403)
    assert_no_record_since(mark)
    version_one.refresh_from_db()
    assert version_one.status == "registered"


def test_no_registry_write_marks_a_version_validated(alice, version_one):
    mark = last_seq()
    response = client_for(alice).post(
        version_url(1, "status"), status_change("validated"), format="json"
    )
    error = assert_error(response, 403)
    assert "validation step" in error["message"]
    assert_no_record_since(mark)
    version_one.refresh_from_db()
    assert version_one.status == "registered"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"status": "deprecated"}, "reason"),
        ({"status": "deprecated", "reason": ""}, "reason"),
        ({"status": "deprecated", "reason": "r" * 2001}, "reason"),
        ({"status": "shiny", "reason": "x"}, "status"),
        ({"reason": "x"}, "status"),
    ],
)
def test_bad_status_change_is_400_naming_the_field(alice, version_one, payload, field):
    mark = last_seq()
    response = client_for(alice).post(version_url(1, "status"), payload, format="json")
    assert_error(response, 400, field=field)
    assert_no_record_since(mark)


def test_owner_deprecates_a_version_and_it_is_recorded(alice, version_one):
    mark = last_seq()
    response = client_for(alice).post(version_url(1, "status"), status_change(), format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "deprecated"
    record, parsed = only_record_since(mark)
    assert record.action == "model_version.status_changed"
    assert record.object_id == str(version_one.pk)
    assert parsed["actor"] == actor(alice)
    assert parsed["scope"] == {"model": "credit-score", "version": 1}
    assert parsed["data"] == {"before": {"status": "registered"}, "after": {"status": "deprecated"}}
    assert parsed["reason"] == "superseded by v2"


def test_risk_officer_may_retire_a_version(rita, version_one):
    response = client_for(rita).post(
        version_url(1, "status"), status_change("retired"), format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "retired"


def test_a_retired_version_cannot_come_back(alice, version_one):
    services.model_version_set_status(
        caller=Caller(user=alice), version=version_one, status="retired", reason="withdrawn"
    )
    mark = last_seq()
    response = client_for(alice).post(version_url(1, "status"), status_change(), format="json")
    assert_error(response, 409, code="transition_not_allowed")
    assert_no_record_since(mark)
    version_one.refresh_from_db()
    assert version_one.status == "retired"

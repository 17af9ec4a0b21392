"""The datasets API: list, register, read, describe, retire, and dataset versions."""

from __future__ import annotations

import pytest

from core.accounts.callers import Caller
from governance.accounts.services import api_key_create
from registry import services
from registry.models import Dataset, DatasetVersion
from tests import factories
from tests.apitools import (
    actor,
    assert_error,
    assert_no_record_since,
    assert_unauthenticated,
    last_seq,
    only_record_since,
    person,
)
from tests.conftest import client_for, client_with_key, make_person

pytestmark = pytest.mark.django_db

DATASETS = "/api/v1/datasets/"
DETAIL = "/api/v1/datasets/applications/"
VERSIONS = "/api/v1/datasets/applications/versions/"
SCHEMA = {"age": "integer", "income": "float", "approved": "boolean"}


@pytest.fixture
def dataset(alice):
    return factories.dataset(
        alice,
        name="applications",
        description="Credit applications 2019-2024.",
        source_uri="s3://data/applications/",
        pii=True,
        legal_basis="contract; kept 7 years",
    )


@pytest.fixture
def snapshot(alice, dataset):
    return factories.dataset_version(
        alice, dataset, content_digest=factories.digest("apps-1"), row_count=1200, schema=SCHEMA
    )


@pytest.fixture
def outsider(roles):
    """A person with no role at all: no dataset is visible to them."""
    return make_person("dora", full_name="Dora Doe")


def test_anonymous_cannot_list_datasets(api, dataset):
    assert_unauthenticated(api.get(DATASETS))


def test_gate_only_key_cannot_list_datasets(gate_only_key, dataset):
    assert_error(client_with_key(gate_only_key).get(DATASETS), 403)


def test_every_role_lists_datasets(charlie, victor, audrey, dataset):
    for user in (charlie, victor, audrey):
        response = client_for(user).get(DATASETS)
        assert response.status_code == 200
        [item] = response.json()["results"]
        assert item["name"] == "applications"
        assert item["owner"] == "alice"
        assert item["pii"] is True


def test_a_person_without_a_role_sees_no_dataset(outsider, dataset):
    response = client_for(outsider).get(DATASETS)
    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("pii=true", ["applications"]),
        ("pii=false", ["bureau"]),
        ("status=retired", ["bureau"]),
        ("search=2019", ["applications"]),
        ("owner=bob", ["bureau"]),
    ],
)
def test_dataset_list_filters(alice, bob, dataset, query, expected):
    bureau = factories.dataset(bob, name="bureau")
    services.dataset_retire(caller=Caller(user=bob), dataset=bureau, reason="contract ended")
    response = client_for(alice).get(f"{DATASETS}?{query}")
    assert [d["name"] for d in response.json()["results"]] == expected


def test_anonymous_cannot_register_a_dataset(api, roles):
    mark = last_seq()
    assert_unauthenticated(api.post(DATASETS, {"name": "bureau"}, format="json"))
    assert_no_record_since(mark)


def test_gate_only_key_cannot_register_a_dataset(gate_only_key):
    mark = last_seq()
    response = client_with_key(gate_only_key).post(DATASETS, {"name": "bureau"}, format="json")
    assert_error(response, 403)
    assert_no_record_since(mark)
    assert not Dataset.objects.exists()


def test_validator_cannot_register_a_dataset(victor):
    mark = last_seq()
    response = client_for(victor).post(DATASETS, {"name": "bureau"}, format="json")
    assert_error(response, 403, code="permission_denied")
    assert_no_record_since(mark)


@pytest.mark.parametrize("body", [{}, {"name": "no spaces allowed"}])
def test_a_role_that_may_not_register_datasets_is_refused_before_its_body_is_judged(victor, body):
    mark = last_seq()
    response = client_for(victor).post(DATASETS, body, format="json")
    assert_error(response, 403, code="permission_denied")
    assert_no_record_since(mark)


def test_data_scientist_registers_a_dataset_and_it_is_recorded(bob):
    mark = last_seq()
    response = client_for(bob).post(
        DATASETS,
        {
            "name": "bureau",
            "description": "Credit bureau extracts.",
            "source_uri": "s3://data/bureau/",
            "pii": True,
            "legal_basis": "legitimate interest",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["owner"] == "bob"
    dataset = Dataset.objects.get(name="bureau")
    record, parsed = only_record_since(mark)
    assert record.action == "dataset.created"
    assert record.object_type == "dataset"
    assert record.object_id == str(dataset.pk)
    assert parsed["actor"] == actor(bob)
    assert parsed["scope"] == {}
    assert parsed["data"] == {
        "name": "bureau",
        "description": "Credit bureau extracts.",
        "source_uri": "s3://data/bureau/",
        "owner": person(bob),
        "pii": True,
        "legal_basis": "legitimate interest",
        "status": "active",
        "teams": ["credit-risk"],
    }


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "Bureau Data"}, "name"),
        ({"name": "b" * 101}, "name"),
        ({}, "name"),
        ({"name": "bureau", "description": "d" * 5001}, "description"),
        ({"name": "bureau", "source_uri": "s" * 1001}, "source_uri"),
        ({"name": "bureau", "legal_basis": "l" * 2001}, "legal_basis"),
        ({"name": "bureau", "pii": "yes"}, "pii"),
        ({"name": "bureau", "owner": "alice"}, "owner"),
    ],
)
def test_bad_dataset_input_is_400_naming_the_field(bob, payload, field):
    mark = last_seq()
    response = client_for(bob).post(DATASETS, payload, format="json")
    assert_error(response, 400, field=field)
    assert_no_record_since(mark)
    assert not Dataset.objects.exists()


def test_non_json_dataset_body_is_a_parse_error(bob):
    response = client_for(bob).post(DATASETS, data="{not json", content_type="application/json")
    assert_error(response, 400, code="parse_error")


def test_duplicate_dataset_name_is_a_conflict(bob, dataset):
    mark = last_seq()
    response = client_for(bob).post(DATASETS, {"name": "applications"}, format="json")
    assert_error(response, 409, field="name")
    assert_no_record_since(mark)


def test_anonymous_cannot_read_a_dataset(api, dataset):
    assert_unauthenticated(api.get(DETAIL))


def test_gate_only_key_cannot_read_a_dataset(gate_only_key, dataset):
    assert_error(client_with_key(gate_only_key).get(DETAIL), 403)


def test_person_without_a_role_gets_404_for_a_dataset(outsider, dataset):
    assert_error(client_for(outsider).get(DETAIL), 404)


def test_ci_account_without_a_role_gets_404_for_a_dataset(ci_key, dataset):
    assert_error(client_with_key(ci_key).get(DETAIL), 404)


def test_any_role_reads_a_dataset(charlie, dataset):
    response = client_for(charlie).get(DETAIL)
    assert response.status_code == 200
    assert response.json()["legal_basis"] == "contract; kept 7 years"


def test_anonymous_cannot_change_a_dataset(api, dataset):
    assert_unauthenticated(api.patch(DETAIL, {"description": "x"}, format="json"))


def test_gate_only_key_cannot_change_a_dataset(gate_only_key, dataset):
    response = client_with_key(gate_only_key).patch(DETAIL, {"description": "x"}, format="json")
    assert_error(response, 403)


def test_outsider_gets_404_changing_a_dataset(outsider, dataset):
    mark = last_seq()
    assert_error(client_for(outsider).patch(DETAIL, {"description": "x"}, format="json"), 404)
    assert_no_record_since(mark)


def test_only_the_owner_changes_a_dataset(bob, dataset):
    mark = last_seq()
    response = client_for(bob).patch(DETAIL, {"description": "x"}, format="json")
    assert_error(response, 403, code="permission_denied")
    assert_no_record_since(mark)
    dataset.refresh_from_db()
    assert dataset.description == "Credit applications 2019-2024."


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"status": "retired"}, "status"),
        ({"name": "renamed"}, "name"),
        ({"legal_basis": "l" * 2001}, "legal_basis"),
        ({"pii": "no"}, "pii"),
        ({"reason": "only a reason"}, "non_field_errors"),
    ],
)
def test_bad_dataset_change_is_400_naming_the_field(alice, dataset, payload, field):
    mark = last_seq()
    assert_error(client_for(alice).patch(DETAIL, payload, format="json"), 400, field=field)
    assert_no_record_since(mark)


def test_owner_changes_a_dataset_and_it_is_recorded(alice, dataset):
    mark = last_seq()
    response = client_for(alice).patch(
        DETAIL, {"pii": False, "reason": "columns removed"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["pii"] is False
    record, parsed = only_record_since(mark)
    assert record.action == "dataset.updated"
    assert record.object_id == str(dataset.pk)
    assert parsed["actor"] == actor(alice)
    assert parsed["data"] == {"before": {"pii": True}, "after": {"pii": False}}
    assert parsed["reason"] == "columns removed"


def test_anonymous_cannot_retire_a_dataset(api, dataset):
    assert_unauthenticated(api.post(f"{DETAIL}retire", {"reason": "x"}, format="json"))


def test_gate_only_key_cannot_retire_a_dataset(gate_only_key, dataset):
    response = client_with_key(gate_only_key).post(
        f"{DETAIL}retire", {"reason": "x"}, format="json"
    )
    assert_error(response, 403)


def test_outsider_gets_404_retiring_a_dataset(outsider, dataset):
    assert_error(client_for(outsider).post(f"{DETAIL}retire", {"reason": "x"}, format="json"), 404)


def test_only_the_owner_retires_a_dataset(bob, dataset):
    mark = last_seq()
    response = client_for(bob).post(f"{DETAIL}retire", {"reason": "x"}, format="json")
    assert_error(response, 403)
    assert_no_record_since(mark)


def test_retiring_a_dataset_needs_a_reason(alice, dataset):
    assert_error(client_for(alice).post(f"{DETAIL}retire", {}, format="json"), 400, field="reason")


def test_owner_retires_a_dataset_and_it_is_recorded(alice, dataset):
    mark = last_seq()
    response = client_for(alice).post(
        f"{DETAIL}retire", {"reason": "consent withdrawn"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "retired"
    record, parsed = only_record_since(mark)
    assert record.action == "dataset.retired"
    assert parsed["data"]["status"] == "retired"
    assert parsed["reason"] == "consent withdrawn"


def test_retiring_a_dataset_twice_is_an_illegal_transition(alice, dataset):
    services.dataset_retire(caller=Caller(user=alice), dataset=dataset, reason="gone")
    mark = last_seq()
    response = client_for(alice).post(f"{DETAIL}retire", {"reason": "x"}, format="json")
    assert_error(response, 409, code="transition_not_allowed")
    assert_no_record_since(mark)


def test_a_retired_dataset_cannot_be_changed(alice, dataset):
    services.dataset_retire(caller=Caller(user=alice), dataset=dataset, reason="gone")
    response = client_for(alice).patch(DETAIL, {"description": "x"}, format="json")
    assert_error(response, 409)


def new_snapshot(**fields):
    return {
        "content_digest": factories.digest("apps-2"),
        "row_count": 1500,
        "schema": SCHEMA,
        **fields,
    }


def test_anonymous_cannot_list_dataset_versions(api, snapshot):
    assert_unauthenticated(api.get(VERSIONS))


def test_gate_only_key_cannot_list_dataset_versions(gate_only_key, snapshot):
    assert_error(client_with_key(gate_only_key).get(VERSIONS), 403)


def test_outsider_gets_404_for_dataset_versions(outsider, snapshot):
    assert_error(client_for(outsider).get(VERSIONS), 404)


def test_dataset_versions_are_listed_with_their_schema(charlie, snapshot):
    response = client_for(charlie).get(VERSIONS)
    assert response.status_code == 200
    [item] = response.json()["results"]
    assert item["dataset"] == "applications"
    assert item["version"] == 1
    assert item["row_count"] == 1200
    assert item["schema"] == SCHEMA
    assert item["created_by"] == "alice"


def test_anonymous_cannot_register_a_dataset_version(api, dataset):
    mark = last_seq()
    assert_unauthenticated(api.post(VERSIONS, new_snapshot(), format="json"))
    assert_no_record_since(mark)


def test_gate_only_key_cannot_register_a_dataset_version(gate_only_key, dataset):
    mark = last_seq()
    response = client_with_key(gate_only_key).post(VERSIONS, new_snapshot(), format="json")
    assert_error(response, 403)
    assert_no_record_since(mark)


def test_outsider_gets_404_registering_a_dataset_version(outsider, dataset):
    mark = last_seq()
    assert_error(client_for(outsider).post(VERSIONS, new_snapshot(), format="json"), 404)
    assert_no_record_since(mark)


def test_validator_cannot_register_a_dataset_version(victor, dataset):
    mark = last_seq()
    assert_error(client_for(victor).post(VERSIONS, new_snapshot(), format="json"), 403)
    assert_no_record_since(mark)


def test_a_data_scientist_of_another_team_cannot_add_versions_to_a_dataset(charlie, dataset):
    mark = last_seq()
    response = client_for(charlie).post(VERSIONS, new_snapshot(), format="json")
    error = assert_error(response, 403, code="permission_denied")
    assert "applications" in error["message"]
    assert_no_record_since(mark)
    assert not DatasetVersion.objects.exists()


def test_a_key_of_another_team_cannot_add_versions_to_a_dataset(charlie, dataset):
    key, _ = api_key_create(
        caller=Caller(user=charlie), user=charlie, name="laptop", scopes=["registry:write"]
    )
    mark = last_seq()
    response = client_with_key(key).post(VERSIONS, new_snapshot(), format="json")
    assert_error(response, 403, code="permission_denied")
    assert_no_record_since(mark)
    assert not DatasetVersion.objects.exists()


def test_teammate_registers_a_dataset_version_and_it_is_recorded(bob, snapshot):
    mark = last_seq()
    response = client_for(bob).post(
        VERSIONS,
        new_snapshot(pii=False, source_uri="s3://data/applications/2.parquet"),
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["version"] == 2
    created = DatasetVersion.objects.get(dataset__name="applications", version=2)
    record, parsed = only_record_since(mark)
    assert record.action == "dataset_version.registered"
    assert record.object_type == "dataset_version"
    assert record.object_id == str(created.pk)
    assert parsed["actor"] == actor(bob)
    assert parsed["data"] == {
        "dataset": "applications",
        "version": 2,
        "source_uri": "s3://data/applications/2.parquet",
        "content_digest": factories.digest("apps-2"),
        "row_count": 1500,
        "schema": [["age", "integer"], ["approved", "boolean"], ["income", "float"]],
        "pii": False,
    }


def test_dataset_version_inherits_the_pii_flag(alice, dataset):
    response = client_for(alice).post(VERSIONS, new_snapshot(), format="json")
    assert response.json()["pii"] is True


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"content_digest": "sha256:" + "Z" * 64}, "content_digest"),
        ({"content_digest": "md5:abc"}, "content_digest"),
        ({"row_count": -1}, "row_count"),
        ({"row_count": "many"}, "row_count"),
        ({"row_count": 1.5}, "row_count"),
        ({"schema": ["age"]}, "schema"),
        ({"schema": {"age": "bigint"}}, "schema"),
        ({"schema": {"age": 5}}, "schema"),
        ({"source_uri": "s" * 1001}, "source_uri"),
        ({"version": 3}, "version"),
    ],
)
def test_bad_dataset_version_input_is_400_naming_the_field(alice, dataset, fields, field):
    mark = last_seq()
    response = client_for(alice).post(VERSIONS, new_snapshot(**fields), format="json")
    assert_error(response, 400, field=field)
    assert_no_record_since(mark)
    assert not DatasetVersion.objects.exists()


def test_duplicate_content_digest_is_a_conflict(alice, snapshot):
    mark = last_seq()
    response = client_for(alice).post(
        VERSIONS, new_snapshot(content_digest=factories.digest("apps-1")), format="json"
    )
    assert_error(response, 409, field="content_digest")
    assert_no_record_since(mark)


def test_retired_dataset_takes_no_new_versions(alice, dataset):
    services.dataset_retire(caller=Caller(user=alice), dataset=dataset, reason="gone")
    mark = last_seq()
    assert_error(client_for(alice).post(VERSIONS, new_snapshot(), format="json"), 409)
    assert_no_record_since(mark)


def test_anonymous_cannot_read_a_dataset_version(api, snapshot):
    assert_unauthenticated(api.get(f"{VERSIONS}1/"))


def test_gate_only_key_cannot_read_a_dataset_version(gate_only_key, snapshot):
    assert_error(client_with_key(gate_only_key).get(f"{VERSIONS}1/"), 403)


def test_outsider_gets_404_for_a_dataset_version(outsider, snapshot):
    assert_error(client_for(outsider).get(f"{VERSIONS}1/"), 404)


def test_unknown_dataset_version_is_404(alice, snapshot):
    assert_error(client_for(alice).get(f"{VERSIONS}2/"), 404)


def test_a_dataset_version_is_read(victor, snapshot):
    response = client_for(victor).get(f"{VERSIONS}1/")
    assert response.status_code == 200
    assert response.json()["content_digest"] == factories.digest("apps-1")

"""The lineage endpoint: the data -> model graph of one version, scoped like the version."""

from __future__ import annotations

import pytest

from core.accounts.callers import Caller
from governance.accounts.services import api_key_create
from registry.services import DatasetRef
from tests import factories
from tests.apitools import assert_error, assert_unauthenticated, last_seq
from tests.conftest import client_for, client_with_key

pytestmark = pytest.mark.django_db

LINEAGE = "/api/v1/models/credit-score/versions/{n}/lineage"


@pytest.fixture
def versions(alice, team):
    """credit-score v1 (trained on applications v1) and v2 (its child, trained on v2 and
    validated on the holdout)."""
    model = factories.registered_model(alice, name="credit-score", team=team)
    applications = factories.dataset(alice, name="applications")
    factories.dataset_version(alice, applications, content_digest=factories.digest("apps-1"))
    factories.dataset_version(alice, applications, content_digest=factories.digest("apps-2"))
    holdout = factories.dataset(alice, name="holdout")
    factories.dataset_version(alice, holdout, content_digest=factories.digest("holdout-1"))
    first = factories.model_version(
        alice,
        model,
        artifact_digest=factories.digest("model-1"),
        datasets=[DatasetRef("applications", 1, "training")],
    )
    second = factories.model_version(
        alice,
        model,
        artifact_digest=factories.digest("model-2"),
        parent_version=1,
        datasets=[
            DatasetRef("applications", 2, "training"),
            DatasetRef("holdout", 1, "validation"),
        ],
    )
    return first, second


def test_anonymous_cannot_read_lineage(api, versions):
    assert_unauthenticated(api.get(LINEAGE.format(n=2)))


def test_gate_only_key_cannot_read_lineage(gate_only_key, versions):
    assert_error(client_with_key(gate_only_key).get(LINEAGE.format(n=2)), 403)


def test_stranger_gets_404_for_lineage_of_someone_elses_model(charlie, versions):
    assert_error(client_for(charlie).get(LINEAGE.format(n=2)), 404)


def test_lineage_of_an_unknown_version_is_404(alice, versions):
    assert_error(client_for(alice).get(LINEAGE.format(n=3)), 404)


def test_lineage_shows_datasets_and_the_parent_chain(bob, versions):
    response = client_for(bob).get(LINEAGE.format(n=2))
    assert response.status_code == 200
    graph = response.json()
    assert graph["model"] == "credit-score"
    assert graph["version"] == 2
    nodes = {node["id"]: node for node in graph["nodes"]}
    assert set(nodes) == {
        "model_version:credit-score:2",
        "model_version:credit-score:1",
        "dataset_version:applications:2",
        "dataset_version:holdout:1",
        "dataset_version:applications:1",
    }
    assert nodes["model_version:credit-score:1"]["artifact_digest"] == factories.digest("model-1")
    assert nodes["dataset_version:holdout:1"]["content_digest"] == factories.digest("holdout-1")
    edges = {(edge["from"], edge["to"], edge["role"]) for edge in graph["edges"]}
    assert edges == {
        ("model_version:credit-score:1", "model_version:credit-score:2", "parent"),
        ("dataset_version:applications:2", "model_version:credit-score:2", "training"),
        ("dataset_version:holdout:1", "model_version:credit-score:2", "validation"),
        ("dataset_version:applications:1", "model_version:credit-score:1", "training"),
    }


def test_reading_lineage_leaves_no_record(alice, versions):
    mark = last_seq()
    client_for(alice).get(LINEAGE.format(n=1))
    assert last_seq() == mark


def test_read_only_key_reads_lineage(alice, versions):
    key, _ = api_key_create(
        caller=Caller(user=alice), user=alice, name="read", scopes=["registry:read"]
    )
    response = client_with_key(key).get(LINEAGE.format(n=1))
    assert response.status_code == 200
    assert len(response.json()["edges"]) == 1

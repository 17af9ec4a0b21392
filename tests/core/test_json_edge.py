"""JSON at the edge of the API: bodies and free-form fields the rows and the audit log
cannot hold are refused with a 400 naming the field, and text is NFC before any service
sees it, so a row and its audit record hold the same characters."""

from __future__ import annotations

import json
import unicodedata

import pytest

from registry.models import ModelVersion, RegisteredModel
from tests import factories
from tests.apitools import assert_error, assert_no_record_since, last_seq, only_record_since
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

MODELS = "/api/v1/models/"
VERSIONS = "/api/v1/models/credit-score/versions/"
NFD = "re\u0301sume\u0301 of the e\u0301tude"


@pytest.fixture
def model(alice, team):
    return factories.registered_model(alice, name="credit-score", risk_tier="high", team=team)


def post_raw(user, url: str, body: str):
    """A body exactly as written: literals the test client's encoder would never produce."""
    return client_for(user).post(
        url, data=body.encode("utf-8", "surrogatepass"), content_type="application/json"
    )


def registration(extra: str) -> str:
    return (
        '{"artifact_uri": "s3://models/credit-score/2.pkl", '
        f'"artifact_digest": "{factories.digest("credit-score-v2")}", {extra}}}'
    )


@pytest.mark.parametrize(
    ("field", "extra"),
    [
        ("metrics", '"metrics": {"auc": 1e400}'),
        ("metrics", '"metrics": {"auc": -1e400}'),
        ("parameters", '"parameters": {"\\ud800": 1}'),
        ("parameters", '"parameters": {"depth": "\\udfff"}'),
        ("parameters", '"parameters": {"a\\u0000b": 1}'),
        ("parameters", '"parameters": {"depth": "x\\u0000"}'),
        ("framework", '"framework": "torch\\ud800"'),
        ("framework", '"framework": 1e400'),
    ],
)
def test_values_the_rows_cannot_hold_are_refused_naming_the_field(alice, model, field, extra):
    seq = last_seq()
    response = post_raw(alice, VERSIONS, registration(extra))
    assert_error(response, 400, field=field)
    assert_no_record_since(seq)
    assert not ModelVersion.objects.exists()


def test_a_body_nested_100000_deep_is_a_400_not_a_server_error(alice, model):
    seq = last_seq()
    body = registration('"parameters": ' + "[" * 100_000 + "]" * 100_000)
    error = assert_error(post_raw(alice, VERSIONS, body), 400)
    assert "deep" in error["message"]
    assert_no_record_since(seq)


def test_a_free_form_field_nested_past_the_limit_is_refused_naming_it(alice, model):
    deep = '{"a": ' * 40 + "1" + "}" * 40
    error = assert_error(
        post_raw(alice, VERSIONS, registration(f'"parameters": {deep}')), 400, field="parameters"
    )
    assert "deep" in error["fields"]["parameters"][0]


def test_a_free_form_field_larger_than_the_limit_is_refused_naming_it(alice, model, settings):
    settings.WARDEN_JSON_MAX_BYTES = 1000
    params = json.dumps({f"p{i}": "x" * 50 for i in range(40)})
    error = assert_error(
        post_raw(alice, VERSIONS, registration(f'"parameters": {params}')), 400, field="parameters"
    )
    assert "large" in error["fields"]["parameters"][0]


def test_keys_that_become_equal_under_nfc_are_refused(alice, model):
    body = registration('"parameters": {"\\u00e9": 1, "e\\u0301": 2}')
    assert_error(post_raw(alice, VERSIONS, body), 400, field="parameters")


def test_dataset_schema_with_a_lone_surrogate_is_refused_naming_it(alice):
    dataset = factories.dataset(alice, name="credit-applications")
    body = (
        f'{{"content_digest": "{factories.digest("apps")}", "row_count": 3, '
        '"schema": {"age\\ud800": "integer"}}'
    )
    seq = last_seq()
    assert_error(
        post_raw(alice, f"/api/v1/datasets/{dataset.name}/versions/", body), 400, field="schema"
    )
    assert_no_record_since(seq)


def test_model_description_in_nfd_is_stored_and_audited_in_nfc(alice, team):
    seq = last_seq()
    response = client_for(alice).post(
        MODELS,
        {"name": "credit-score", "risk_tier": "high", "description": NFD},
        format="json",
    )
    assert response.status_code == 201, response.content
    record, body = only_record_since(seq)
    assert record.action == "registered_model.created"
    row = RegisteredModel.objects.get(name="credit-score")
    assert row.description == body["data"]["description"] == unicodedata.normalize("NFC", NFD)
    assert response.json()["description"] == row.description


def test_version_metrics_key_and_parameter_in_nfd_are_stored_and_audited_in_nfc(alice, model):
    seq = last_seq()
    response = client_for(alice).post(
        VERSIONS,
        {
            "artifact_uri": "s3://models/credit-score/2.pkl",
            "artifact_digest": factories.digest("credit-score-v2"),
            "framework": "sci\u0301kit",
            "metrics": {"pre\u0301cision": 0.5},
            "parameters": {"note": NFD},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    record, body = only_record_since(seq)
    assert record.action == "model_version.registered"
    row = ModelVersion.objects.get()
    nfc = unicodedata.normalize("NFC", NFD)
    assert row.metrics == {"pr\u00e9cision": 0.5}
    assert body["data"]["metrics"] == [["pr\u00e9cision", "0.5"]]
    assert row.parameters == {"note": nfc}
    assert body["data"]["parameters"] == [["note", nfc]]
    assert row.framework == body["data"]["framework"] == "sc\u00edkit"

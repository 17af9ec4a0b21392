"""Arbitrary JSON posted into every free-form field (and a plain text field) through the
API: it is either stored and recorded alike (the row read back equals its audit record, and
the record's bytes pass the audit verifier) or refused with a 400 in the one error format
naming the field. Never a server error. Runs on SQLite and PostgreSQL: NUL is refused by
PostgreSQL only, which is why both passes matter."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from audit.canonical import to_profile
from audit.verification import verify_log
from audit.verifier import check_body
from governance.approvals.models import SignOffPolicy
from registry.models import DatasetVersion, ModelVersion, RegisteredModel
from registry.services import SCHEMA_TYPES
from registry.snapshots import dataset_version_snapshot, model_snapshot, version_snapshot
from tests import factories
from tests.apitools import assert_error, last_seq, records_since
from tests.approvals.conftest import seeded_defaults
from tests.conftest import client_for

__all__ = ["seeded_defaults"]

pytestmark = pytest.mark.django_db

EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_unique = itertools.count()


class Raw(str):
    """A number literal written into the body verbatim (``1e400`` has no Python float)."""


class Obj(tuple[tuple[str, Any], ...]):
    """A JSON object as written: its pairs in order, a key possibly given twice."""


def encode(value: Any) -> str:
    """JSON text of ``value``; strings ASCII-escaped, so lone surrogates survive as ``\\udXXX``."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, Obj):
        return "{" + ",".join(f"{json.dumps(k)}:{encode(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode(v) for v in value) + "]"
    return json.dumps(value)


TRICKY_TEXT = [
    "e\u0301",
    "\u00e9",
    "A\u030a",
    "\u212b",
    "\x00",
    "a\x00",
    "\ud800",
    "x\udfffy",
    "\ufeff",
    "\U0001f600",
]
TRICKY_NUMBERS = [
    "1e400", "-1e400", "1e309", "1.7976931348623157e308", "1.8e308", "1e-400", "-0.0", "0e0",
    "1E16", "1e22", "-12345678901234567e3", "123456789012345678901234567890", "9" * 5000,
    "Infinity", "-Infinity", "NaN",
]  # fmt: skip

texts = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=12),
    st.sampled_from(TRICKY_TEXT),
    st.lists(st.sampled_from([*TRICKY_TEXT, "a", " "]), max_size=4).map("".join),
)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=1e300, allow_infinity=False),
    st.sampled_from(TRICKY_NUMBERS).map(Raw),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)


def objects(keys: st.SearchStrategy[str], items: st.SearchStrategy[Any]) -> st.SearchStrategy[Obj]:
    return st.lists(st.tuples(keys, items), max_size=5).map(Obj)


def nested(value: Any, depth: int) -> Any:
    for level in range(depth):
        value = [value] if level % 2 else Obj((("k", value),))
    return value


trees = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | objects(texts, children),
    max_leaves=12,
)
deep = st.builds(nested, objects(texts, scalars), st.integers(min_value=0, max_value=80))


def free_form(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly objects a field could accept, then anything at all, then deep ones."""
    return st.one_of(objects(texts, leaves), objects(texts, trees), trees, deep)


def posted(user: Any, url: str, payload: dict[str, str], field: str, value: Any) -> Any:
    """POST ``payload`` (already JSON text per field) plus ``field``; 201 or a 400 naming it."""
    body = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in payload.items())
    body += f',"{field}":{encode(value)}}}'
    response = client_for(user).post(url, data=body, content_type="application/json")
    if response.status_code != 201:
        assert_error(response, 400, field=field)
    return response


def recorded(seq: int, action: str) -> dict[str, Any]:
    """The one record since ``seq``: its action, and its bytes pass the verifier's checks."""
    records = records_since(seq)
    assert [r.action for r in records] == [action]
    body = records[0].body
    body = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    _leaf, _fields, problem = check_body(body)
    assert problem is None, problem
    return json.loads(body)["data"]


@pytest.fixture
def model(alice, team):
    return factories.registered_model(alice, name="credit-score", risk_tier="high", team=team)


@pytest.fixture
def dataset(alice):
    return factories.dataset(alice, name="credit-applications")


def _registration() -> dict[str, str]:
    n = next(_unique)
    return {
        "artifact_uri": json.dumps(f"s3://models/credit-score/{n}.pkl"),
        "artifact_digest": json.dumps(factories.digest(f"credit-score-{n}")),
    }


@pytest.mark.parametrize("field", ["parameters", "metrics"])
@EXAMPLES
@given(value=free_form(scalars))
@example(value=Obj((("auc", Raw("1e400")),)))
@example(value=Obj((("\ud800", 1),)))
@example(value=Obj((("a\x00", 1),)))
@example(value=Obj((("x", "\x00"),)))
@example(value=Obj((("e\u0301", 1.5), ("big", Raw("1e22")), ("neg", Raw("-0.0")))))
@example(value=nested(Obj((("k", 1),)), 100))
def test_version_free_form_fields_store_and_audit_alike_or_refuse(alice, model, field, value):
    seq = last_seq()
    response = posted(alice, "/api/v1/models/credit-score/versions/", _registration(), field, value)
    if response.status_code == 201:
        data = recorded(seq, "model_version.registered")
        row = ModelVersion.objects.get(model=model, version=response.json()["version"])
        assert to_profile(version_snapshot(row)) == data
        assert response.json()[field] == getattr(row, field)
    assert verify_log().ok


SCHEMA_LEAVES = st.one_of(st.sampled_from(sorted(SCHEMA_TYPES)), scalars)


@EXAMPLES
@given(value=free_form(SCHEMA_LEAVES))
@example(value=Obj((("age\ud800", "integer"),)))
@example(value=Obj((("a\x00ge", "integer"),)))
@example(value=Obj((("a\u0301ge", "integer"),)))
def test_dataset_schema_stores_and_audits_alike_or_refuses(alice, dataset, value):
    seq = last_seq()
    payload = {
        "content_digest": json.dumps(factories.digest(f"apps-{next(_unique)}")),
        "row_count": "10",
    }
    response = posted(alice, f"/api/v1/datasets/{dataset.name}/versions/", payload, "schema", value)
    if response.status_code == 201:
        data = recorded(seq, "dataset_version.registered")
        row = DatasetVersion.objects.get(dataset=dataset, version=response.json()["version"])
        assert to_profile(dataset_version_snapshot(row)) == data
    assert verify_log().ok


POLICY = {
    "environment": '"dev"',
    "risk_tier": '"high"',
    "steps": '[{"name": "peer-review", "roles": ["validator"]}]',
}


@EXAMPLES
@given(value=free_form(scalars))
@example(value=Obj((("min_impact_ratio", Raw("1e400")),)))
@example(value=Obj((("\u00e9", 1),)))
@example(value=Obj((("x", "\x00"),)))
def test_policy_evidence_thresholds_store_and_audit_alike_or_refuse(admin_user, value):
    seq = last_seq()
    body = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in POLICY.items())
    body += ',"evidence":[{"kind":"fairness","thresholds":' + encode(value) + "}]}"
    response = client_for(admin_user).post(
        "/api/v1/policies/", data=body, content_type="application/json"
    )
    if response.status_code != 201:
        # The field is nested in the evidence list: the refusal names the list.
        assert_error(response, 400, field="evidence")
        return
    data = recorded(seq, "signoff_policy.published")
    row = SignOffPolicy.objects.get(
        environment__name="dev", risk_tier="high", version=data["version"]
    )
    assert row.evidence == data["evidence"]
    assert verify_log().ok


@EXAMPLES
@given(value=st.one_of(texts, scalars, trees))
@example(value="re\u0301sume\u0301")
@example(value="a\x00")
@example(value="\ud800")
@example(value=Raw("1e400"))
def test_model_description_stores_and_audits_alike_or_refuses(alice, team, value):
    seq = last_seq()
    name = f"model-{next(_unique)}"
    payload = {"name": json.dumps(name), "risk_tier": '"low"'}
    response = posted(alice, "/api/v1/models/", payload, "description", value)
    if response.status_code == 201:
        data = recorded(seq, "registered_model.created")
        row = RegisteredModel.objects.get(name=name)
        assert to_profile(model_snapshot(row)) == data
        assert response.json()["description"] == row.description
    assert verify_log().ok

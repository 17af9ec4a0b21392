"""The registry judges who may act before what they sent: a caller who may see the object but
not change it is refused with 403 whatever the body, and one who may not see it gets 404, so
a validation error never tells a caller without the right anything about the input's rules.
The same body from a caller who may act is a 400, so each case would fail if the order were
reversed."""

from __future__ import annotations

import pytest

from tests import factories
from tests.apitools import assert_error, assert_no_record_since, last_seq
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

BAD = {"unknown": True}  # refused by every registry input serializer (400, field named)

# (method, path, the caller who may act): each refused to victor (a validator who sees every
# model and dataset and may change none of them) with 403.
WRITES = [
    ("patch", "/api/v1/models/credit-score/", "alice"),
    ("post", "/api/v1/models/credit-score/risk", "rita"),
    ("post", "/api/v1/models/credit-score/retire", "alice"),
    ("post", "/api/v1/models/credit-score/versions/", "alice"),
    ("post", "/api/v1/models/credit-score/versions/1/status", "alice"),
    ("patch", "/api/v1/datasets/applications/", "alice"),
    ("post", "/api/v1/datasets/applications/retire", "alice"),
    ("post", "/api/v1/datasets/applications/versions/", "alice"),
]


@pytest.fixture
def cast(alice, team, victor, rita, charlie):
    model = factories.registered_model(alice, name="credit-score", risk_tier="high", team=team)
    factories.model_version(alice, model)
    factories.dataset(alice, name="applications")
    return {"alice": alice, "victor": victor, "rita": rita, "charlie": charlie}


@pytest.mark.parametrize(("method", "path", "allowed"), WRITES)
def test_a_caller_without_the_right_gets_403_not_400_for_a_bad_body(cast, method, path, allowed):
    mark = last_seq()
    refused = getattr(client_for(cast["victor"]), method)(path, BAD, format="json")
    assert_error(refused, 403, code="permission_denied")
    judged = getattr(client_for(cast[allowed]), method)(path, BAD, format="json")
    assert_error(judged, 400, field="unknown")
    assert_no_record_since(mark)


@pytest.mark.parametrize(
    ("method", "path"), [(m, p) for m, p, _ in WRITES if p.startswith("/api/v1/models/")]
)
def test_a_caller_who_cannot_see_the_model_gets_404_for_a_bad_body(cast, method, path):
    refused = getattr(client_for(cast["charlie"]), method)(path, BAD, format="json")
    assert_error(refused, 404, code="not_found")

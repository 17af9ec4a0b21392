"""The API fuzzed against its own OpenAPI schema (schemathesis): every operation, with an API
key that holds every scope on an account with broad roles, and anonymously. No request may
end in a server error, and every response must be documented: its status code, its content
type and its body.

The run is bounded (a few valid and a few schema-breaking examples per operation, no
shrinking) and derandomized, so it fits CI and fails the same way twice. It runs once, in the
suite's SQLite pass: the PostgreSQL pass would fuzz the same views again for a minute more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import Group
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.accounts.callers import Caller
from core.accounts.models import ApiKeyScope
from core.roles import Role
from governance.accounts.services import api_key_create
from tests import factories
from tests.conftest import make_person

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.slow,  # minutes of generated requests: not in make test-fast
    pytest.mark.skipif(
        connections["default"].vendor != "sqlite",
        reason="fuzzes the API once, in the SQLite pass",
    ),
]

# Per operation and credential: valid input as the schema describes it, then input that
# breaks it (wrong types, missing or extra fields, out-of-range values).
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 8}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def wsgi_app() -> Iterator[WSGIHandler]:
    """The whole Django stack as WSGI, inside the test's transaction: like Django's test
    client, it must not close the connection at the end of each request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def broad_key(team: Group) -> str:
    """A personal token with every scope, of a person holding every role but administrator,
    with a model, a version and a dataset of their team to find."""
    person = make_person(
        "fuzz",
        Role.DATA_SCIENTIST,
        Role.ML_ENGINEER,
        Role.VALIDATOR,
        Role.RISK_OFFICER,
        Role.COMPLIANCE_OFFICER,
        Role.AUDITOR,
        team=team,
        full_name="Fay Fuzz",
    )
    model = factories.registered_model(person, name="credit-score", team=team)
    factories.model_version(person, model)
    factories.dataset(person, name="credit-applications")
    key, _ = api_key_create(
        caller=Caller(user=person, auth="cli"),
        user=person,
        name="fuzzing",
        scopes=[scope.value for scope in ApiKeyScope],
    )
    return key


def _fuzz(
    schema: Any, headers: dict[str, str], report: Callable[[str, int, BaseException], None]
) -> int:
    """Run every operation's examples; returns how many cases were sent."""
    sent = 0
    for result in schema.get_all_operations():
        for mode, examples in EXAMPLES.items():
            sent += _fuzz_operation(result.ok(), mode, examples, headers, report)
    return sent


def _fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    examples: int,
    headers: dict[str, str],
    report: Callable[[str, int, BaseException], None],
) -> int:
    sent = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    def run(case: Any) -> None:
        nonlocal sent
        sent += 1
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    # Schemathesis reports its findings as a BaseExceptionGroup: note the operation's first
    # finding and go on with the next one.
    except (Exception, BaseExceptionGroup) as failure:
        report(f"{operation.label} ({mode.value})", sent, failure)
    return sent


@pytest.mark.parametrize("credential", ["api_key", "anonymous"])
def test_every_operation_answers_as_its_schema_says(
    credential: str, wsgi_app: WSGIHandler, broad_key: str, capsys: pytest.CaptureFixture
):
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)
    headers = {"Authorization": f"Bearer {broad_key}"} if credential == "api_key" else {}
    failures: list[str] = []

    def report(label: str, sent: int, failure: BaseException) -> None:
        failures.append(f"{label}: {failure}")

    operations = sum(1 for _ in schema.get_all_operations())
    sent = _fuzz(schema, headers, report)
    with capsys.disabled():
        print(f"\nfuzzed {operations} operations ({credential}): {sent} cases")
    assert not failures, "\n\n".join(failures)

"""The gate's statements, pinned for every outcome on both databases: a recorded check
(authentication, the decision, the gate-check row and the audit append) in at most 5 SQL
statements besides transaction control, the unrecorded status in at most 3. Transactional
tests, so that what is counted is what a request issues (no test-case savepoints). Django
logs a transaction's ``BEGIN`` (SQLite: ``BEGIN IMMEDIATE``) and ``COMMIT`` among the
queries: they are allowed for, and not counted as statements."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone

from core.accounts.callers import Caller
from governance.approvals import services
from registry import services as registry
from tests import factories
from tests.approvals.conftest import (
    PASSWORD,
    FixtureEvidence,
    approve_through,
    deploy,
    provided_evidence,
)
from tests.conftest import client_for, client_with_key

pytestmark = pytest.mark.django_db(transaction=True)

RECORDED_STATEMENTS = 5
STATUS_STATEMENTS = 3
TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.I)


def statements(captured: Any) -> list[str]:
    """The statements a captured block issued, transaction control left out."""
    return [q["sql"] for q in captured.captured_queries if not TRANSACTION_CONTROL.match(q["sql"])]


def control_logged(transactions: int) -> int:
    """How many transaction-control lines Django logs for that many transactions."""
    return 2 * transactions


def in_prod(cast: SimpleNamespace) -> None:
    """Deployed to dev and test; the prod request signed through its four steps."""
    deploy(cast.ci, cast.version, "dev")
    deploy(cast.ci, cast.version, "test")
    p = cast.people
    approve_through(cast.version, "prod", p.alice, p.victor, p.vera, p.rita, p.carl)


def pending(cast: SimpleNamespace) -> None:
    deploy(cast.ci, cast.version, "dev")
    deploy(cast.ci, cast.version, "test")
    cast.request = services.deployment_request_submit(
        caller=Caller(user=cast.people.alice), version=cast.version, environment="prod",
        reason="ship",
    )  # fmt: skip


def rejected(cast: SimpleNamespace) -> None:
    pending(cast)
    services.signoff_sign(
        caller=Caller(user=cast.people.victor), request=cast.request, decision="reject",
        password=PASSWORD, comment="the calibration is off",
    )  # fmt: skip


def approved_dev(cast: SimpleNamespace) -> None:
    cast.request = approve_through(cast.version, "dev", cast.people.alice)


def revoked(cast: SimpleNamespace) -> None:
    approved_dev(cast)
    services.deployment_request_revoke(
        caller=Caller(user=cast.people.rita), request=cast.request, reason="model card is wrong"
    )


def expired(cast: SimpleNamespace) -> None:
    approved_dev(cast)
    later = timezone.now() + dt.timedelta(days=31)
    cast.monkeypatch.setattr(timezone, "now", lambda: later)


def retired(cast: SimpleNamespace) -> None:
    approved_dev(cast)
    registry.model_retire(
        caller=Caller(user=cast.admin), model=cast.version.model, reason="decommissioned"
    )


def waiting(cast: SimpleNamespace) -> None:
    services.signoff_policy_publish(
        caller=Caller(user=cast.admin), environment="dev", risk_tier="high", steps=[],
        wait_seconds=3600, note="an hour's pause after approval",
    )  # fmt: skip
    approved_dev(cast)


def open_finding(cast: SimpleNamespace) -> None:
    approved_dev(cast)
    services.finding_open(
        caller=Caller(user=cast.people.victor), version=cast.version,
        title="Calibration drifts for applicants over 60", severity="high",
        owner=cast.people.alice,
    )  # fmt: skip


def emergency(cast: SimpleNamespace) -> None:
    services.deployment_emergency(
        caller=Caller(user=cast.people.rita), version=cast.version, environment="prod",
        reason="outage: the live model mis-scores", password=PASSWORD,
    )  # fmt: skip


def nothing(cast: SimpleNamespace) -> None:
    return None


def with_evidence(**drift: Any) -> Callable[[SimpleNamespace], None]:
    def setup(cast: SimpleNamespace) -> None:
        in_prod(cast)
        cast.evidence = {
            "fairness": FixtureEvidence("fairness"),
            "drift": FixtureEvidence("drift", **drift),
        }

    return setup


# outcome -> (set-up, environment asked about, digest override, a reason the answer carries)
OUTCOMES: dict[str, tuple[Callable[[SimpleNamespace], None], str, str | None, str | None]] = {
    "allowed": (approved_dev, "dev", None, None),
    "allowed_in_prod": (with_evidence(), "prod", None, None),
    "break_glass": (emergency, "prod", None, None),
    "not_requested": (nothing, "dev", None, "not_requested"),
    "previous_environment_missing": (nothing, "test", None, "previous_environment_missing"),
    "pending_step": (pending, "prod", None, "pending_step:validation"),
    "rejected": (rejected, "prod", None, "rejected"),
    "revoked": (revoked, "dev", None, "revoked"),
    "expired": (expired, "dev", None, "expired"),
    "digest_mismatch": (approved_dev, "dev", factories.digest("tampered"), "digest_mismatch"),
    "retired": (retired, "dev", None, "retired"),
    "waiting_until": (waiting, "dev", None, "waiting_until:"),
    "evidence_missing": (in_prod, "prod", None, "evidence_missing:fairness"),
    "evidence_failed": (with_evidence(passed=False), "prod", None, "evidence_failed:drift"),
    "evidence_stale": (
        with_evidence(age=dt.timedelta(days=31)),
        "prod",
        None,
        "evidence_stale:drift",
    ),
    "open_finding": (open_finding, "dev", None, "open_finding:"),
}


@pytest.fixture
def cast(people, admin_user, version, ci, monkeypatch) -> SimpleNamespace:
    return SimpleNamespace(
        people=people, admin=admin_user, version=version, ci=ci, monkeypatch=monkeypatch,
        evidence={},
    )  # fmt: skip


@pytest.mark.parametrize("outcome", list(OUTCOMES))
def test_the_gate_answers_each_outcome_in_few_statements(
    outcome, cast, ci_key, django_assert_max_num_queries
):
    setup, environment, digest, reason = OUTCOMES[outcome]
    version = cast.version
    setup(cast)
    question = {
        "model": version.model.name,
        "version": version.version,
        "environment": environment,
        "digest": digest or version.artifact_digest,
    }
    client = client_with_key(ci_key)
    with provided_evidence(cast.evidence):
        with django_assert_max_num_queries(STATUS_STATEMENTS) as status_queries:
            status = client.get("/api/v1/gate/status", question)
        with django_assert_max_num_queries(
            RECORDED_STATEMENTS + control_logged(1)
        ) as recorded_queries:
            recorded = client.get("/api/v1/gate", question)

    assert len(statements(status_queries)) <= STATUS_STATEMENTS
    assert len(statements(recorded_queries)) <= RECORDED_STATEMENTS, statements(recorded_queries)

    assert status.status_code == recorded.status_code == 200, recorded.json()
    body = recorded.json()
    assert {k: body[k] for k in ("allowed", "reasons")} == {
        k: status.json()[k] for k in ("allowed", "reasons")
    }
    if reason is None:
        assert body["allowed"] is True, body
    else:
        assert body["allowed"] is False
        assert any(r.startswith(reason) for r in body["reasons"]), body["reasons"]


@pytest.mark.django_db
def test_the_one_statement_sees_what_the_registry_lets_the_caller_see(
    charlie, rita, version, ci_key
):
    """Out of scope is 404 like a missing version; a per-model grant to the person or to a
    group of theirs, or the global view permission through a role, makes it visible."""
    from django.contrib.auth.models import Group

    from core.roles import Role
    from tests.conftest import make_person

    question = {
        "model": version.model.name, "version": version.version, "environment": "dev",
        "digest": version.artifact_digest,
    }  # fmt: skip

    def status(user) -> int:
        return client_for(user).get("/api/v1/gate/status", question).status_code

    def grant(**grantee) -> None:
        services.signing_grant(
            caller=Caller(user=rita), model=version.model, role=Role.VALIDATOR,
            reason="second opinion", **grantee,
        )  # fmt: skip

    assert status(charlie) == 404
    grant(user=charlie)
    assert status(charlie) == 200
    outsiders = Group.objects.create(name="outsiders")
    dora = make_person("dora", Role.DATA_SCIENTIST, team=outsiders)
    assert status(dora) == 404
    grant(group=outsiders)
    assert status(dora) == 200
    assert status(make_person("audrey", Role.AUDITOR)) == 200
    with_key = client_with_key(ci_key)
    assert with_key.get("/api/v1/gate/status", question).status_code == 200
    assert with_key.get("/api/v1/gate", {**question, "environment": "staging"}).status_code == 400
    assert with_key.get("/api/v1/gate", {**question, "version": 9}).status_code == 404


@pytest.mark.django_db
def test_a_missing_model_and_a_missing_version_are_told_apart(version, ci_key):
    question = {"model": "no-such-model", "version": 1, "environment": "dev",
                "digest": version.artifact_digest}  # fmt: skip
    client = client_with_key(ci_key)
    missing_model = client.get("/api/v1/gate", question).json()["error"]
    assert missing_model == {"code": "not_found", "message": "model 'no-such-model' not found"}
    missing_version = client.get(
        "/api/v1/gate/status", {**question, "model": version.model.name, "version": 9}
    ).json()["error"]
    assert missing_version["message"] == "version 9 of model 'credit-score' not found"

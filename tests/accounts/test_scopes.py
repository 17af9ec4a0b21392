"""The scope table, walked: what each API key scope opens, what no key opens whatever its
scopes, and that a scope narrows the key's account without granting it anything.

Person-only operations are tried with a personal token holding every scope, of a person whose
role would let them do it in a session: each answer is 403 ``person_required`` and nothing is
recorded. Scoped operations are tried with a key holding only the scope (200/201/202, and the
audit record the write must leave) and with a key holding every other scope (403).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from core.accounts.callers import Caller
from core.accounts.models import ApiKeyScope, User
from governance.accounts.services import api_key_create
from governance.approvals import services as approvals
from governance.approvals.models import DeploymentRequest
from registry.models import DatasetStatus, ModelStatus, VersionStatus
from tests import factories
from tests.apitools import assert_error, assert_no_record_since, last_seq, records_since
from tests.approvals.conftest import PASSWORD, seeded_defaults
from tests.conftest import client_with_key

__all__ = ["seeded_defaults"]

pytestmark = pytest.mark.django_db

ALL_SCOPES = frozenset(ApiKeyScope.values)
MODEL = "/api/v1/models/credit-score"
VERSION = f"{MODEL}/versions/1"
DATASET = "/api/v1/datasets/applications"


@pytest.fixture
def world(request, alice, victor, ci_account) -> SimpleNamespace:
    """A high-risk model of alice's team whose first version is deployed to dev under an
    approved request and has a pending request to test and an open finding, a second
    version, and alice's dataset. The rest of the cast exists too."""
    for name in ("bob", "rita", "carl", "admin_user"):
        request.getfixturevalue(name)
    model = factories.registered_model(
        alice, name="credit-score", risk_tier="high", team=alice.groups.get(name="credit-risk")
    )
    version = factories.model_version(alice, model, artifact_digest=factories.digest("v1"))
    factories.model_version(alice, model, artifact_digest=factories.digest("v1 retrained"))
    dataset = factories.dataset(alice, name="applications")
    factories.dataset_version(alice, dataset)
    approved = approvals.deployment_request_submit(
        caller=Caller(user=alice), version=version, environment="dev", reason="try it"
    )
    approvals.deployment_report(
        caller=Caller(user=ci_account, auth="api_key"),
        version=version,
        environment="dev",
        event="deployed",
    )
    pending = approvals.deployment_request_submit(
        caller=Caller(user=alice), version=version, environment="test", reason="review it"
    )
    finding = approvals.finding_open(
        caller=Caller(user=victor), version=version, title="t", severity="low", owner=alice
    )
    return SimpleNamespace(
        model=model,
        version=version,
        dataset=dataset,
        approved=approved,
        pending=pending,
        finding=finding,
    )


def token(user: User, scopes: frozenset[str] | set[str]) -> str:
    """A key of ``user`` holding ``scopes``: a person's own token, or (for a service
    account) one an administrator made."""
    maker = User.objects.get(username="root") if user.is_service_account else user
    key, _ = api_key_create(
        caller=Caller(user=maker, auth="cli"), user=user, name="scopes", scopes=sorted(scopes)
    )
    return key


def send(key: str, method: str, url: str, body: dict[str, Any] | None) -> Any:
    client = client_with_key(key)
    if method == "get":
        return client.get(url, body or {})
    if method == "multipart":
        return client.post(url, body or {}, format="multipart")
    return getattr(client, method)(url, body or {}, format="json")


@dataclass(frozen=True)
class PersonOnly:
    """An operation no key may do; ``who`` would be allowed to do it in a session."""

    name: str
    who: str
    method: str
    url: str
    body: dict[str, Any] | None = None


PERSON_ONLY = [
    PersonOnly("retire a model", "rita", "post", f"{MODEL}/retire", {"reason": "obsolete"}),
    PersonOnly(
        "retire a version",
        "rita",
        "post",
        f"{VERSION}/status",
        {"status": "retired", "reason": "obsolete"},
    ),
    PersonOnly(
        "deprecate a version",
        "rita",
        "post",
        f"{VERSION}/status",
        {"status": "deprecated", "reason": "superseded"},
    ),
    PersonOnly("retire a dataset", "alice", "post", f"{DATASET}/retire", {"reason": "consent"}),
    PersonOnly(
        "change a model's risk tier",
        "rita",
        "post",
        f"{MODEL}/risk",
        {"risk_tier": "medium", "reason": "reassessed"},
    ),
    PersonOnly(
        "revoke an approval",
        "carl",
        "post",
        "/api/v1/deployment-requests/{approved}/revoke",
        {"reason": "control failed"},
    ),
    PersonOnly(
        "sign",
        "victor",
        "post",
        "/api/v1/deployment-requests/{pending}/sign",
        {"decision": "approve", "password": PASSWORD},
    ),
    PersonOnly(
        "reject",
        "victor",
        "post",
        "/api/v1/deployment-requests/{pending}/reject",
        {"comment": "no", "password": PASSWORD},
    ),
    PersonOnly(
        "see the content to sign",
        "victor",
        "get",
        "/api/v1/deployment-requests/{pending}/signing-content",
    ),
    PersonOnly(
        "break the glass",
        "rita",
        "post",
        "/api/v1/deployment-requests/emergency",
        {
            "model": "credit-score",
            "version": 1,
            "environment": "prod",
            "reason": "outage",
            "password": PASSWORD,
        },
    ),
    PersonOnly(
        "sign a retrospective review",
        "victor",
        "post",
        "/api/v1/deployment-requests/{approved}/retrospective",
        {"decision": "approve", "password": PASSWORD},
    ),
    PersonOnly(
        "raise a finding",
        "victor",
        "post",
        f"{VERSION}/findings",
        {"title": "t", "severity": "high", "owner": "alice"},
    ),
    PersonOnly(
        "resolve a finding",
        "rita",
        "post",
        "/api/v1/findings/{finding}/resolve",
        {"resolution": "fixed"},
    ),
    PersonOnly(
        "grant signing",
        "rita",
        "post",
        f"{MODEL}/signing-grants",
        {"role": "validator", "user": "bob", "reason": "second line"},
    ),
    PersonOnly(
        "revoke a signing grant",
        "rita",
        "post",
        f"{MODEL}/signing-grants/revoke",
        {"role": "validator", "user": "bob", "reason": "done"},
    ),
    PersonOnly(
        "publish a policy",
        "root",
        "post",
        "/api/v1/policies/",
        {"environment": "dev", "risk_tier": "low", "steps": []},
    ),
    PersonOnly("list webhooks", "carl", "get", "/api/v1/webhooks/"),
    PersonOnly(
        "subscribe a webhook",
        "carl",
        "post",
        "/api/v1/webhooks/",
        {"url": "https://hooks.example.org/warden", "events": ["gate.denied"]},
    ),
]


def _url(template: str, world: SimpleNamespace) -> str:
    return template.format(
        approved=world.approved.pk, pending=world.pending.pk, finding=world.finding.pk
    )


@pytest.mark.parametrize("operation", PERSON_ONLY, ids=lambda op: op.name)
def test_no_key_may_do_a_person_only_operation_whatever_its_scopes(world, operation):
    who = User.objects.get(username=operation.who)
    key = token(who, ALL_SCOPES)
    seq = last_seq()
    response = send(key, operation.method, _url(operation.url, world), operation.body)
    error = assert_error(response, 403, code="person_required")
    assert error["message"] == "this action cannot be done with an API key"
    assert_no_record_since(seq)


def test_person_only_refusals_leave_everything_as_it_was(world):
    for operation in PERSON_ONLY:
        key = token(User.objects.get(username=operation.who), ALL_SCOPES)
        send(key, operation.method, _url(operation.url, world), operation.body)
    world.model.refresh_from_db()
    world.version.refresh_from_db()
    world.dataset.refresh_from_db()
    assert world.model.status == ModelStatus.ACTIVE
    assert world.model.risk_tier == "high"
    assert world.version.status == VersionStatus.REGISTERED
    assert world.dataset.status == DatasetStatus.ACTIVE
    assert DeploymentRequest.objects.get(pk=world.approved.pk).state == "approved"
    assert DeploymentRequest.objects.get(pk=world.pending.pk).state == "pending"


@dataclass(frozen=True)
class Scoped:
    """An operation a key may do when it holds ``scope`` and its account ``who`` may do it;
    ``granted_by`` are all the scopes that open it; ``action`` the record a write leaves."""

    scope: str
    who: str
    method: str
    url: str
    body: dict[str, Any] | None = None
    status: int = 200
    action: str | None = None
    granted_by: frozenset[str] = field(default_factory=frozenset)

    @property
    def opening(self) -> frozenset[str]:
        return self.granted_by or frozenset({self.scope})


GATE_QUESTION = {
    "model": "credit-score",
    "version": 1,
    "environment": "test",
    "digest": factories.digest("v1"),
}
READ_REGISTRY = frozenset({"registry:read", "registry:write"})
READ_REPORTS = frozenset({"registry:read", "registry:write", "reports:write"})

SCOPED = [
    Scoped("gate:read", "ci-credit", "get", "/api/v1/gate", GATE_QUESTION, action="gate.checked"),
    Scoped("gate:read", "ci-credit", "get", "/api/v1/gate/status", GATE_QUESTION),
    Scoped("registry:read", "alice", "get", f"{MODEL}/", granted_by=READ_REGISTRY),
    Scoped("registry:read", "alice", "get", f"{VERSION}/lineage", granted_by=READ_REGISTRY),
    Scoped("registry:read", "alice", "get", f"{DATASET}/versions/", granted_by=READ_REGISTRY),
    Scoped(
        "registry:write",
        "alice",
        "patch",
        f"{MODEL}/",
        {"description": "Scores applications."},
        action="registered_model.updated",
    ),
    Scoped(
        "registry:write",
        "ci-credit",
        "post",
        f"{MODEL}/versions/",
        {
            "artifact_uri": "s3://models/credit/3",
            "artifact_digest": factories.digest("v2"),
            "author": "alice",
        },
        status=201,
        action="model_version.registered",
    ),
    Scoped(
        "registry:write",
        "alice",
        "post",
        f"{DATASET}/versions/",
        {"content_digest": factories.digest("apps-2"), "row_count": 10, "schema": {"a": "integer"}},
        status=201,
        action="dataset_version.registered",
    ),
    Scoped(
        "deployments:write",
        "ci-credit",
        "post",
        "/api/v1/deployments/",
        {"model": "credit-score", "version": 1, "environment": "dev", "event": "deployed"},
        status=201,
        action="deployment.deployed",
    ),
    Scoped(
        "deployments:write",
        "bob",
        "post",
        "/api/v1/deployment-requests/",
        {"model": "credit-score", "version": 2, "environment": "dev", "reason": "retrained"},
        status=201,
        action="deployment_request.submitted",
    ),
    Scoped(
        "deployments:write",
        "alice",
        "post",
        "/api/v1/deployment-requests/{pending}/withdraw",
        {"reason": "not yet"},
        action="deployment_request.withdrawn",
    ),
    Scoped("audit:read", "victor", "get", "/api/v1/audit/records/"),
    Scoped("audit:read", "victor", "get", "/api/v1/audit/verify"),
    Scoped(
        "reports:write",
        "alice",
        "multipart",
        "/api/v1/reports/",
        {"kind": "lineage", "model": "credit-score", "version": 1},
        status=202,
        action="report.requested",
    ),
    Scoped("reports:write", "alice", "get", "/api/v1/reports/", granted_by=READ_REPORTS),
]


def _scoped_id(op: Scoped) -> str:
    return f"{op.scope} {op.method} {op.url}"


@pytest.mark.parametrize("operation", SCOPED, ids=_scoped_id)
def test_a_key_without_the_scope_is_refused(world, operation):
    key = token(User.objects.get(username=operation.who), ALL_SCOPES - operation.opening)
    seq = last_seq()
    response = send(key, operation.method, _url(operation.url, world), operation.body)
    error = assert_error(response, 403, code="permission_denied")
    assert "lacks the scope" in error["message"]
    assert_no_record_since(seq)


@pytest.mark.parametrize("operation", SCOPED, ids=_scoped_id)
def test_a_key_with_the_scope_does_what_its_account_may(world, operation):
    key = token(User.objects.get(username=operation.who), {operation.scope})
    seq = last_seq()
    response = send(key, operation.method, _url(operation.url, world), operation.body)
    assert response.status_code == operation.status, response.content
    actions = [record.action for record in records_since(seq)]
    if operation.action is None:
        assert actions == []
    else:
        assert operation.action in actions, actions


@pytest.mark.parametrize("operation", SCOPED, ids=_scoped_id)
def test_a_reserved_monitoring_key_opens_nothing_yet(world, operation):
    key = token(User.objects.get(username=operation.who), {"monitoring:write"})
    response = send(key, operation.method, _url(operation.url, world), operation.body)
    assert_error(response, 403, code="permission_denied")


def test_every_scope_is_in_the_table():
    walked = {op.scope for op in SCOPED} | {"monitoring:write"}
    assert walked == ALL_SCOPES


def test_a_scope_grants_nothing_the_account_lacks(world, charlie, audrey):
    stranger = token(charlie, ALL_SCOPES)
    auditor = token(audrey, ALL_SCOPES)
    seq = last_seq()
    patch = send(stranger, "patch", f"{MODEL}/", {"description": "mine now"})
    assert_error(patch, 404)
    snapshot = send(
        stranger,
        "post",
        f"{DATASET}/versions/",
        {"content_digest": factories.digest("x"), "row_count": 1, "schema": {"a": "integer"}},
    )
    assert_error(snapshot, 403, code="permission_denied")
    assert_error(send(stranger, "get", "/api/v1/audit/records/", None), 403)
    # An auditor reads everything but changes nothing, whatever the key says.
    assert send(auditor, "get", f"{MODEL}/", None).status_code == 200
    assert_error(send(auditor, "patch", f"{MODEL}/", {"description": "x"}), 403)
    assert_no_record_since(seq)

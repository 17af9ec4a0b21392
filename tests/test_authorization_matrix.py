"""The authorization matrix: every caller against every API operation of the OpenAPI schema
and every page, on objects inside and outside the caller's scope, judged against the policy
table of ``tests/authz_policy.py``.

A caller who must not do something is refused with the right status and never succeeds:
anonymous 401 on the API (pages send them to the login, 302), a key that lacks the scope or
tries a person's act 403 (``person_required`` for the latter), an object outside the caller's
scope 404, a missing role or grant 403. A caller who may do it is not refused with 401, 403 or
404 on an object in scope (400 or 409 from the request or the object's state are fine). Lists
hold only objects in the caller's scope. An operation the schema lists and the table does not
classify fails the test, so a new endpoint is covered as soon as it is routed.

The cast is built once and every cell runs inside a savepoint rolled back after it, so cells
do not see each other's writes. The matrix runs once, in the SQLite pass (``one_pass``).
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from audit.checkpoints import checkpoint_create
from audit.exports import audit_export_request
from core.accounts.callers import Caller
from core.accounts.models import ApiKeyScope, User
from core.roles import Role
from governance.accounts.services import api_key_create, user_create
from governance.approvals import services as approvals
from governance.approvals.models import DeploymentRequest
from governance.reports import services as reports
from governance.webhooks import services as webhooks
from governance.webhooks.models import WebhookDelivery
from tests import factories
from tests.audit.conftest import only_signing_key
from tests.authz_policy import ADMIN_STAFF, API, PAGES, SEES, Rule
from tests.conftest import PASSWORD, make_person

pytestmark = [pytest.mark.django_db, pytest.mark.one_pass]

# Cells that fail only because of work under way elsewhere: (caller, method, path, side).
# They are expected to fail (strict), so they turn red once that work lands.
PENDING: frozenset[tuple[str, str, str, str | None]] = frozenset()

# URL patterns outside /api/ that are not pages to walk, and why.
NOT_PAGES = {
    "accounts/logout/": "POST only: it ends the caller's session",
    "reports/package/<uuid:package_id>/": (
        "a package the caller started; tests/reports/test_package.py walks its visibility"
    ),
    "reports/package/<uuid:package_id>/pdf/": (
        "a package the caller started; tests/reports/test_package.py walks its visibility"
    ),
    "tokens/<int:token_id>/revoke/": (
        "POST on one's own token only; tests/workspace/test_tokens.py shows another's is a 404"
    ),
}

ROLES = {
    "ds_a": Role.DATA_SCIENTIST,
    "ds_b": Role.DATA_SCIENTIST,
    "ml_engineer": Role.ML_ENGINEER,
    "validator": Role.VALIDATOR,
    "risk_officer": Role.RISK_OFFICER,
    "compliance_officer": Role.COMPLIANCE_OFFICER,
    "auditor": Role.AUDITOR,
    "admin": Role.ADMIN,
}
OWNER = {"A": "ds_a", "B": "ds_b"}
TEAM = {"A": {"ds_a", "ci"}, "B": {"ds_b", "ml_engineer"}}
SUCCESS = {200, 201, 202, 204}
_digests = itertools.count(1)


@dataclass(frozen=True)
class Actor:
    """One caller of the matrix: a person in a session, a key of the CI account, or nobody."""

    name: str
    account: str | None  # the cast name of the account (``ci`` for every key), None: anonymous
    scopes: frozenset[str] | None = None  # a key's scopes; None for a session

    @property
    def is_key(self) -> bool:
        return self.scopes is not None


def _build(tmp_path: Path, settings: Any) -> SimpleNamespace:
    only_signing_key(settings, tmp_path, publish=True)
    settings.REPORTS_UPLOAD_DIR = str(tmp_path / "inputs")
    settings.REPORTS_DIR = str(tmp_path / "pdfs")
    team_a = Group.objects.get_or_create(name="matrix-team-a")[0]
    team_b = Group.objects.get_or_create(name="matrix-team-b")[0]
    teams = {"ds_a": team_a, "ds_b": team_b, "ml_engineer": team_b}
    people = {
        name: make_person(
            f"matrix-{name}",
            role,
            team=teams.get(name),
            is_staff=name == "admin",
            is_superuser=name == "admin",
        )
        for name, role in ROLES.items()
    }
    ci = user_create(
        caller=None,
        username="matrix-ci",
        kind=User.Kind.SERVICE,
        groups=[team_a],
        reason="matrix cast",
    )
    admin_caller = Caller(user=people["admin"], auth="cli")
    grantee = make_person("matrix-grantee")

    sides: dict[str, dict[str, Any]] = {}
    for side, team in (("A", team_a), ("B", team_b)):
        owner = people[OWNER[side]]
        model = factories.registered_model(
            owner, name=f"matrix-model-{side.lower()}", risk_tier="medium", team=team
        )
        digest = factories.digest(f"matrix {side}")
        version = factories.model_version(owner, model, artifact_digest=digest)
        if side == "A":
            first = checkpoint_create().checkpoint
            assert first is not None
        dataset = factories.dataset(owner, name=f"matrix-data-{side.lower()}")
        factories.dataset_version(owner, dataset)
        approved = approvals.deployment_request_submit(
            caller=Caller(user=owner), version=version, environment="dev", reason="matrix dev"
        )
        approvals.deployment_report(
            caller=admin_caller, version=version, environment="dev", event="deployed"
        )
        pending = approvals.deployment_request_submit(
            caller=Caller(user=owner),
            version=version,
            environment="test",
            reason=f"matrix-request-{side.lower()}",
        )
        emergency = approvals.deployment_emergency(
            caller=Caller(user=people["risk_officer"]),
            version=version,
            environment="prod",
            reason="matrix outage",
            password=PASSWORD,
        )
        finding = approvals.finding_open(
            caller=Caller(user=people["validator"]),
            version=version,
            title=f"matrix-finding-{side.lower()}",
            severity="low",
            owner=owner,
        )
        report = reports.report_request(
            caller=Caller(user=owner),
            version=version,
            kind="lineage",
            parameters={},
            uploads={},
            datasets={},
            overrides={},
        )
        manager = people["risk_officer" if side == "A" else "compliance_officer"]
        subscription, _ = webhooks.subscription_create(
            caller=Caller(user=manager),
            url=f"https://hooks.example.org/{side.lower()}",
            events=["gate.denied"],
            description=f"matrix-hook-{side.lower()}",
        )
        delivery = WebhookDelivery.objects.create(
            subscription=subscription,
            event_id=uuid.uuid4(),
            event_type="gate.denied",
            payload=b"{}",
        )
        approvals.signing_grant(
            caller=Caller(user=people["risk_officer"]),
            model=model,
            role="validator",
            reason="matrix",
            user=grantee,
        )
        exporter = people["auditor" if side == "A" else "admin"]
        export = audit_export_request(
            requested_by=exporter, actor=Caller(user=exporter).actor, model=model.name
        )
        sides[side] = {
            "model": model.name,
            "name": model.name,
            "dataset": dataset.name,
            "version": 1,
            "version_pk": version.pk,
            "digest": digest,
            "owner": owner.username,
            "password": PASSWORD,
            "request_id": pending.pk,
            "approved_id": approved.pk,
            "emergency_id": emergency.pk,
            "finding_id": finding.pk,
            "report_id": str(report.pk),
            "subscription_id": subscription.pk,
            "delivery_id": str(delivery.delivery_id),
            "export_id": str(export.id),
            "environment": "dev",
            # What only this side's object of each kind shows in a list.
            "tokens": {
                "model": model.name,
                "dataset": dataset.name,
                "request": f"matrix-request-{side.lower()}",
                "request_page": f'href="/approvals/{pending.pk}/"',
                "report": str(report.pk),
                "webhook": f"matrix-hook-{side.lower()}",
                "export": str(export.id),
            },
        }
    signed = checkpoint_create().checkpoint
    assert signed is not None
    for values in sides.values():
        values["size"] = signed.size
        values["first_size"] = first.size

    actors = [Actor("anonymous", None)]
    actors += [Actor(name, name) for name in ROLES]
    scopes = [*ApiKeyScope.values, None]
    keys: dict[str, str] = {}
    for scope in scopes:
        held = frozenset(ApiKeyScope.values) if scope is None else frozenset({scope})
        name = f"key[{scope or 'all scopes'}]"
        keys[name], _ = api_key_create(caller=admin_caller, user=ci, name=name, scopes=sorted(held))
        actors.append(Actor(name, "ci", held))
    return SimpleNamespace(people=people, ci=ci, sides=sides, actors=actors, keys=keys)


def _client(world: SimpleNamespace, actor: Actor) -> Client:
    client = APIClient()
    if actor.is_key:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.keys[actor.name]}")
    elif actor.account is not None:
        client.force_login(world.people[actor.account])
    return client


def _allowed_accounts(rule: Rule, side: str | None) -> set[str]:
    allowed = set(rule.who)
    if side is not None:
        if "owner" in allowed:
            allowed.add(OWNER[side])
        if "team" in allowed:
            allowed |= TEAM[side]
        if "team_people" in allowed:
            allowed |= TEAM[side] - {"ci"}
    return allowed


def expected_refusal(actor: Actor, rule: Rule, side: str | None, *, page: bool) -> int | None:
    """The status a cell must be refused with, or None when the caller may do it."""
    if page:
        if actor.account is None or actor.is_key:
            return None if rule.public else 302
        if rule.who == ADMIN_STAFF and actor.account not in ADMIN_STAFF:
            return 302
    elif rule.public:
        return None
    elif actor.account is None:
        return 401
    if actor.is_key:
        assert actor.scopes is not None
        if not rule.scopes or not actor.scopes & rule.scopes:
            return 403
    account = actor.account
    assert account is not None
    allowed = _allowed_accounts(rule, side)
    if rule.role_first and account not in allowed:
        return 403
    if rule.kind is not None and side not in SEES[rule.kind].get(account, ""):
        return rule.out_of_scope
    if account not in allowed:
        return 403
    return None


def schema_operations() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }


def page_routes() -> set[str]:
    def walk(patterns: Any, prefix: str = "") -> Any:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                yield prefix + str(entry.pattern)

    return {
        route
        for route in walk(get_resolver().url_patterns)
        if not route.startswith(("api/", "admin/"))
    }


_OBJECT_ID = {
    "request": "request_id",
    "approved": "approved_id",
    "emergency": "emergency_id",
}


def _fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        key = value[1:-1]
        if key == "shown_content":
            return values["shown_content"]()
        if key == "new_digest":
            return factories.digest(f"matrix new {next(_digests)}")
        return values[key]
    return value


def _url(template: str, rule: Rule, values: dict[str, Any]) -> str:
    values = dict(values)
    if rule.kind == "dataset":
        values["name"] = values["dataset"]
    if rule.kind in _OBJECT_ID:
        values["request_id"] = values[_OBJECT_ID[rule.kind]]
    path = (
        template.replace("<int:request_id>", "{request_id}")
        .replace("<str:name>", "{model}" if rule.kind == "model" else "{name}")
        .replace("<uuid:report_id>", "{report_id}")
        .replace("<int:version>", "{version}")
    )
    return path.format(**values)


def _send(client: Client, method: str, url: str, rule: Rule, values: dict[str, Any]) -> Any:
    if method == "GET":
        return client.get(url, _fill(rule.query or {}, values))
    body = _fill(rule.body or {}, values)
    if url.startswith("/api/"):
        if rule.multipart:
            return client.post(url, body, format="multipart")  # type: ignore[call-arg]
        return getattr(client, method.lower())(url, body, format="json")
    return client.post(url, body, format="multipart")  # type: ignore[call-arg]


def _shown_content(world: SimpleNamespace, cell: Cell) -> list[str]:
    """What the sign page shows the caller (the content's SHA-256 they would sign), as the
    page's hidden field sends it back."""
    user = world.people.get(cell.actor.account or "")
    if user is None:
        return []
    request = DeploymentRequest.objects.get(pk=world.sides[cell.side or "A"]["request_id"])
    preview = approvals.signoff_preview(user=user, request=request, decision="approve")
    return [f"approve:{preview.meaning}:{preview.sha256}"]


@dataclass
class Cell:
    actor: Actor
    method: str
    path: str
    side: str | None
    page: bool

    @property
    def key(self) -> tuple[str, str, str, str | None]:
        return (self.actor.name, self.method, self.path, self.side)


def _judge(cell: Cell, rule: Rule, response: Any, world: SimpleNamespace) -> str | None:
    """What is wrong with the answer to a cell, or None."""
    refusal = expected_refusal(cell.actor, rule, cell.side, page=cell.page)
    status = response.status_code
    if refusal is not None:
        if status in SUCCESS:
            return f"LEAK: {status}, expected {refusal}"
        if status != refusal:
            return f"refused with {status}, expected {refusal}"
        if refusal == 302:
            location = response["Location"]
            login = "/admin/login/" if cell.path.startswith("/admin/") else reverse("login")
            if not location.startswith(login):
                return f"redirected to {location}, expected the login"
        if not cell.page and refusal == 403 and cell.actor.is_key and not rule.scopes:
            code = response.json()["error"]["code"]
            if code != "person_required":
                return f"403 {code}, expected person_required"
        return None
    if status in {401, 403, 404}:
        return f"refused with {status} though allowed: {response.content[:200]!r}"
    if status >= 500:
        return f"server error {status}"
    if rule.lists and cell.side is not None and status == 200:
        token = world.sides[cell.side]["tokens"][rule.lists]
        body = response.content.decode()
        visible = cell.side in SEES[rule.lists].get(cell.actor.account or "", "")
        if not visible and token in body:
            return f"LEAK: the list shows {token}, outside the caller's scope"
        if visible and token not in body:
            return f"the list does not show {token}, in the caller's scope"
    return None


def _cells(world: SimpleNamespace) -> list[tuple[Cell, Rule]]:
    cells: list[tuple[Cell, Rule]] = []
    for actor in world.actors:
        for (method, path), rule in sorted(API.items()):
            for side in rule.side_list():
                cells.append((Cell(actor, method, path, side, page=False), rule))
        for (method, path), rule in sorted(PAGES.items()):
            for side in rule.side_list():
                cells.append((Cell(actor, method, path, side, page=True), rule))
        for path, rule in _admin_pages(world):
            cells.append((Cell(actor, "GET", path, None, page=True), rule))
    return cells


def _admin_pages(world: SimpleNamespace) -> list[tuple[str, Rule]]:
    """The changelist of every registered model, and the change page of one of its rows."""
    rule = Rule(who=ADMIN_STAFF, scopes=frozenset())
    pages = [("/admin/", rule)]
    for model, _ in sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label):
        meta = model._meta
        pages.append((reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"), rule))
        row = model._default_manager.order_by("pk").first()
        if row is not None:
            url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[row.pk])
            pages.append((url, rule))
    return pages


def test_every_operation_and_page_is_classified():
    operations = schema_operations()
    missing = sorted(operations - API.keys())
    assert not missing, f"classify these operations in tests/authz_policy.py: {missing}"
    stale = sorted(API.keys() - operations)
    assert not stale, f"no such operations in the schema: {stale}"
    routes = {path.lstrip("/") for _, path in PAGES} | NOT_PAGES.keys()
    unclassified = sorted(page_routes() - routes)
    assert not unclassified, f"classify these pages in tests/authz_policy.py: {unclassified}"


# The matrix is walked in shards that pytest-xdist spreads over its workers: each builds the
# same world and judges every MATRIX_SHARDS-th cell, so together they judge every cell once.
MATRIX_SHARDS = 4


@pytest.mark.parametrize("shard", range(MATRIX_SHARDS))
def test_authorization_matrix(shard, tmp_path, settings, capsys):
    world = _build(tmp_path, settings)
    failures: list[str] = []
    unexpected_passes: list[str] = []
    outcomes: Counter[str] = Counter()
    clients = {actor.name: _client(world, actor) for actor in world.actors}
    every_cell = _cells(world)
    cells = every_cell[shard::MATRIX_SHARDS]
    for cell, rule in cells:
        values = {
            **world.sides[cell.side or "A"],
            "shown_content": lambda cell=cell: _shown_content(world, cell),
        }
        url = cell.path if cell.path.startswith("/admin/") else _url(cell.path, rule, values)
        point = transaction.savepoint()
        try:
            response = _send(clients[cell.actor.name], cell.method, url, rule, values)
        finally:
            transaction.savepoint_rollback(point)
        outcomes[str(response.status_code)] += 1
        problem = _judge(cell, rule, response, world)
        label = f"{cell.actor.name} {cell.method} {url} [{cell.side or '-'}]"
        if cell.key in PENDING:
            if problem is None:
                unexpected_passes.append(label)
            continue
        if problem is not None:
            failures.append(f"{label}: {problem}")
    with capsys.disabled():
        print(
            f"\nauthorization matrix, shard {shard + 1} of {MATRIX_SHARDS}: {len(cells)} of "
            f"{len(every_cell)} cells, {len(API)} operations, "
            f"{len(PAGES)} approval pages, {len(_admin_pages(world))} admin pages, "
            f"{len(world.actors)} callers; outcomes {dict(sorted(outcomes.items()))}"
        )
    assert not unexpected_passes, "PENDING cells that now pass:\n" + "\n".join(unexpected_passes)
    assert not failures, f"{len(failures)} cells wrong:\n" + "\n".join(failures)


def test_a_list_leak_would_be_seen():
    """The judge is not blind: a list showing another side's object is reported."""
    world = SimpleNamespace(sides={"B": {"tokens": {"model": "matrix-model-b"}}})
    cell = Cell(Actor("ds_a", "ds_a"), "GET", "/api/v1/models/", "B", page=False)
    response = SimpleNamespace(status_code=200, content=json.dumps(["matrix-model-b"]).encode())
    assert _judge(cell, API[("GET", "/api/v1/models/")], response, world).startswith("LEAK")

"""The cast (healthchecks style) and the fixtures every test may use.

alice owns models (data scientist, team "credit-risk"), bob is her teammate, charlie is a
data scientist on no team (a stranger to alice's models), victor a validator, rita a risk
officer, carl a compliance officer, audrey an auditor, and `ci` a service account of the
credit-risk team.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connections
from django.test import TransactionTestCase
from rest_framework.test import APIClient

from audit import triggers
from core.accounts.callers import Caller
from core.accounts.models import ApiKey, User
from core.roles import Role
from governance.accounts.services import api_key_create, user_create, user_roles_change
from tests.support import CompletenessGuard

PASSWORD = "correct-horse-battery-staple"

_original_fixture_teardown = TransactionTestCase._fixture_teardown


def _fixture_teardown_past_triggers(self: TransactionTestCase) -> None:
    """Django's flush after a transactional test is refused by the append-only triggers:
    drop them as the database owner around the flush and put them back. Test code only."""
    aliases = [alias for alias in connections if alias in (self.databases or ())]
    for alias in aliases:
        triggers.uninstall(connections[alias])
    try:
        _original_fixture_teardown(self)
    finally:
        for alias in aliases:
            triggers.install(connections[alias])


TransactionTestCase._fixture_teardown = _fixture_teardown_past_triggers  # type: ignore[method-assign]


_publish_dirs = itertools.count()


@pytest.fixture(autouse=True)
def fresh_publish_dir(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test gets its own (not yet created) checkpoint publish directory, as it gets a
    fresh database: notes left by an earlier test would describe a log that no longer exists
    (the demo, the package and the checkpointer all sign and publish)."""
    base = tmp_path_factory.getbasetemp() / "published"
    path = base / f"{next(_publish_dirs)}"
    settings.AUDIT_CHECKPOINT_PUBLISH_DIR = str(path)
    yield path


@pytest.fixture(autouse=True)
def audit_completeness_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test whose code wrote a governed table without appending an audit record."""
    if request.node.get_closest_marker("no_audit_guard"):
        yield
        return
    guards = []
    stack = []
    for alias in connections:
        guard = CompletenessGuard()
        wrapper = connections[alias].execute_wrapper(guard)
        wrapper.__enter__()
        guards.append(guard)
        stack.append(wrapper)
    try:
        yield
    finally:
        for wrapper in reversed(stack):
            wrapper.__exit__(None, None, None)
    violations = [v for guard in guards for v in guard.finish()]
    if violations:
        pytest.fail("audit completeness: " + "; ".join(violations), pytrace=False)


@pytest.fixture(autouse=True)
def throttle_state_reset() -> Iterator[None]:
    """Login and API key throttles count per address in the cache: every test starts afresh."""
    from governance.accounts.throttling import reset_state

    reset_state()
    yield
    reset_state()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "no_audit_guard: the test writes governed tables directly on purpose"
    )
    config.addinivalue_line(
        "markers",
        "database_free: the test touches no database (pytest-django would refuse it one), so "
        "the suite's PostgreSQL pass would only repeat its SQLite pass: it runs once, there",
    )
    config.addinivalue_line(
        "markers",
        "one_pass: the test judges behaviour that does not depend on the database (the "
        "authorization matrix); it runs once, in the SQLite pass",
    )


# Fixtures through which a test gets a database (pytest-django's, and the live server's).
DATABASE_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
        "live_server",
    }
)


def touches_database(item: pytest.Item) -> bool:
    """Whether pytest-django gives the test a database: without one, any query it made would
    be refused, so such a test cannot behave differently on PostgreSQL."""
    if item.get_closest_marker("django_db"):
        return True
    return bool(DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The PostgreSQL pass runs the tests that have a database, and the ones that need the
    PostgreSQL server for themselves (``postgres``); a test without either ran in the SQLite
    pass already and would only repeat it (``database_free`` says so explicitly)."""
    if connections["default"].vendor == "sqlite":
        return
    once = pytest.mark.skip(reason="touches no database: runs once, in the SQLite pass")
    one_pass = pytest.mark.skip(reason="one pass is enough: runs in the SQLite pass")
    for item in items:
        if item.get_closest_marker("one_pass"):
            item.add_marker(one_pass)
        elif item.get_closest_marker("database_free") or not (
            touches_database(item) or item.get_closest_marker("postgres")
        ):
            item.add_marker(once)


def make_person(username: str, *roles: str, team: Group | None = None, **extra: Any) -> User:
    """A person of the cast, created (and recorded) by Warden itself with their roles."""
    first, _, last = extra.pop("full_name", username.title()).partition(" ")
    groups = [Group.objects.get_or_create(name=role)[0] for role in roles]
    return user_create(
        caller=None,
        username=username,
        password=PASSWORD,
        first_name=first,
        last_name=last,
        groups=[*groups, *([team] if team is not None else [])],
        reason="test cast",
        **extra,
    )


def add_to_groups(user: User, *groups: Group | str, by: User | None = None) -> User:
    """Add ``user`` to more groups (roles by name, or teams), recorded like any grant."""
    found = [Group.objects.get_or_create(name=g)[0] if isinstance(g, str) else g for g in groups]
    return user_roles_change(
        caller=Caller(user=by, auth="cli") if by is not None else None,
        user=user,
        groups=[*user.groups.all(), *found],
        reason="test setup",
    )


@pytest.fixture
def roles(db: None) -> None:
    """Role groups exist with their permissions (a flush after a transactional test removes
    migration data; post_migrate puts it back, and this makes sure)."""
    from governance.accounts.roles import sync_role_permissions

    sync_role_permissions()


@pytest.fixture
def team(roles: None) -> Group:
    return Group.objects.get_or_create(name="credit-risk")[0]


@pytest.fixture
def alice(team: Group) -> User:
    return make_person("alice", Role.DATA_SCIENTIST, team=team, full_name="Alice Archer")


@pytest.fixture
def bob(team: Group) -> User:
    return make_person("bob", Role.DATA_SCIENTIST, team=team, full_name="Bob Baker")


@pytest.fixture
def charlie(roles: None) -> User:
    return make_person("charlie", Role.DATA_SCIENTIST, full_name="Charlie Chen")


@pytest.fixture
def victor(roles: None) -> User:
    return make_person("victor", Role.VALIDATOR, full_name="Victor Vance")


@pytest.fixture
def rita(roles: None) -> User:
    return make_person("rita", Role.RISK_OFFICER, full_name="Rita Rossi")


@pytest.fixture
def carl(roles: None) -> User:
    return make_person("carl", Role.COMPLIANCE_OFFICER, full_name="Carl Cruz")


@pytest.fixture
def audrey(roles: None) -> User:
    return make_person("audrey", Role.AUDITOR, full_name="Audrey Adams")


@pytest.fixture
def admin_user(roles: None) -> User:
    return make_person("root", Role.ADMIN, is_staff=True, is_superuser=True, full_name="Ada Admin")


@pytest.fixture
def system_caller(admin_user: User) -> Caller:
    return Caller(user=admin_user, auth="cli")


@pytest.fixture
def ci_account(team: Group) -> User:
    return user_create(
        caller=None, username="ci-credit", kind=User.Kind.SERVICE, groups=[team], reason="test cast"
    )


def _key(owner: User, scopes: list[str], admin: User) -> tuple[str, ApiKey]:
    return api_key_create(
        caller=Caller(user=admin, auth="cli"),
        user=owner,
        name=f"{owner.username} key",
        scopes=scopes,
    )


@pytest.fixture
def ci_key(ci_account: User, admin_user: User) -> str:
    """A key of the team's CI account with every scope."""
    key, _ = _key(ci_account, ["registry:write", "gate:read", "deployments:write"], admin_user)
    return key


@pytest.fixture
def gate_only_key(ci_account: User, admin_user: User) -> str:
    """A key of the same account that may only ask the gate."""
    key, _ = _key(ci_account, ["gate:read"], admin_user)
    return key


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def client_for(user: User) -> APIClient:
    """An API client logged in as ``user`` through a real session."""
    client = APIClient()
    client.force_login(user)
    return client


def client_with_key(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client

"""The API's rate limit: fixed one-minute windows counted on the shared cache, per API key (its
own limit or the installation's default), per signed-in user and per client address; 429 in
the one error format with the seconds to the window's end; open while the cache is down."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.management import call_command
from django.test import override_settings

from audit.models import AuditRecord
from core.accounts.callers import Caller
from core.accounts.models import ApiKey, User
from core.errors import InvalidInput
from governance.accounts.services import (
    api_key_change,
    api_key_create,
    service_account_create,
)
from governance.accounts.throttling import ResilientCache
from tests.accounts.conftest import Clock
from tests.conftest import client_for, client_with_key

pytestmark = pytest.mark.django_db

MODELS = "/api/v1/models/"
PUBLIC_KEY = "/api/v1/audit/public-key"
CLOSED_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
    }
}
TEST_REDIS = "redis://127.0.0.1:6379/13"


def make_key(owner: User, admin: User, *, rate_limit: int | None = None) -> tuple[str, ApiKey]:
    return api_key_create(
        caller=Caller(user=admin, auth="cli"),
        user=owner,
        name=f"key {rate_limit}",
        scopes=["registry:read"],
        rate_limit=rate_limit,
    )


def statuses(client: Any, count: int, path: str = MODELS) -> list[int]:
    return [client.get(path).status_code for _ in range(count)]


def test_a_key_makes_its_own_limit_a_minute_then_is_answered_429_until_the_window_ends(
    ci_account: User, admin_user: User, clock: Clock
) -> None:
    key, _ = make_key(ci_account, admin_user, rate_limit=3)
    client = client_with_key(key)
    clock.advance(15)
    assert statuses(client, 3) == [200, 200, 200]
    response = client.get(MODELS)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert "request_id" in response.json()
    assert response["Retry-After"] == "45"
    clock.advance(44.5)
    refused = client.get(MODELS)
    assert refused.status_code == 429 and refused["Retry-After"] == "1"
    clock.advance(0.5)  # the next window
    assert statuses(client, 3) == [200, 200, 200]
    assert client.get(MODELS).status_code == 429


def test_the_count_is_one_counter_per_key_and_window_on_the_cache(
    ci_account: User, admin_user: User, clock: Clock
) -> None:
    key, row = make_key(ci_account, admin_user, rate_limit=10)
    client = client_with_key(key)
    start = int(clock())
    statuses(client, 4)
    clock.advance(59.9)
    statuses(client, 1)
    assert caches["default"].get(f"warden:rate:key:{row.pk}:{start}") == 5
    clock.advance(0.1)
    statuses(client, 2)
    assert caches["default"].get(f"warden:rate:key:{row.pk}:{start + 60}") == 2
    assert caches["default"].get(f"warden:rate:key:{row.pk}:{start}") == 5


def test_a_burst_across_the_boundary_is_two_windows(
    ci_account: User, admin_user: User, clock: Clock
) -> None:
    key, _ = make_key(ci_account, admin_user, rate_limit=2)
    client = client_with_key(key)
    clock.advance(59)
    assert statuses(client, 3) == [200, 200, 429]
    clock.advance(1)
    assert statuses(client, 3) == [200, 200, 429]


def test_the_limit_is_per_key_with_the_default_for_keys_without_their_own(
    ci_account: User, admin_user: User, clock: Clock, settings: Any
) -> None:
    settings.API_KEY_RATE_LIMIT_PER_MINUTE = 4
    own, _ = make_key(ci_account, admin_user, rate_limit=2)
    default, row = make_key(ci_account, admin_user)
    assert row.rate_limit is None
    assert statuses(client_with_key(own), 3) == [200, 200, 429]
    # Another key of the same account has a count of its own.
    assert statuses(client_with_key(default), 5) == [200, 200, 200, 200, 429]


def test_signed_in_users_are_limited_per_user_apart_from_their_keys(
    alice: User, admin_user: User, clock: Clock, settings: Any
) -> None:
    settings.API_USER_RATE_LIMIT_PER_MINUTE = 2
    session = client_for(alice)
    assert statuses(session, 3) == [200, 200, 429]
    key, _ = make_key(alice, admin_user, rate_limit=5)
    assert statuses(client_with_key(key), 2) == [200, 200]


def test_anonymous_callers_are_limited_per_address(db: None, clock: Clock, settings: Any) -> None:
    from rest_framework.test import APIClient

    settings.API_USER_RATE_LIMIT_PER_MINUTE = 2
    first, second = APIClient(REMOTE_ADDR="10.9.0.1"), APIClient(REMOTE_ADDR="10.9.0.2")
    assert statuses(first, 3, PUBLIC_KEY) == [200, 200, 429]
    assert statuses(second, 1, PUBLIC_KEY) == [200]


@override_settings(CACHES=CLOSED_REDIS)
def test_with_the_cache_down_a_key_past_its_limit_is_let_through_and_the_log_says_so(
    ci_account: User, admin_user: User, caplog: pytest.LogCaptureFixture
) -> None:
    key, _ = make_key(ci_account, admin_user, rate_limit=1)
    assert statuses(client_with_key(key), 3) == [200, 200, 200]
    assert any("fail open" in r.getMessage() for r in caplog.records)


@pytest.fixture
def shared_redis() -> Iterator[tuple[RedisCache, RedisCache]]:
    from tests.support import need, port_open

    need(port_open("127.0.0.1", 6379), "Redis", "start redis-server on 127.0.0.1:6379")
    first = RedisCache(TEST_REDIS, {"KEY_PREFIX": "rate-test"})
    second = RedisCache(TEST_REDIS, {"KEY_PREFIX": "rate-test"})
    first.clear()
    yield first, second
    first.clear()


@pytest.mark.database_free
def test_processes_share_the_window_count_on_redis_and_it_expires(
    shared_redis: tuple[RedisCache, RedisCache],
) -> None:
    first, second = shared_redis
    one, other = ResilientCache(lambda: first), ResilientCache(lambda: second)
    assert [one.count_shared("warden:rate:key:1:60", timeout=120) for _ in range(2)] == [1, 2]
    assert other.count_shared("warden:rate:key:1:60", timeout=120) == 3
    assert other.count_shared("warden:rate:key:2:60", timeout=120) == 1
    client = first._cache.get_client(write=False)
    assert 0 < client.ttl(first.make_and_validate_key("warden:rate:key:1:60")) <= 120


def test_a_key_is_created_with_its_limit_and_the_record_says_so(
    ci_account: User, admin_user: User
) -> None:
    _, row = make_key(ci_account, admin_user, rate_limit=50_000)
    assert ApiKey.objects.get(pk=row.pk).rate_limit == 50_000
    record = AuditRecord.objects.filter(action="api_key.created").latest("seq")
    assert json.loads(record.body)["data"]["rate_limit"] == 50_000


@pytest.mark.parametrize("bad", [0, -1, 1_000_001, True, 2.5, "100"])
def test_a_rate_limit_must_be_a_positive_whole_number(
    ci_account: User, admin_user: User, bad: Any
) -> None:
    with pytest.raises(InvalidInput) as refused:
        make_key(ci_account, admin_user, rate_limit=bad)
    assert "rate_limit" in refused.value.fields
    assert not ApiKey.objects.filter(user=ci_account).exists()


def test_a_service_account_key_and_the_command_take_a_limit(admin_user: User) -> None:
    _, row = service_account_create(
        caller=Caller(user=admin_user, auth="cli"),
        name="ci-fraud",
        scopes=["gate:read"],
        rate_limit=6000,
    )
    assert row.rate_limit == 6000
    call_command(
        "create_service_account",
        "ci-churn",
        "--scopes",
        "gate:read",
        "--rate-limit",
        "300",
        stdout=io.StringIO(),
    )
    assert ApiKey.objects.get(user__username="ci-churn").rate_limit == 300


def test_changing_a_keys_limit_is_recorded_with_before_and_after(
    ci_account: User, admin_user: User
) -> None:
    _, row = make_key(ci_account, admin_user)
    changed = api_key_change(
        caller=Caller(user=admin_user, auth="cli"), key=row, rate_limit=90, reason="load test"
    )
    assert changed.rate_limit == 90
    record = AuditRecord.objects.filter(action="api_key.changed").latest("seq")
    data = json.loads(record.body)["data"]
    assert data["before"] == {"rate_limit": None} and data["after"] == {"rate_limit": 90}


def test_the_admin_sets_a_keys_limit_and_refuses_zero(admin_user: User, ci_account: User) -> None:
    from django.test import Client

    _, row = make_key(ci_account, admin_user)
    client = Client()
    client.force_login(admin_user)
    url = f"/admin/accounts/apikey/{row.pk}/change/"
    form = {"name": row.name, "scopes": json.dumps(row.scopes), "reason": "pipeline load"}
    response = client.post(url, {**form, "rate_limit": "0"})
    assert response.status_code == 200  # the form again, with its error
    assert "rate_limit" in response.context["adminform"].form.errors
    assert ApiKey.objects.get(pk=row.pk).rate_limit is None
    assert client.post(url, {**form, "rate_limit": "240"}).status_code == 302
    assert ApiKey.objects.get(pk=row.pk).rate_limit == 240

"""Password guessing is slowed down on every login path, per account and per client address,
with delays that grow and never lock anyone out for good; bad API keys are throttled per
address; the attempts are security events in the audit log, aggregated so that a flood of
guesses cannot flood the log; and the shared cache going down never fails a request."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.core.cache.backends.redis import RedisCache
from django.test import Client, RequestFactory, override_settings

from audit.models import AuditRecord
from core import context
from tests.conftest import PASSWORD, client_with_key
from tests.support import need, port_open

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
CLOSED_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
    }
}
TEST_REDIS = "redis://127.0.0.1:6379/12"


def attempt(username: str, password: str, *, url: str = LOGIN, address: str = "10.0.0.1"):
    return Client(REMOTE_ADDR=address).post(
        url, {"username": username, "password": password, "next": "/approvals/"}
    )


def logged_in(response) -> bool:
    return response.status_code == 302


def login_records(action: str) -> list[dict]:
    return [json.loads(r.body) for r in AuditRecord.objects.filter(action=action).order_by("seq")]


def test_fifty_wrong_passwords_then_the_right_one_is_refused_without_checking_it(alice):
    for _ in range(50):
        assert not logged_in(attempt("alice", "guess"))
    response = attempt("alice", PASSWORD)
    assert response.status_code == 429
    assert "Too many failed sign-ins; try again in" in response.content.decode()


def test_admin_login_is_throttled_too(admin_user):
    for _ in range(50):
        assert attempt("root", "guess", url=ADMIN_LOGIN).status_code == 200
    response = attempt("root", PASSWORD, url=ADMIN_LOGIN)
    assert not logged_in(response)
    assert "Too many failed sign-ins; try again in" in response.content.decode()


def test_delays_grow_and_the_right_password_after_the_wait_logs_in(alice, clock):
    for _ in range(5):
        assert attempt("alice", "guess").status_code == 200
    refused = attempt("alice", PASSWORD)
    assert refused.status_code == 429
    assert "try again in 2 seconds" in refused.content.decode()
    clock.advance(2)
    assert attempt("alice", "guess").status_code == 200
    # A refused attempt does not lengthen the wait: hammering cannot keep the owner out.
    for _ in range(10):
        assert "try again in 4 seconds" in attempt("alice", PASSWORD).content.decode()
    clock.advance(4)
    assert logged_in(attempt("alice", PASSWORD))
    # Success forgets the account's failures.
    assert attempt("alice", "guess").status_code == 200
    assert attempt("alice", "guess").status_code == 200


def test_the_delay_is_capped(alice, clock):
    for _ in range(40):
        attempt("alice", "guess")
        clock.advance(3600)
    attempt("alice", "guess")
    assert "try again in 900 seconds" in attempt("alice", PASSWORD).content.decode()


def test_spraying_usernames_from_one_address_is_throttled_per_address(alice, bob, clock):
    for n in range(20):
        attempt(f"nobody{n}", "guess", address="10.0.0.9")
    assert attempt("bob", PASSWORD, address="10.0.0.9").status_code == 429
    assert logged_in(attempt("bob", PASSWORD, address="10.0.0.10"))


def test_other_accounts_and_addresses_are_not_slowed_by_one_accounts_guesses(alice, bob):
    for n in range(8):
        attempt("alice", "guess", address=f"10.1.0.{n}")
    assert attempt("alice", PASSWORD, address="10.1.0.99").status_code == 429
    assert logged_in(attempt("bob", PASSWORD, address="10.1.0.99"))


@pytest.mark.database_free
@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "expected"),
    [
        ([], "203.0.113.5", "198.51.100.7", "203.0.113.5"),
        (["10.0.0.0/8"], "203.0.113.5", "198.51.100.7", "203.0.113.5"),
        (["10.0.0.0/8"], "10.0.0.2", "198.51.100.7", "198.51.100.7"),
        (["10.0.0.0/8"], "10.0.0.2", "1.2.3.4, 198.51.100.7, 10.0.0.3", "198.51.100.7"),
        (["10.0.0.2"], "10.0.0.2", "", "10.0.0.2"),
        (["10.0.0.0/8"], "10.0.0.2", "10.0.0.4, 10.0.0.3", "10.0.0.4"),
        (["10.0.0.0/8"], "10.0.0.2", "not-an-address", "10.0.0.2"),
    ],
)
def test_forwarded_for_is_honoured_only_from_trusted_proxies(trusted, remote, forwarded, expected):
    from core.accounts.addresses import client_address

    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    request = RequestFactory().get("/", REMOTE_ADDR=remote, **headers)
    with override_settings(WARDEN_TRUSTED_PROXIES=trusted):
        assert client_address(request) == expected


@pytest.mark.database_free
@override_settings(AUDIT_RECORD_CLIENT_INFO=True, WARDEN_TRUSTED_PROXIES=["10.0.0.0/8"])
def test_records_carry_the_client_address_behind_a_trusted_proxy():
    from core.middleware import RequestIdMiddleware

    seen = {}

    def view(request):
        seen.update(context.current() or {})
        from django.http import HttpResponse

        return HttpResponse()

    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")
    RequestIdMiddleware(view)(request)
    assert seen["ip"] == "198.51.100.7"


def test_bad_api_keys_from_one_address_are_answered_429_until_the_window_passes(ci_key, clock):
    bad = client_with_key("wdn_not-a-key")
    codes = [bad.get("/api/v1/models/", REMOTE_ADDR="10.2.0.1").status_code for _ in range(60)]
    assert codes[:20] == [401] * 20
    assert set(codes[20:]) == {429}
    response = bad.get("/api/v1/models/", REMOTE_ADDR="10.2.0.1")
    assert response.status_code == 429
    body = response.json()
    assert body["error"]["code"] == "throttled" and "request_id" in body
    assert 0 < int(response["Retry-After"]) <= 600
    # Even a good key is refused from that address until the window has passed ...
    good = client_with_key(ci_key)
    assert good.get("/api/v1/models/", REMOTE_ADDR="10.2.0.1").status_code == 429
    assert good.get("/api/v1/models/", REMOTE_ADDR="10.2.0.2").status_code == 200
    clock.advance(int(response["Retry-After"]))
    assert good.get("/api/v1/models/", REMOTE_ADDR="10.2.0.1").status_code == 200
    assert bad.get("/api/v1/models/", REMOTE_ADDR="10.2.0.1").status_code == 401


def test_failed_logins_are_recorded_at_most_once_a_minute_with_the_count(alice, clock):
    for _ in range(3):
        attempt("alice", "guess-one")
        clock.advance(1)
    first = login_records("user.login_failed")
    assert len(first) == 1
    assert first[0]["object"] == {"type": "user", "id": str(alice.pk), "label": "alice"}
    assert first[0]["data"]["attempts"] == 1
    clock.advance(60)
    attempt("alice", "guess-two")
    records = login_records("user.login_failed")
    assert len(records) == 2
    assert records[1]["data"]["attempts"] == 3
    for record in AuditRecord.objects.all():
        assert "guess-one" not in record.body and "guess-two" not in record.body


def test_refused_attempts_are_counted_in_the_record(alice, clock):
    for _ in range(8):
        attempt("alice", "guess")
    clock.advance(61)
    attempt("alice", "guess")
    records = login_records("user.login_failed")
    assert [r["data"]["attempts"] for r in records] == [1, 8]
    assert records[1]["data"]["refused"] > 0


def test_an_unknown_username_is_recorded_hashed(db, clock):
    attempt("my-password-typed-as-username", "guess")
    (record,) = login_records("user.login_failed")
    digest = hmac.new(
        settings.SECRET_KEY.encode(), b"my-password-typed-as-username", hashlib.sha256
    ).hexdigest()
    assert record["object"]["id"] == f"hmac-sha256:{digest}"
    body = AuditRecord.objects.get(action="user.login_failed").body
    assert "my-password-typed-as-username" not in body


def test_successful_logins_are_recorded_once_a_minute(alice, clock):
    assert logged_in(attempt("alice", PASSWORD))
    assert logged_in(attempt("alice", PASSWORD))
    clock.advance(60)
    assert logged_in(attempt("alice", PASSWORD))
    records = login_records("user.logged_in")
    assert [r["data"]["logins"] for r in records] == [1, 2]
    assert records[0]["actor"]["id"] == str(alice.pk)
    assert records[0]["object"]["id"] == str(alice.pk)


@override_settings(CACHES=CLOSED_REDIS)
def test_logins_and_api_requests_work_and_throttle_while_the_cache_is_down(alice, caplog):
    client = Client()
    assert logged_in(client.post(LOGIN, {"username": "alice", "password": PASSWORD}))
    assert client.get("/api/v1/models/").status_code == 200
    assert any("fail open" in r.getMessage() for r in caplog.records)
    for _ in range(5):
        attempt("alice", "guess")
    assert attempt("alice", PASSWORD).status_code == 429


@pytest.fixture
def two_redis_clients() -> Iterator[tuple[RedisCache, RedisCache]]:
    need(port_open("127.0.0.1", 6379), "Redis", "start redis-server on 127.0.0.1:6379")
    first = RedisCache(TEST_REDIS, {"KEY_PREFIX": "throttle-test"})
    second = RedisCache(TEST_REDIS, {"KEY_PREFIX": "throttle-test"})
    first.clear()
    yield first, second
    first.clear()


def test_throttle_state_is_shared_between_cache_clients(two_redis_clients, clock):
    from governance.accounts.throttling import LoginThrottle, ResilientCache

    first, second = two_redis_clients
    one = LoginThrottle(ResilientCache(lambda: first))
    other = LoginThrottle(ResilientCache(lambda: second))
    for _ in range(5):
        assert one.wait_seconds(username="alice", address="10.3.0.1") == 0
        one.failed(username="alice", address="10.3.0.1")
    assert other.wait_seconds(username="alice", address="10.3.0.2") == 2
    other.succeeded(username="alice")
    assert one.wait_seconds(username="alice", address="10.3.0.2") == 0

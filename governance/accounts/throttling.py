"""Slowing down password and API key guessing, limiting the API's request rate, and recording
sign-ins as security events.

Every password login goes through ``ThrottledModelBackend`` (the approval pages, the admin, and
any future caller of ``django.contrib.auth.authenticate``). After a number of free failures for
an account or from a client address, each further attempt must wait a delay that doubles with
every failure, capped at ``LOGIN_MAX_DELAY_SECONDS``; an attempt during the wait is refused
without the password being checked, and does not lengthen the wait, so nobody can keep an
account's owner out for longer than the cap. A correct password after the wait logs in and
forgets the account's failures. Failed Bearer keys are counted per address in a fixed window;
past the threshold the address is answered 429 until the window has passed.

The API's rate limit (``FixedWindowRateThrottle``) counts requests in fixed windows, one
counter per caller and window: per API key (its own ``rate_limit`` a minute, else
``API_KEY_RATE_LIMIT_PER_MINUTE``), per signed-in user (``API_USER_RATE_LIMIT_PER_MINUTE``) and
per client address for anonymous callers (the same figure).

The counters live in Django's cache, shared by every process (Redis in production). When the
cache does not answer, the login and key-guessing counters fall back to this process's memory
(``ResilientCache``) and the API's rate limit lets requests through: a cache outage never
fails a request.

Sign-ins are security events in the audit log, aggregated so that guessing cannot flood it: at
most one record per account and per address a minute, carrying the attempts since the last
record. An unknown username (often a password typed in the wrong field) is stored only as an
HMAC with ``SECRET_KEY``; a password never.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.cache import BaseCache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle

from audit.actions import AuditAction
from audit.services import AuditEvent, Subject, audit_append_security_event
from core.accounts.addresses import client_address
from core.accounts.callers import request_api_key
from core.actors import Actor

log = logging.getLogger(__name__)

# The throttles' clock, in seconds; tests step it instead of waiting.
now: Callable[[], float] = time.time

LOGIN_FREE_FAILURES_PER_ACCOUNT = 5
# Offices and VPNs put many people behind one address.
LOGIN_FREE_FAILURES_PER_ADDRESS = 20
LOGIN_BASE_DELAY_SECONDS = 2
LOGIN_MAX_DELAY_SECONDS = 15 * 60
# Failures are forgotten after this long without another one.
LOGIN_FORGET_SECONDS = 24 * 3600
API_KEY_MAX_FAILURES = 20
API_KEY_WINDOW_SECONDS = 10 * 60
RECORD_INTERVAL_SECONDS = 60
# After the cache failed, this process uses its own counters for this long before retrying.
CACHE_RETRY_SECONDS = 5
WARNING_INTERVAL_SECONDS = 60

THROTTLED_MESSAGE = "Too many failed sign-ins; try again in {wait} {unit}"
CACHE_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError)


def throttled_message(wait: int) -> str:
    """The sentence a refused sign-in is answered with."""
    return THROTTLED_MESSAGE.format(wait=wait, unit="second" if wait == 1 else "seconds")


_fallback = LocMemCache("warden-throttle-fallback", {"OPTIONS": {"MAX_ENTRIES": 100_000}})
# When this process last saw the shared cache fail (monotonic seconds, per process).
_health = {"down_until": 0.0}
_last_warning: dict[str, float] = {}


def warn_at_most_once_per_interval(kind: str, message: str, *args: Any) -> None:
    """Log a warning, but not again for ``kind`` within ``WARNING_INTERVAL_SECONDS``."""
    moment = time.monotonic()
    if moment - _last_warning.get(kind, -math.inf) >= WARNING_INTERVAL_SECONDS:
        _last_warning[kind] = moment
        log.warning(message, *args)


def cache_is_down() -> bool:
    """Whether this process saw the shared cache fail within ``CACHE_RETRY_SECONDS``."""
    return time.monotonic() < _health["down_until"]


def _mark_cache_down(error: Exception) -> None:
    _health["down_until"] = time.monotonic() + CACHE_RETRY_SECONDS
    warn_at_most_once_per_interval(
        "login-throttle",
        "the shared cache does not answer (%s); login throttling uses this process's counters",
        error,
    )


class ResilientCache:
    """The few cache operations the throttles need, on the shared cache, or on this process's
    own counters while the shared cache does not answer."""

    def __init__(self, primary: Callable[[], BaseCache] = lambda: caches["default"]) -> None:
        self._primary = primary

    def _run(self, operation: Callable[[BaseCache], Any]) -> Any:
        if not cache_is_down():
            try:
                return operation(self._primary())
            except CACHE_ERRORS as error:
                _mark_cache_down(error)
        return operation(_fallback)

    def get(self, key: str) -> Any:
        return self._run(lambda cache: cache.get(key))

    def set(self, key: str, value: Any, timeout: float) -> None:
        self._run(lambda cache: cache.set(key, value, timeout))

    def delete_many(self, keys: Sequence[str]) -> None:
        self._run(lambda cache: cache.delete_many(list(keys)))

    def count(self, key: str, *, by: int = 1, timeout: float | None = None) -> int:
        """Add ``by`` to the counter ``key`` (created at 0) and return the new value; a given
        ``timeout`` is restarted (the counter expires that long after its last change)."""

        def bump(cache: BaseCache) -> int:
            for _ in range(3):
                if cache.add(key, by, timeout):
                    return by
                try:
                    value = int(cache.incr(key, by))
                except ValueError:  # expired between add and incr
                    continue
                if timeout is not None:
                    cache.touch(key, timeout)
                return value
            return by

        return int(self._run(bump))

    def count_shared(self, key: str, *, timeout: float) -> int | None:
        """Add 1 to the counter ``key`` on the shared cache (created at 1, expiring
        ``timeout`` seconds after it was created) and return the new value: one ``incr``, or
        an ``add`` when the counter does not exist yet. ``None`` while the shared cache does
        not answer: a per-process count would not be the limit, so the caller fails open."""
        if cache_is_down():
            return None
        try:
            cache = self._primary()
            for _ in range(3):
                try:
                    return int(cache.incr(key))
                except ValueError:  # not there yet, or expired
                    if cache.add(key, 1, timeout):
                        return 1
            return None
        except CACHE_ERRORS as error:
            _mark_cache_down(error)
            return None


def _key(*parts: str) -> str:
    digest = hmac.new(settings.SECRET_KEY.encode(), "\x00".join(parts).encode(), hashlib.sha256)
    return f"warden:throttle:{parts[0]}:{digest.hexdigest()[:40]}"


def _delay(failures: int, free: int) -> float:
    if failures < free:
        return 0
    return min(LOGIN_BASE_DELAY_SECONDS * 2 ** min(failures - free, 30), LOGIN_MAX_DELAY_SECONDS)


class LoginThrottle:
    """Progressive delays after failed passwords, per account and per client address."""

    def __init__(self, store: ResilientCache) -> None:
        self.store = store

    @staticmethod
    def _subjects(username: str, address: str | None) -> list[tuple[str, int]]:
        subjects = [(_key("account", username.casefold()), LOGIN_FREE_FAILURES_PER_ACCOUNT)]
        if address:
            subjects.append((_key("address", address), LOGIN_FREE_FAILURES_PER_ADDRESS))
        return subjects

    def wait_seconds(self, *, username: str, address: str | None) -> int:
        """Seconds before ``username`` may try a password from ``address``; 0 for now."""
        moment = now()
        wait = 0.0
        for key, _free in self._subjects(username, address):
            until = self.store.get(f"{key}:until")
            if until is not None and float(until) > moment:
                wait = max(wait, float(until) - moment)
        return math.ceil(wait)

    def failed(self, *, username: str, address: str | None) -> None:
        """Count a wrong password and start the wait it earns."""
        moment = now()
        for key, free in self._subjects(username, address):
            failures = self.store.count(f"{key}:failures", timeout=LOGIN_FORGET_SECONDS)
            delay = _delay(failures, free)
            if delay:
                self.store.set(f"{key}:until", moment + delay, timeout=delay + 60)

    def succeeded(self, *, username: str) -> None:
        """Forget the account's failures (not the address's: one account of one's own must
        not clear the way for guessing at others)."""
        key = _key("account", username.casefold())
        self.store.delete_many([f"{key}:failures", f"{key}:until"])


class ApiKeyThrottle:
    """Failed Bearer authentications per client address, in fixed windows."""

    def __init__(self, store: ResilientCache) -> None:
        self.store = store

    def wait_seconds(self, *, address: str) -> int:
        """Seconds until ``address`` may present a key again; 0 for now."""
        key = _key("api-key", address)
        ends = self.store.get(f"{key}:ends")
        if ends is None:
            return 0
        remaining = float(ends) - now()
        if remaining <= 0:
            self.store.delete_many([f"{key}:ends", f"{key}:failures"])
            return 0
        failures = self.store.get(f"{key}:failures") or 0
        return math.ceil(remaining) if int(failures) >= API_KEY_MAX_FAILURES else 0

    def failed(self, *, address: str) -> None:
        """Count a key that did not authenticate; the first one opens the window."""
        key = _key("api-key", address)
        if self.store.get(f"{key}:ends") is None:
            self.store.set(f"{key}:ends", now() + API_KEY_WINDOW_SECONDS, API_KEY_WINDOW_SECONDS)
        self.store.count(f"{key}:failures", timeout=API_KEY_WINDOW_SECONDS)


def login_throttle() -> LoginThrottle:
    return LoginThrottle(ResilientCache())


def api_key_throttle() -> ApiKeyThrottle:
    return ApiKeyThrottle(ResilientCache())


def reset_state() -> None:
    """Forget every counter (the shared cache's and this process's) and the cache's health."""
    _fallback.clear()
    _last_warning.clear()
    _health["down_until"] = 0.0
    with contextlib.suppress(*CACHE_ERRORS):
        caches["default"].clear()


UNAUTHENTICATED = Actor(type="user", id="anonymous", name="anonymous", auth="password")


def username_digest(username: str) -> str:
    """How an unknown username appears in the log: an HMAC-SHA256 with ``SECRET_KEY``, so
    that the same one can be recognised without being readable."""
    digest = hmac.new(settings.SECRET_KEY.encode(), username.encode(), hashlib.sha256)
    return f"hmac-sha256:{digest.hexdigest()}"


class _Aggregate:
    """Counts events per subject key and says when a record is due: at most one a minute for
    every key it involves. (Two processes may rarely both decide to record: a duplicate is
    harmless, a flood is not possible.)"""

    def __init__(self, store: ResilientCache, kind: str) -> None:
        self.store = store
        self.kind = kind

    def add(self, key: str, counter: str) -> None:
        self.store.count(f"{key}:{self.kind}:{counter}", timeout=LOGIN_FORGET_SECONDS)

    def take(self, key: str, counter: str) -> int:
        name = f"{key}:{self.kind}:{counter}"
        value = int(self.store.get(name) or 0)
        if value:
            self.store.count(name, by=-value, timeout=LOGIN_FORGET_SECONDS)
        return value

    def due(self, keys: Sequence[str]) -> bool:
        moment = now()
        for key in keys:
            last = self.store.get(f"{key}:{self.kind}:recorded")
            if last is not None and moment - float(last) < RECORD_INTERVAL_SECONDS:
                return False
        for key in keys:
            self.store.set(f"{key}:{self.kind}:recorded", moment, RECORD_INTERVAL_SECONDS * 2)
        return True


def record_login_failed(
    *, username: str, address: str | None, refused: bool, throttled: bool
) -> None:
    """Count a failed or refused sign-in and, when due, append ``user.login_failed``."""
    store = ResilientCache()
    aggregate = _Aggregate(store, "failed")
    account = _key("account", username.casefold())
    keys = [account] + ([_key("address", address)] if address else [])
    for key in keys:
        aggregate.add(key, "attempts")
        if refused:
            aggregate.add(key, "refused")
    if not aggregate.due(keys):
        return
    user_model = get_user_model()
    user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first()
    subject = (
        Subject(type="user", id=str(user.pk), label=username)
        if user is not None
        else Subject(type="user", id=username_digest(username), label="unknown username")
    )
    data: dict[str, Any] = {
        "attempts": aggregate.take(account, "attempts"),
        "refused": aggregate.take(account, "refused"),
        "throttled": throttled,
    }
    if address:
        data["address_attempts"] = aggregate.take(keys[1], "attempts")
        aggregate.take(keys[1], "refused")
    audit_append_security_event(
        event=AuditEvent(
            action=AuditAction.USER_LOGIN_FAILED, actor=UNAUTHENTICATED, object=subject, data=data
        )
    )


def record_logged_in(*, user: Any) -> None:
    """Count a successful sign-in and, when due, append ``user.logged_in``."""
    from core.accounts.actors import actor_for

    aggregate = _Aggregate(ResilientCache(), "succeeded")
    account = _key("account", user.get_username().casefold())
    aggregate.add(account, "logins")
    if not aggregate.due([account]):
        return
    audit_append_security_event(
        event=AuditEvent(
            action=AuditAction.USER_LOGGED_IN,
            actor=actor_for(user, "password"),
            object=Subject(type="user", id=str(user.pk), label=user.get_username()),
            data={"logins": aggregate.take(account, "logins")},
        )
    )


class ThrottledModelBackend(ModelBackend):
    """Django's username and password backend behind the login throttle. A refused attempt
    raises ``PermissionDenied`` (``authenticate`` then tries no other backend) and leaves the
    wait in ``request.login_wait_seconds`` for the login form to show."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        address = client_address(request) if request is not None else None
        throttle = login_throttle()
        wait = throttle.wait_seconds(username=username, address=address)
        if wait:
            if request is not None:
                request.login_wait_seconds = wait  # type: ignore[attr-defined]
            record_login_failed(username=username, address=address, refused=True, throttled=True)
            raise PermissionDenied(throttled_message(wait))
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            throttle.failed(username=username, address=address)
            throttled = bool(throttle.wait_seconds(username=username, address=address))
            record_login_failed(
                username=username, address=address, refused=False, throttled=throttled
            )
            return None
        throttle.succeeded(username=username)
        record_logged_in(user=user)
        return user


@dataclass(frozen=True)
class RateLimit:
    """``requests`` in each fixed window of ``window`` seconds, counted under ``subject``."""

    subject: str
    requests: int
    window: int = 60


def rate_limit_for(request: Any) -> RateLimit:
    """The limit a request counts against: its API key's, else its user's, else its address's."""
    key = request_api_key(request)
    if key is not None:
        return RateLimit(
            subject=f"key:{key.pk}",
            requests=key.rate_limit or settings.API_KEY_RATE_LIMIT_PER_MINUTE,
        )
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return RateLimit(
            subject=f"user:{user.pk}", requests=settings.API_USER_RATE_LIMIT_PER_MINUTE
        )
    address = hmac.new(settings.SECRET_KEY.encode(), client_address(request).encode(), "sha256")
    return RateLimit(
        subject=f"address:{address.hexdigest()[:40]}",
        requests=settings.API_USER_RATE_LIMIT_PER_MINUTE,
    )


class FixedWindowRateThrottle(BaseThrottle):
    """The API's rate limit: one counter per caller and window on the shared cache, key
    ``warden:rate:<subject>:<window start>``, raised once per request (``incr``, or ``add``
    for the window's first request). Past the limit the request is answered 429 ``throttled``
    with ``Retry-After``: the seconds to the end of the window. While the shared cache does
    not answer, requests are let through (and the log says so, at most once a minute): an
    outage of the cache must not take the API down with it.

    A fixed window lets a caller make up to twice its limit across a window's boundary; for a
    limit meant to stop a runaway pipeline, not to meter, that is worth one cache operation
    a request instead of a list of timestamps."""

    def __init__(self) -> None:
        self.retry_after: int | None = None

    def allow_request(self, request: Any, view: Any) -> bool:
        limit = rate_limit_for(request)
        moment = now()
        start = int(moment // limit.window) * limit.window
        # Kept for two windows, so that processes whose clocks differ a little share it.
        count = ResilientCache().count_shared(
            f"warden:rate:{limit.subject}:{start}", timeout=2 * limit.window
        )
        if count is None:
            warn_at_most_once_per_interval(
                "api-rate-limit", "the shared cache does not answer: API rate limits fail open"
            )
            return True
        if count <= limit.requests:
            return True
        self.retry_after = max(1, math.ceil(start + limit.window - moment))
        return False

    def wait(self) -> float | None:
        return self.retry_after

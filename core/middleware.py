"""Binds a request id (and client info when the installation enables it) for audit records;
keeps every error under /api/ in the one error format; spares bearer-key API requests the
browser's session, CSRF, session-user and message work."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.http.response import HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.deprecation import MiddlewareMixin

from core import context
from core.accounts.addresses import client_address
from core.errors import insufficient_storage, is_out_of_space
from core.exceptions import http_error_response

_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")


class RequestIdMiddleware:
    """Takes ``X-Request-ID`` when it is well formed, else makes one; echoes it back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        values: dict[str, str] = {"request_id": request_id}
        if settings.AUDIT_RECORD_CLIENT_INFO:
            values["ip"] = client_address(request)
            values["user_agent"] = request.headers.get("User-Agent", "")[:300]
        with context.bound(values):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def _is_json(response: HttpResponse) -> bool:
    media_type = response.get("Content-Type", "").split(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


class ApiErrorMiddleware:
    """Every error answered under ``/api/`` is in the one error format, also when no API view
    rendered it: Django's 404 for an unmatched path, its 400 for a body over
    ``DATA_UPLOAD_MAX_MEMORY_SIZE``, its 500 page (or the DEBUG traceback page) for an
    unexpected failure. A full disk met outside an API view's own error handling is 507
    (``insufficient_storage``). Django has already logged the failure when this sees the
    response. Other paths keep Django's pages."""

    # Headers of the refused response that still hold for its JSON replacement.
    _KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After", "X-Request-ID")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or not _is_api(request) or _is_json(response):
            return response
        replacement = http_error_response(response.status_code)
        for header in self._KEPT_HEADERS:
            if header in response:
                replacement[header] = response[header]
        return replacement

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        # Django would answer a plain 400 (its SuspiciousOperation); the limit deserves a 413.
        if _is_api(request) and isinstance(exception, RequestDataTooBig):
            return http_error_response(413)
        if _is_api(request) and is_out_of_space(exception):
            refusal = insufficient_storage(exception)
            return http_error_response(refusal.http_status, refusal.message)
        return None


def is_bearer_api_request(request: HttpRequest) -> bool:
    """Whether the request is for the API with ``Authorization: Bearer ...``: the API key
    authentication then answers it, with the key's user or 401, and never with a session (the
    same test as ``ApiKeyAuthentication``'s, on the same header)."""
    if not _is_api(request):
        return False
    words = request.META.get("HTTP_AUTHORIZATION", "").split()
    return bool(words) and words[0].lower() == "bearer"


class _BrowserOnly(MiddlewareMixin):
    """A browser middleware that lets a bearer API request pass untouched: a browser never
    sends a bearer key by itself, so such a request has no session or cookie to look after."""

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if is_bearer_api_request(request):
            self.bypass(request)
            return self.get_response(request)
        return super().__call__(request)

    def bypass(self, request: HttpRequest) -> None:
        """What the request needs from this middleware when its work is skipped."""


class BrowserSessionMiddleware(_BrowserOnly, SessionMiddleware):
    """Django's sessions, for every request but a bearer API request (no session is loaded,
    saved or set as a cookie for it, and its answer does not vary on cookies)."""


class BrowserCsrfViewMiddleware(_BrowserOnly, CsrfViewMiddleware):
    """Django's CSRF protection, for every request but a bearer API request: nothing rides on
    a cookie there. A request with a session cookie but no bearer key is checked as before."""

    def process_view(
        self,
        request: HttpRequest,
        callback: Callable[..., Any],
        callback_args: Any,
        callback_kwargs: Any,
    ) -> HttpResponseForbidden | None:
        if is_bearer_api_request(request):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)


class BrowserAuthenticationMiddleware(_BrowserOnly, AuthenticationMiddleware):
    """Django's session user, for every request but a bearer API request: that one is
    anonymous until the API authenticates its key (no session is read to find a user)."""

    def bypass(self, request: HttpRequest) -> None:
        request.user = AnonymousUser()

        async def auser() -> AnonymousUser:
            return AnonymousUser()

        request.auser = auser


class BrowserMessageMiddleware(_BrowserOnly, MessageMiddleware):
    """Django's messages (kept in the session), for every request but a bearer API request."""

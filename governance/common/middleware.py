"""Binds a request id (and client info when the installation enables it) for audit records."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from audit import context
from governance.accounts.throttling import client_address

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

"""``Authorization: Bearer <key>`` authentication for service accounts and personal tokens.

A client address whose keys keep failing is answered 429 (``throttled``, with ``Retry-After``)
until its window has passed, before any key it sends is looked up."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from core.accounts.addresses import client_address
from core.accounts.keys import hash_key
from core.accounts.lookup import api_key_with_user
from core.accounts.models import ApiKey, User
from governance.accounts.throttling import api_key_throttle


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """First authentication class, so 401 answers carry ``WWW-Authenticate: Bearer``."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts[0].lower() != self.keyword.lower():
            return None
        address = client_address(request)
        throttle = api_key_throttle()
        wait = throttle.wait_seconds(address=address)
        if wait:
            raise exceptions.Throttled(
                wait=wait, detail="too many failed API key authentications from this address."
            )
        try:
            return self._check(parts)
        except exceptions.AuthenticationFailed:
            throttle.failed(address=address)
            raise

    def _check(self, parts: list[str]) -> tuple[User, ApiKey]:
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("malformed Authorization header")
        api_key = api_key_with_user(hash_key(parts[1]))
        if api_key is None:
            raise exceptions.AuthenticationFailed("invalid API key")
        now = timezone.now()
        if api_key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("API key revoked")
        if api_key.expires_at is not None and api_key.expires_at <= now:
            raise exceptions.AuthenticationFailed("API key expired")
        if not api_key.user.is_active:
            raise exceptions.AuthenticationFailed("account deactivated")
        return api_key.user, api_key

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="warden"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes ``ApiKeyAuthentication`` as HTTP bearer auth in the OpenAPI schema
    (drf-spectacular registers it when this module is imported, as the settings' first
    authentication class)."""

    target_class = "governance.accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer wdn_<prefix>_<secret>`; scopes limit the key.",
        }

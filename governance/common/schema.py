"""OpenAPI descriptions shared by the apps' APIs: the error body every refusal uses, and
the bearer-key authentication scheme."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

_MEANINGS = {
    400: "Bad input; `error.fields` names the offending fields.",
    401: 'No or bad credential (answered with `WWW-Authenticate: Bearer realm="warden"`).',
    403: "Authenticated, but the key's scope or the user's role does not allow it.",
    404: "No such object, or outside what the caller may see.",
    409: "Clashes with the current state (a duplicate, a retired object, a refused transition).",
}


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    # Declared fields are popped off the class, so this does not hide Serializer.fields.
    # Nested input errors are named with dotted paths: {"steps.0.role": ["..."]}.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


class ErrorSerializer(serializers.Serializer):
    """``{"error": {"code", "message", "fields"?}, "request_id"}`` (governance.common.errors)."""

    error = ErrorDetailSerializer()
    request_id = serializers.CharField(allow_null=True)


def error_responses(*statuses: int) -> dict[int, Any]:
    """``extend_schema(responses=...)`` entries for the given error statuses."""
    return {
        status: OpenApiResponse(response=ErrorSerializer, description=_MEANINGS[status])
        for status in statuses
    }


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes ``ApiKeyAuthentication`` as HTTP bearer auth (registered on import)."""

    target_class = "governance.accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer wdn_<prefix>_<secret>`; scopes limit the key.",
        }

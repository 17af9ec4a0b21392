"""OpenAPI descriptions shared by the apps' APIs: the error body every refusal uses, and
the bearer-key authentication scheme."""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from core.permissions import ScopedPermission

_MEANINGS = {
    400: "Bad input; `error.fields` names the offending fields.",
    401: 'No or bad credential (answered with `WWW-Authenticate: Bearer realm="warden"`).',
    403: "Authenticated, but the key's scope or the user's role does not allow it.",
    404: "No such object, or outside what the caller may see.",
    409: "Clashes with the current state (a duplicate, a retired object, a refused transition).",
    429: "Throttled (the caller's rate, or failed API keys from this address); `Retry-After` "
    "says when to try again.",
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
    """``{"error": {"code", "message", "fields"?}, "request_id"}`` (core.errors)."""

    error = ErrorDetailSerializer()
    request_id = serializers.CharField(allow_null=True)


def error_responses(*statuses: int) -> dict[int, Any]:
    """``extend_schema(responses=...)`` entries for the given error statuses."""
    return {
        status: OpenApiResponse(response=ErrorSerializer, description=_MEANINGS[status])
        for status in statuses
    }


_PAGING_MEANINGS = {
    "400": "Bad input; `error.fields` names the offending fields (also a malformed `page`, "
    "`page_size` or `cursor`).",
    "404": "No such page (past the end of the list), or the parent is outside what the "
    "caller may see.",
}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema, plus the refusals any operation may answer whatever its view
    declares: 401 and 403 where a credential is needed (every view's ``ScopedPermission``),
    429 everywhere (every request passes the throttles and the key check), and on every paged
    list 400 for a malformed ``page``, ``page_size`` or ``cursor`` and 404 for a page past
    the end."""

    def _needs_credential(self) -> bool:
        classes = getattr(self.view, "permission_classes", ())
        return any(isinstance(c, type) and issubclass(c, ScopedPermission) for c in classes)

    def _add_error(self, responses: dict[str, Any], code: str, description: str) -> None:
        if code not in responses:
            # Errors are JSON whatever the operation's success renders (text, PDF).
            responses[code] = self._get_response_for_code(
                OpenApiResponse(response=ErrorSerializer, description=description),
                code,
                media_types=["application/json"],
            )

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        if self._needs_credential():
            for status in (401, 403):
                self._add_error(responses, str(status), _MEANINGS[status])
        self._add_error(responses, "429", _MEANINGS[429])
        if self.method == "GET" and self._is_list_view() and self._get_paginator() is not None:
            for code, description in _PAGING_MEANINGS.items():
                if code in responses:
                    responses[code]["description"] = description
                else:
                    self._add_error(responses, code, description)
        return responses

"""The one place errors become HTTP responses (DRF's exception handler, and the JSON error
of a refusal no API view rendered).

Every API error has the same shape::

    {"error": {"code": "...", "message": "...", "fields": {"name": ["..."]}}, "request_id": "..."}
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpResponse, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from core import context
from core.errors import DomainError, InsufficientStorage, insufficient_storage, is_out_of_space


def _body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    ctx = context.current() or {}
    return {"error": error, "request_id": ctx.get("request_id")}


def _flatten(detail: Any) -> dict[str, list[str]]:
    """DRF's error detail as ``{name: [message, ...]}``: nested serializers, list items and
    dictionary values are named with dotted paths (``steps.0.role``, ``labels.1``); messages
    about the body as a whole, or about an item as a whole, are ``non_field_errors``."""
    fields: dict[str, list[str]] = {}

    def walk(value: Any, name: str) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                walk(child, f"{name}.{key}" if name else str(key))
        elif isinstance(value, list):
            for index, child in enumerate(value):
                if isinstance(child, dict | list):
                    walk(child, f"{name}.{index}" if name else str(index))
                else:
                    fields.setdefault(name or "non_field_errors", []).append(str(child))
        else:
            fields.setdefault(name or "non_field_errors", []).append(str(value))

    walk(detail, "")
    return fields


def _first_message(fields: dict[str, list[str]]) -> str:
    for name, messages in fields.items():
        label = "" if name == "non_field_errors" else f"{name.removesuffix('.non_field_errors')}: "
        return f"{label}{messages[0]}"
    return "invalid input"


# Codes of the errors that come from the HTTP layer rather than from a view or service.
_STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "throttled",
    500: "server_error",
    507: InsufficientStorage.code,
}


def too_large_message() -> str:
    return f"The request body exceeds {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."


def http_error_response(status: int, message: str | None = None) -> HttpResponse:
    """The error format for a refusal that no API view rendered (an unmatched path, a body over
    the limit, an unexpected failure); the message never carries details of a failure."""
    if message is None:
        if status == 413:
            message = too_large_message()
        elif status >= 500:
            message = "Internal server error."
        else:
            try:
                message = HTTPStatus(status).phrase + "."
            except ValueError:
                message = "Error."
    code = _STATUS_CODES.get(status, "server_error" if status >= 500 else "error")
    return JsonResponse(_body(code, message), status=status)


def api_exception_handler(exc: Exception, ctx: dict[str, Any]) -> Response | None:
    """Map domain errors and DRF/Django errors to the single error format; a full disk met
    anywhere in a view is 507 (``insufficient_storage``), not a server error."""
    if is_out_of_space(exc):
        exc = insufficient_storage(exc)
    if isinstance(exc, DomainError):
        return Response(_body(exc.code, exc.message, exc.fields), status=exc.http_status)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            _body("request_too_large", too_large_message()),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, ctx)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        response.data = _body("invalid", _first_message(fields), fields)
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        response.data = _body(str(code), str(exc.detail))
    return response

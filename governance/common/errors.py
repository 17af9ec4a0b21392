"""Domain errors with meaning, and the one place they become HTTP responses.

Every API error has the same shape::

    {"error": {"code": "...", "message": "...", "fields": {"name": ["..."]}}, "request_id": "..."}
"""

from __future__ import annotations

import errno
import logging
from http import HTTPStatus
from typing import Any, TypeGuard

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpResponse, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from audit import context

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """Base of refusals raised by services; ``code`` is machine-readable."""

    code = "error"
    http_status: int = status.HTTP_400_BAD_REQUEST
    # Set by the service that has already written this refusal to the log as a security
    # event, so an outer handler that records refusals does not record it a second time.
    recorded: bool

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.recorded = False


class InvalidInput(DomainError):
    """The request names something impossible (bad value, unknown reference)."""

    code = "invalid"


class NotFound(DomainError):
    """The object does not exist, or is outside the user's scope (never 403 for that)."""

    code = "not_found"
    http_status = status.HTTP_404_NOT_FOUND


class Forbidden(DomainError):
    """The actor may see the object but not do this to it."""

    code = "permission_denied"
    http_status = status.HTTP_403_FORBIDDEN


class Conflict(DomainError):
    """The action clashes with existing state (a duplicate, a retired object)."""

    code = "conflict"
    http_status = status.HTTP_409_CONFLICT


class ContentChanged(Conflict):
    """What a signer was shown is no longer what would be signed (the evidence, the request
    or the step changed since the page was shown)."""

    code = "content_changed"


class TransitionNotAllowed(Conflict):
    """A state machine refuses the transition from the current state."""

    code = "transition_not_allowed"


class InsufficientStorage(DomainError):
    """The server's disk (or the account's quota on it) is full: the upload was not stored,
    and nothing of it is left behind; the same request may succeed once space is freed."""

    code = "insufficient_storage"
    http_status = status.HTTP_507_INSUFFICIENT_STORAGE


# What a client is told when its upload met a full disk, and when anything else did.
UPLOAD_NO_SPACE_MESSAGE = (
    "the server has no space left to store the upload; nothing was stored, "
    "try again once space is freed"
)
NO_SPACE_MESSAGE = "the server has no space left on its disk to complete the request"
# A write refused for want of space: the file system is full, or the quota is used up.
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_out_of_space(exc: BaseException) -> TypeGuard[OSError]:
    """Whether ``exc`` is a write that failed because the disk (or quota) is full."""
    return isinstance(exc, OSError) and exc.errno in _NO_SPACE


def insufficient_storage(exc: OSError, message: str = NO_SPACE_MESSAGE) -> InsufficientStorage:
    """The refusal of a request that met a full disk; logged, since an operator must free
    space (the client's message names no path)."""
    logger.error("a request was refused, the disk is full: %s", exc)
    return InsufficientStorage(message)


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


class SeparationOfDutiesViolation(Forbidden):
    """A sign-off refused by separation of duties; ``code`` names the rule that refused it
    (``requester_cannot_sign``, ``author_cannot_sign``, ``owner_cannot_sign_independent_step``,
    ``already_signed_another_step``, ``role_required``, ...)."""

    code = "separation_of_duties"

    def __init__(
        self, message: str, *, rule: str, fields: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(message, fields=fields)
        self.code = rule


class ReauthenticationFailed(Forbidden):
    """Signing needs the signer's password again at that moment; it was missing or wrong
    (``reauthentication_failed``), or too many failures locked signing (``signing_locked``)."""

    code = "reauthentication_failed"

    def __init__(
        self, message: str, *, code: str = "reauthentication_failed", fields: Any = None
    ) -> None:
        super().__init__(message, fields=fields)
        self.code = code

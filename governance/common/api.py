"""Small helpers every app's REST views share: the authenticated user, validated input, and
the error responses their OpenAPI descriptions list."""

from __future__ import annotations

from typing import Any, cast

from rest_framework.request import Request
from rest_framework.serializers import BaseSerializer

from governance.accounts.models import User
from governance.common.schema import error_responses

READ_ERRORS = error_responses(401, 403, 404)
WRITE_ERRORS = error_responses(400, 401, 403, 404, 409)


def request_user(request: Request) -> User:
    """The authenticated user (the views' permission classes refuse anonymous callers)."""
    return cast(User, request.user)


def validated(serializer_class: type[BaseSerializer], data: Any) -> dict[str, Any]:
    """``data`` checked by ``serializer_class``; a 400 in the common error format if not."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)

"""Small helpers every app's REST views share: the authenticated user, validated input, the
error responses their OpenAPI descriptions list, and the base of views that list what a
selector chose."""

from __future__ import annotations

from typing import Any, cast

from django.db.models import QuerySet
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.serializers import BaseSerializer

from core.accounts.models import User
from core.pagination import StandardPagination
from core.schema import error_responses

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


class SelectorView(generics.GenericAPIView):
    """Reads go through ``selected()`` (a selector, scoped to the caller); the empty
    ``queryset`` a subclass sets only tells the schema generator the model, so nothing is
    listed unless a selector chose it."""

    pagination_class = StandardPagination

    def selected(self) -> QuerySet:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return cast(QuerySet, self.queryset)
        return self.selected()

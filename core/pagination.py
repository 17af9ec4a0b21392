"""Pagination for list endpoints.

A malformed ``page``, ``page_size`` or ``cursor`` is refused with a 400 naming it (never
silently replaced by a default, never clamped); a page past the end of a numbered list is a
404. The OpenAPI schema states the ranges, and ``core.schema.AutoSchema`` lists
both refusals on every paged operation.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.request import Request
from rest_framework.views import APIView


def _whole_number(raw: str) -> int | None:
    # int() would also take other scripts' digits, " 7", "+7" and "1_000"; a page number is
    # ASCII digits.
    if not (raw.isascii() and raw.isdigit()):
        return None
    return int(raw)


def _checked_page_size(
    request: Request, name: str, default: int | None, maximum: int
) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = _whole_number(raw)
    if value is None or not 1 <= value <= maximum:
        raise ValidationError({name: [f"Must be a whole number from 1 to {maximum}."]})
    return value


def _with_ranges(parameters: list[dict[str, Any]], ranges: dict[str, dict[str, int]]) -> Any:
    for parameter in parameters:
        extra = ranges.get(parameter["name"])
        if extra:
            parameter["schema"] = {**parameter.get("schema", {}), **extra}
    return parameters


class StandardPagination(PageNumberPagination):
    """Numbered pages for small inventories: ``page`` from 1 (or ``last``), ``page_size`` from
    1 to 500 (default 50)."""

    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request: Request) -> int | None:
        return _checked_page_size(
            request, self.page_size_query_param, self.page_size, self.max_page_size
        )

    def paginate_queryset(
        self, queryset: QuerySet, request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and raw not in self.last_page_strings:
            number = _whole_number(raw)
            if number is None or number < 1:
                raise ValidationError(
                    {self.page_query_param: ["Must be a whole number from 1, or 'last'."]}
                )
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return _with_ranges(
            super().get_schema_operation_parameters(view),
            {
                self.page_query_param: {"minimum": 1},
                self.page_size_query_param: {"minimum": 1, "maximum": self.max_page_size},
            },
        )


class SeqCursorPagination(CursorPagination):
    """Stable cursors over an append-only sequence (the audit log); ``page_size`` from 1 to
    1000 (default 100); a cursor this list did not hand out is a 400."""

    ordering = "seq"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request: Request) -> int | None:
        return _checked_page_size(
            request, self.page_size_query_param, self.page_size, self.max_page_size
        )

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError(
                {self.cursor_query_param: [self.invalid_cursor_message]}
            ) from None

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return _with_ranges(
            super().get_schema_operation_parameters(view),
            {self.page_size_query_param: {"minimum": 1, "maximum": self.max_page_size}},
        )

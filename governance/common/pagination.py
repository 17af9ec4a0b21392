"""Pagination for list endpoints."""

from rest_framework.pagination import CursorPagination, PageNumberPagination


class StandardPagination(PageNumberPagination):
    """Numbered pages for small inventories; ``page_size`` up to 500."""

    page_size_query_param = "page_size"
    max_page_size = 500


class SeqCursorPagination(CursorPagination):
    """Stable cursors over an append-only sequence (the audit log)."""

    ordering = "seq"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

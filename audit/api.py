"""Read-only REST API of the audit log: the records, and a verification of the whole chain.

Who may read: holders of the global ``audit.view_auditrecord`` permission (validators, risk
and compliance officers, auditors, administrators), and API keys with the ``audit:read``
scope whose account holds that permission too (``AuditLogAccess``). Everyone else is 403.
A data scientist is not shown the records of their own models here: the audit app knows
models only by name (it imports no registry code), so it cannot decide which records a
person's grants cover; a per-model view belongs in the registry, which can, and may filter
``scope_model`` through this module's queryset.
"""

from __future__ import annotations

import django_filters
from django.conf import settings
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import AuditRecord
from audit.serializers import AuditRecordSerializer, VerificationReportSerializer
from audit.verification import verify_log
from governance.common.pagination import SeqCursorPagination
from governance.common.permissions import AuditLogAccess
from governance.common.schema import error_responses


class AuditRecordFilter(django_filters.FilterSet):
    """Filters on the indexed copies of body fields; times are ISO-8601 (``Z`` or offset)."""

    object_type = django_filters.CharFilter(max_length=100)
    object_id = django_filters.CharFilter(max_length=200)
    actor = django_filters.CharFilter(field_name="actor_id", max_length=100, help_text="actor id")
    actor_type = django_filters.ChoiceFilter(
        choices=[("user", "user"), ("service", "service"), ("system", "system")]
    )
    action = django_filters.CharFilter(max_length=100)
    model = django_filters.CharFilter(
        field_name="scope_model", max_length=200, help_text="scope.model: the model's name"
    )
    since = django_filters.IsoDateTimeFilter(
        field_name="ts", lookup_expr="gte", help_text="records at or after this time"
    )
    until = django_filters.IsoDateTimeFilter(
        field_name="ts", lookup_expr="lt", help_text="records before this time"
    )

    class Meta:
        model = AuditRecord
        fields = [
            "object_type",
            "object_id",
            "actor",
            "actor_type",
            "action",
            "model",
            "since",
            "until",
        ]


def records_of_this_log() -> QuerySet[AuditRecord]:
    """The records of this installation's log (a database may hold imported logs too)."""
    return AuditRecord.objects.filter(log=settings.AUDIT_LOG_ORIGIN)


@extend_schema_view(
    get=extend_schema(
        summary="Audit records, oldest first (cursor pagination by seq)",
        responses={200: AuditRecordSerializer, **error_responses(400, 401, 403)},
    )
)
@extend_schema(tags=["audit"])
class AuditRecordListView(generics.ListAPIView):
    """The records of the log as stored; ``body`` is the exact canonical text the leaf hash
    covers. Filters narrow the list; cursors follow ``seq``."""

    permission_classes = [AuditLogAccess]
    serializer_class = AuditRecordSerializer
    queryset = AuditRecord.objects.all()
    filter_backends = [DjangoFilterBackend]
    filterset_class = AuditRecordFilter
    pagination_class = SeqCursorPagination

    def get_queryset(self) -> QuerySet[AuditRecord]:
        return records_of_this_log()


@extend_schema(
    summary="Verify the whole log: canonical bodies, sequence, hash chain, times",
    responses={200: VerificationReportSerializer, **error_responses(401, 403)},
)
@extend_schema(tags=["audit"])
class AuditVerifyView(generics.GenericAPIView):
    """Re-checks every record of the log now and reports what it found (``ok`` is false on
    any error finding; ``first_bad_seq`` is the earliest record concerned)."""

    permission_classes = [AuditLogAccess]
    serializer_class = VerificationReportSerializer

    def get(self, request: Request) -> Response:
        return Response(verify_log().as_dict())

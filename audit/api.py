"""Read-only REST API of the audit log: the records, a verification of the whole chain, the
signed checkpoints with inclusion and consistency proofs, and the public verification keys.

Who may read: holders of the global ``audit.view_auditrecord`` permission (validators, risk
and compliance officers, auditors, administrators), and API keys with the ``audit:read``
scope whose account holds that permission too (``AuditLogAccess``). Everyone else is 403.
A data scientist is not shown the records of their own models here: the audit app knows
models only by name (it imports no registry code), so it cannot decide which records a
person's grants cover; a per-model view belongs in the registry, which can, and may filter
``scope_model`` through this module's queryset.

The verification keys are public (``/public-key`` needs no credential): they are what an
auditor needs to check checkpoints without trusting Warden. Checkpoints and proofs need the
same access as the records they commit to.

Export bundles (``/exports``) need ``audit.export_auditrecord`` (``AuditExportAccess``); they
are written in the background by ``audit.tasks.export_bundle`` and each is visible to the
person who requested it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any, cast

import django_filters
from django.conf import settings
from django.db.models import QuerySet
from django.http import FileResponse, Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.permissions import SAFE_METHODS
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import keys
from audit.actions import AuditAction
from audit.exports import (
    EXPORT_PERMISSION,
    audit_export_file,
    audit_export_get,
    audit_export_list,
    audit_export_request,
)
from audit.models import AuditExport, AuditRecord
from audit.notes import parse_verifier
from audit.proofs import checkpoint_get, consistency_proof_get, inclusion_proof_get
from audit.serializers import (
    AuditExportRequestSerializer,
    AuditExportSerializer,
    AuditRecordSerializer,
    ConsistencyProofSerializer,
    ConsistencyQuerySerializer,
    InclusionProofSerializer,
    InclusionQuerySerializer,
    PublicKeysSerializer,
    VerificationReportSerializer,
)
from audit.verification import verify_log
from core.accounts.callers import Caller
from core.accounts.models import ApiKeyScope, User
from core.pagination import SeqCursorPagination
from core.permissions import AuditLogAccess, ScopedPermission
from core.schema import ErrorSerializer, error_responses


class AuditRecordFilter(django_filters.FilterSet):
    """Filters on the indexed copies of body fields; times are ISO-8601 (``Z`` or offset)."""

    object_type = django_filters.CharFilter(max_length=100)
    object_id = django_filters.CharFilter(max_length=200)
    actor = django_filters.CharFilter(field_name="actor_id", max_length=100, help_text="actor id")
    actor_type = django_filters.ChoiceFilter(
        choices=[("user", "user"), ("service", "service"), ("system", "system")]
    )
    action = django_filters.ChoiceFilter(
        choices=AuditAction.choices, help_text="an action of docs/audit-actions.md"
    )
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


class PublicRead(ScopedPermission):
    """Anyone may read, with or without a credential (the public verification keys only)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.method in SAFE_METHODS


class PlainTextRenderer(BaseRenderer):
    """A text body as it is (a signed note, key lines)."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        return str(data).encode("utf-8")


class TextOnlyNegotiation(BaseContentNegotiation):
    """Always the view's first renderer: a signed note has one representation."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, str(renderer.media_type)


class _TextView(APIView):
    """Text on success; errors keep the one JSON error format, whatever was negotiated."""

    renderer_classes = [PlainTextRenderer, JSONRenderer]

    def finalize_response(
        self, request: Request, response: Any, *args: Any, **kwargs: Any
    ) -> Response:
        if isinstance(response, Response) and response.exception:
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


def _json_errors(*statuses: int) -> dict[tuple[int, str], Any]:
    """``error_responses`` for a view whose success is text: errors are still JSON."""
    return {(status, "application/json"): r for status, r in error_responses(*statuses).items()}


class KeysNotConfigured(APIException):
    """No verification key is configured: there is nothing an auditor could check with."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "not_configured"
    default_detail = (
        "no verification key is configured (AUDIT_VERIFICATION_KEYS): checkpoints cannot be "
        "verified against this installation yet"
    )


@extend_schema(
    summary="The public keys that verify the log's checkpoints",
    parameters=[
        OpenApiParameter(
            "format", OpenApiTypes.STR, enum=["txt", "json"], description="`json` for JSON"
        )
    ],
    responses={
        (200, "text/plain"): OpenApiTypes.STR,
        (200, "application/json"): PublicKeysSerializer,
        **_json_errors(400),
        (503, "application/json"): OpenApiResponse(
            response=ErrorSerializer,
            description="`not_configured`: the installation has no verification key.",
        ),
    },
    auth=[],
)
@extend_schema(tags=["audit"])
class PublicKeyView(_TextView):
    """The trusted verification keys, one ``<name>+<hex id>+<base64>`` line each (the same
    lines as ``manage.py audit_public_key``), or JSON with ``?format=json``. Public: an
    auditor needs them to check checkpoints and exports offline. An installation without any
    key answers 503 ``not_configured`` (``check --deploy`` reports it as ``warden.E002``)."""

    permission_classes = [PublicRead]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # DRF answers an unknown ?format= with 404; it is bad input naming a parameter.
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            raise ValidationError({"format": ["Must be txt or json."]}) from None

    def get(self, request: Request) -> Response:
        lines = keys.verification_key_lines()
        if not lines:
            raise KeysNotConfigured()
        if request.accepted_renderer.format == "json":
            verifiers = [parse_verifier(line) for line in lines]
            return Response(
                {
                    "origin": settings.AUDIT_LOG_ORIGIN,
                    "keys": [
                        {"name": v.name, "key_id": v.key_id_hex, "verifier_key": v.key_string()}
                        for v in verifiers
                    ],
                }
            )
        return Response("".join(f"{line}\n" for line in lines))


class _NoteView(_TextView):
    content_negotiation_class = TextOnlyNegotiation
    renderer_classes = [PlainTextRenderer]


@extend_schema(
    summary="The latest signed checkpoint (C2SP tlog-checkpoint note)",
    responses={(200, "text/plain"): OpenApiTypes.STR, **_json_errors(401, 403, 404)},
)
@extend_schema(tags=["audit"])
class LatestCheckpointView(_NoteView):
    """The exact signed note of the largest checkpoint; 404 before the first one."""

    permission_classes = [AuditLogAccess]

    def get(self, request: Request) -> Response:
        return Response(checkpoint_get().note)


@extend_schema(
    summary="The signed checkpoint of one tree size",
    responses={(200, "text/plain"): OpenApiTypes.STR, **_json_errors(401, 403, 404)},
)
@extend_schema(tags=["audit"])
class CheckpointView(_NoteView):
    """The exact signed note of the checkpoint of ``size``; 404 when none was signed."""

    permission_classes = [AuditLogAccess]

    def get(self, request: Request, size: int) -> Response:
        return Response(checkpoint_get(size=size).note)


@extend_schema(
    summary="Inclusion proof of a record in a signed checkpoint",
    parameters=[InclusionQuerySerializer],
    responses={200: InclusionProofSerializer, **error_responses(400, 401, 403, 404)},
)
@extend_schema(tags=["audit"])
class InclusionProofView(APIView):
    """RFC 9162 inclusion proof of record ``seq`` in the checkpoint of ``size`` (a size a
    checkpoint was signed for; default the latest): 400 for a malformed or out-of-range
    ``seq``, 404 for a size without a checkpoint."""

    permission_classes = [AuditLogAccess]

    def get(self, request: Request) -> Response:
        query = InclusionQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        found = inclusion_proof_get(
            seq=query.validated_data["seq"], size=query.validated_data.get("size")
        )
        checkpoint = found.checkpoint
        return Response(
            InclusionProofSerializer(
                {
                    "seq": found.seq,
                    "size": checkpoint.size,
                    "leaf": found.leaf.hex(),
                    "proof": [node.hex() for node in found.proof],
                    "root": checkpoint.root,
                    "checkpoint": checkpoint.note,
                }
            ).data
        )


@extend_schema(
    summary="Consistency proof between two signed checkpoints",
    parameters=[ConsistencyQuerySerializer],
    responses={200: ConsistencyProofSerializer, **error_responses(400, 401, 403, 404)},
)
@extend_schema(tags=["audit"])
class ConsistencyProofView(APIView):
    """RFC 9162 consistency proof from the checkpoint of size ``from`` to that of ``to``:
    400 when malformed or ``from > to``, 404 for a size without a checkpoint."""

    permission_classes = [AuditLogAccess]

    def get(self, request: Request) -> Response:
        query = ConsistencyQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        found = consistency_proof_get(
            old_size=query.validated_data["from"], new_size=query.validated_data["to"]
        )
        return Response(
            ConsistencyProofSerializer(
                {
                    "from_size": found.old.size,
                    "to_size": found.new.size,
                    "proof": [node.hex() for node in found.proof],
                    "from_root": found.old.root,
                    "to_root": found.new.root,
                    "from_checkpoint": found.old.note,
                    "to_checkpoint": found.new.note,
                }
            ).data
        )


class AuditExportAccess(ScopedPermission):
    """Export bundles: ``audit:read`` for keys (an export reads the log), and for everyone the
    global ``audit.export_auditrecord`` permission (auditors and administrators by default).
    Each caller sees only their own exports (``audit_export_get``: another's is 404)."""

    read_scopes = (ApiKeyScope.AUDIT_READ.value,)
    write_scopes = (ApiKeyScope.AUDIT_READ.value,)

    def has_permission(self, request: Request, view: Any) -> bool:
        if not super().has_permission(request, view):
            return False
        if not request.user.has_perm(EXPORT_PERMISSION):
            self.message = f"exporting the audit log needs the {EXPORT_PERMISSION} permission"
            return False
        return True


def _caller(request: Request) -> User:
    return cast(User, request.user)


@extend_schema_view(
    get=extend_schema(
        summary="Your export bundles, newest first",
        responses={200: AuditExportSerializer, **error_responses(401, 403)},
    ),
    post=extend_schema(
        summary="Request an export bundle (written in the background)",
        description=(
            "Without a filter, a full export: every record up to a checkpoint signed for the "
            "export (the completeness proof). With `model`, `since` (inclusive) or `until` "
            "(exclusive), a partial export: each record with an inclusion proof, but records "
            "may be missing. `prior_size` adds a consistency proof from a checkpoint you hold. "
            "Answers 202; poll the export until `status` is `done`, then follow "
            "`links.download`. The format is docs/audit-bundle.md."
        ),
        request=AuditExportRequestSerializer,
        responses={202: AuditExportSerializer, **error_responses(400, 401, 403, 404)},
    ),
)
@extend_schema(tags=["audit"])
class AuditExportListView(generics.ListAPIView):
    """The caller's exports, and new export requests: the request is checked and recorded
    (``audit.export_requested``) now, and ``audit.tasks.export_bundle`` writes the bundle
    after the commit, on the checkpointer's queue."""

    permission_classes = [AuditExportAccess]
    serializer_class = AuditExportSerializer
    queryset = AuditExport.objects.none()
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[AuditExport]:
        if getattr(self, "swagger_fake_view", False):
            return AuditExport.objects.none()
        return audit_export_list(user=_caller(self.request))

    def post(self, request: Request) -> Response:
        query = AuditExportRequestSerializer(data=request.data)
        query.is_valid(raise_exception=True)
        export = audit_export_request(
            requested_by=_caller(request),
            actor=Caller.from_request(request).actor,
            **query.validated_data,
        )
        export.refresh_from_db()  # the service's task runs in-process without a broker (dev)
        data = AuditExportSerializer(export, context={"request": request}).data
        return Response(
            data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["links"]["self"]}
        )


@extend_schema(exclude=True)
class AuditExportListAliasView(AuditExportListView):
    """``exports`` without the trailing slash (a POST cannot follow a redirect)."""

    permission_classes = [AuditExportAccess]


@extend_schema(
    summary="One of your export bundles: status, counts, SHA-256",
    responses={200: AuditExportSerializer, **error_responses(401, 403, 404)},
)
@extend_schema(tags=["audit"])
class AuditExportDetailView(APIView):
    """An export of the caller's; ``links.download`` is set once it is ``done``, ``error``
    says why when it ``failed``. Another person's export is 404."""

    permission_classes = [AuditExportAccess]

    def get(self, request: Request, export_id: uuid.UUID) -> Response:
        export = audit_export_get(user=_caller(request), export_id=export_id)
        return Response(AuditExportSerializer(export, context={"request": request}).data)


class ZipRenderer(BaseRenderer):
    """Bytes as they are (the bundle is sent as a file response; this names the type)."""

    media_type = "application/zip"
    format = "zip"
    charset = None

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        return bytes(data) if isinstance(data, bytes | bytearray) else b""


@extend_schema(
    summary="Download the zip of a done export",
    responses={
        (200, "application/zip"): OpenApiResponse(
            response=OpenApiTypes.BINARY,
            description="The bundle (docs/audit-bundle.md); `X-Content-SHA256` is its SHA-256.",
        ),
        **_json_errors(401, 403, 404, 409),
    },
)
@extend_schema(tags=["audit"])
class AuditExportDownloadView(_TextView):
    """The bundle as an attachment, with its SHA-256 in ``X-Content-SHA256`` (the same as in
    the export and in its ``audit.exported`` record); 409 until the export is done."""

    permission_classes = [AuditExportAccess]
    renderer_classes = [ZipRenderer, JSONRenderer]

    def get(self, request: Request, export_id: uuid.UUID) -> FileResponse:
        export = audit_export_get(user=_caller(request), export_id=export_id)
        path = audit_export_file(export=export)
        response = FileResponse(
            path.open("rb"),
            as_attachment=True,
            filename=f"warden-audit-{export.id}.zip",
            content_type="application/zip",
        )
        response["X-Content-SHA256"] = export.sha256
        return response

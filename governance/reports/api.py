"""Reports API v1: request a fairness, drift or lineage report on a model version, or the
regulator's PDF of an audit export (202), follow it, download its PDF."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, status
from rest_framework.parsers import FormParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.exports import audit_export_get
from core.accounts.callers import Caller
from core.accounts.models import ApiKeyScope, User
from core.api import request_user
from core.errors import DomainError, InvalidInput, NotFound
from core.pagination import StandardPagination
from core.parsers import WardenJSONParser
from core.permissions import ScopedPermission
from core.schema import ErrorSerializer, error_responses
from core.uploads import UploadParser
from governance.reports import selectors, services
from governance.reports.models import Report, ReportKind, ReportStatus
from governance.reports.serializers import ReportRequestSerializer, ReportSerializer
from registry import selectors as registry_selectors
from registry.models import DatasetVersion

INPUT_ROLES = ("evaluation", "reference", "current")


class UploadTooLarge(DomainError):
    """The request's files exceed ``REPORTS_MAX_UPLOAD_BYTES``."""

    code = "upload_too_large"
    http_status = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


class ReportAccess(ScopedPermission):
    """Reports: API keys read them with ``registry:read``, ``registry:write`` or
    ``reports:write`` and request them with ``reports:write`` (a pipeline computing evidence
    for the versions its account may see). Who may request is decided by the service
    (roles); what is visible, by the registry's selectors (out of scope is 404)."""

    read_scopes = (
        ApiKeyScope.REGISTRY_READ.value,
        ApiKeyScope.REGISTRY_WRITE.value,
        ApiKeyScope.REPORTS_WRITE.value,
    )
    write_scopes = (ApiKeyScope.REPORTS_WRITE.value,)


def _too_large(size: int) -> UploadTooLarge:
    limit = settings.REPORTS_MAX_UPLOAD_BYTES
    return UploadTooLarge(
        f"the upload is {size:,} bytes; reports accept at most {limit:,} bytes "
        "(REPORTS_MAX_UPLOAD_BYTES)"
    )


def _dataset_version(user: User, pk: int, role: str) -> DatasetVersion:
    found = DatasetVersion.objects.filter(
        pk=pk, dataset__in=registry_selectors.dataset_list(user=user)
    )
    dataset_version = found.select_related("dataset").first()
    if dataset_version is None:
        raise NotFound(f"{role}_dataset_version {pk}: dataset version not found")
    return dataset_version


UPLOAD_REFUSALS = {
    413: OpenApiResponse(
        response=ErrorSerializer, description="The files exceed REPORTS_MAX_UPLOAD_BYTES."
    ),
    507: OpenApiResponse(
        response=ErrorSerializer,
        description="`insufficient_storage`: the server has no space left to store the "
        "upload. Nothing was stored (no report, no partial file); the same request may "
        "succeed once space is freed.",
    ),
}


@extend_schema_view(
    get=extend_schema(
        summary="Reports on the model versions you may see, newest first",
        parameters=[
            OpenApiParameter("model", str),
            OpenApiParameter("version", int),
            OpenApiParameter("kind", str, enum=[k.value for k in ReportKind]),
            OpenApiParameter("status", str, enum=[s.value for s in ReportStatus]),
        ],
        responses={200: ReportSerializer, **error_responses(400, 401, 403)},
    ),
    post=extend_schema(
        summary="Request a report (computed in the background)",
        description=(
            "Fairness and drift: multipart/form-data with the input files (`evaluation` for "
            "fairness, `reference` and `current` for drift; CSV or Parquet) or registered "
            "dataset version ids (`<role>_dataset_version`). The header, the columns and the "
            "first rows are checked now: bad input is 400, and a disk too full to store the "
            "files 507; either way nothing is stored. Lineage: `kind`, `model` and `version` "
            "only. Regulator export: `kind` and `export`, the id of one of your done audit "
            "exports (needs `audit.export_auditrecord`); the bundle is verified with the log's "
            "keys and embedded in the PDF. Answers 202 with the report; poll it until "
            "`status` is `done`, then follow `links.pdf`."
        ),
        request={"multipart/form-data": ReportRequestSerializer},
        responses={202: ReportSerializer, **error_responses(400, 401, 403, 404), **UPLOAD_REFUSALS},
    ),
)
@extend_schema(tags=["reports"])
class ReportListView(generics.ListAPIView):
    """Report requests, and the list of reports with filters."""

    permission_classes = [ReportAccess]
    serializer_class = ReportSerializer
    queryset = Report.objects.none()
    pagination_class = StandardPagination
    parser_classes = [UploadParser, FormParser, WardenJSONParser]
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[Report]:
        if getattr(self, "swagger_fake_view", False):
            return Report.objects.none()
        params = self.request.query_params
        version = params.get("version")
        if version is not None and not version.isdigit():
            raise InvalidInput(
                "version must be a positive integer", fields={"version": ["not an integer"]}
            )
        return selectors.report_list(
            user=request_user(self.request),
            model=params.get("model"),
            version=int(version) if version else None,
            kind=params.get("kind"),
            status=params.get("status"),
        )

    def post(self, request: Request) -> Response:
        # Refused before the body is read when the client declares its size.
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.REPORTS_MAX_UPLOAD_BYTES:
            raise _too_large(declared)
        query = ReportRequestSerializer(data=request.data)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        if data["kind"] == ReportKind.REGULATOR_EXPORT:
            return self._regulator_export(request, data["export"])
        uploads = {role: data[role] for role in INPUT_ROLES if data.get(role) is not None}
        total = sum(upload.size or 0 for upload in uploads.values())
        if total > settings.REPORTS_MAX_UPLOAD_BYTES:
            raise _too_large(total)
        user = request_user(request)
        version = registry_selectors.model_version_get(
            user=user, model_name=data["model"], version=data["version"]
        )
        datasets: Mapping[str, DatasetVersion] = {
            role: _dataset_version(user, data[f"{role}_dataset_version"], role)
            for role in INPUT_ROLES
            if data.get(f"{role}_dataset_version") is not None
        }
        report = services.report_request(
            caller=Caller.from_request(request),
            version=version,
            kind=data["kind"],
            parameters=query.parameters(),
            uploads=uploads,
            datasets=datasets,
            overrides=query.overrides(),
        )
        return self._accepted(user, report)

    def _regulator_export(self, request: Request, export_id: uuid.UUID) -> Response:
        caller = Caller.from_request(request)
        # Refused (403) before the export is looked for among the caller's own (404).
        services.regulator_export_request_authorize(caller=caller)
        export = audit_export_get(user=caller.user, export_id=export_id)
        report = services.regulator_export_request(caller=caller, export=export)
        return self._accepted(caller.user, report)

    @staticmethod
    def _accepted(user: User, report: Report) -> Response:
        # Read again: without a broker the service's task has already run (dev and tests).
        found = selectors.report_get(user=user, report_id=report.pk)
        body = ReportSerializer(found).data
        return Response(
            body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["links"]["self"]}
        )


@extend_schema(
    summary="One report: status, progress, summary of the metrics, verdict",
    responses={200: ReportSerializer, **error_responses(401, 403, 404)},
    tags=["reports"],
)
class ReportDetailView(APIView):
    """A report on a version you may see; another's is 404."""

    permission_classes = [ReportAccess]

    def get(self, request: Request, report_id: uuid.UUID) -> Response:
        report = selectors.report_get(user=request_user(request), report_id=report_id)
        return Response(ReportSerializer(report).data)


class PdfRenderer(BaseRenderer):
    """Names the PDF type for content negotiation (the body is a file response)."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        return bytes(data) if isinstance(data, bytes | bytearray) else b""


@extend_schema(
    summary="Download the PDF/A-3b of a done report",
    responses={
        (200, "application/pdf"): OpenApiResponse(
            response=OpenApiTypes.BINARY,
            description="The report; `X-Content-SHA256` is its SHA-256 (as in the audit log).",
        ),
        **{
            (code, "application/json"): OpenApiResponse(
                response=ErrorSerializer, description=response.description
            )
            for code, response in error_responses(401, 403, 404, 409).items()
        },
    },
    tags=["reports"],
)
class ReportPdfView(APIView):
    """The PDF as an attachment; 409 until the report is done."""

    permission_classes = [ReportAccess]
    renderer_classes = [PdfRenderer, JSONRenderer]

    def finalize_response(
        self, request: Request, response: Any, *args: Any, **kwargs: Any
    ) -> Response:
        # Errors keep the one JSON error format, whatever was negotiated.
        if isinstance(response, Response) and response.exception:
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)

    def get(self, request: Request, report_id: uuid.UUID) -> FileResponse:
        report = selectors.report_get(user=request_user(request), report_id=report_id)
        path = selectors.report_pdf(report=report)
        response = FileResponse(
            path.open("rb"),
            as_attachment=True,
            filename=f"warden-report-{report.pk}.pdf",
            content_type="application/pdf",
        )
        response["X-Content-SHA256"] = report.pdf_sha256
        return response

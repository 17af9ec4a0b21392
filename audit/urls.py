"""Audit API v1 routes, mounted at ``api/v1/audit/`` by ``governance.urls``."""

from django.urls import path

from audit import api

app_name = "audit"

urlpatterns = [
    path("records/", api.AuditRecordListView.as_view(), name="record-list"),
    path("verify", api.AuditVerifyView.as_view(), name="verify"),
    path("public-key", api.PublicKeyView.as_view(), name="public-key"),
    path("checkpoints/latest", api.LatestCheckpointView.as_view(), name="checkpoint-latest"),
    path("checkpoints/<int:size>", api.CheckpointView.as_view(), name="checkpoint"),
    path("proofs/inclusion", api.InclusionProofView.as_view(), name="proof-inclusion"),
    path("proofs/consistency", api.ConsistencyProofView.as_view(), name="proof-consistency"),
    path("exports/", api.AuditExportListView.as_view(), name="export-list"),
    path("exports", api.AuditExportListAliasView.as_view(), name="export-list-no-slash"),
    path("exports/<uuid:export_id>", api.AuditExportDetailView.as_view(), name="export"),
    path(
        "exports/<uuid:export_id>/download",
        api.AuditExportDownloadView.as_view(),
        name="export-download",
    ),
]

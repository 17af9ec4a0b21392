"""Deployments API v1 routes, mounted at ``api/v1/`` by ``governance.urls``."""

from django.urls import path

from governance.approvals import api

app_name = "approvals"

urlpatterns = [
    path("environments/", api.EnvironmentListView.as_view(), name="environment-list"),
    path("environments/<str:environment>/live", api.LiveView.as_view(), name="environment-live"),
    path("policies/", api.PolicyListView.as_view(), name="policy-list"),
    path("deployment-requests/", api.RequestListView.as_view(), name="request-list"),
    path("deployment-requests/emergency", api.EmergencyView.as_view(), name="request-emergency"),
    path(
        "deployment-requests/<int:request_id>/",
        api.RequestDetailView.as_view(),
        name="request-detail",
    ),
    path(
        "deployment-requests/<int:request_id>/sign",
        api.RequestSignView.as_view(),
        name="request-sign",
    ),
    path(
        "deployment-requests/<int:request_id>/signing-content",
        api.SigningContentView.as_view(),
        name="request-signing-content",
    ),
    path(
        "deployment-requests/<int:request_id>/reject",
        api.RequestRejectView.as_view(),
        name="request-reject",
    ),
    path(
        "deployment-requests/<int:request_id>/withdraw",
        api.RequestWithdrawView.as_view(),
        name="request-withdraw",
    ),
    path(
        "deployment-requests/<int:request_id>/revoke",
        api.RequestRevokeView.as_view(),
        name="request-revoke",
    ),
    path(
        "deployment-requests/<int:request_id>/retrospective",
        api.RetrospectiveView.as_view(),
        name="request-retrospective",
    ),
    path("deployments/", api.DeploymentReportView.as_view(), name="deployment-report"),
    path(
        "models/<str:name>/deployments",
        api.DeploymentHistoryView.as_view(),
        name="model-deployments",
    ),
    path(
        "models/<str:name>/signing-grants",
        api.SigningGrantListView.as_view(),
        name="model-signing-grants",
    ),
    path(
        "models/<str:name>/signing-grants/revoke",
        api.SigningGrantRevokeView.as_view(),
        name="model-signing-grants-revoke",
    ),
    path(
        "models/<str:name>/versions/<int:version>/findings",
        api.FindingListView.as_view(),
        name="version-findings",
    ),
    path("findings/<int:finding_id>", api.FindingDetailView.as_view(), name="finding-detail"),
    path(
        "findings/<int:finding_id>/resolve",
        api.FindingResolveView.as_view(),
        name="finding-resolve",
    ),
    path("gate", api.GateView.as_view(), name="gate"),
    path("gate/status", api.GateStatusView.as_view(), name="gate-status"),
]

"""Reports API v1 routes, mounted at ``api/v1/`` by ``governance.urls``."""

from django.urls import path

from governance.reports import api

app_name = "reports"

urlpatterns = [
    path("reports/", api.ReportListView.as_view(), name="report-list"),
    path("reports/<uuid:report_id>", api.ReportDetailView.as_view(), name="report-detail"),
    path("reports/<uuid:report_id>/pdf", api.ReportPdfView.as_view(), name="report-pdf"),
]

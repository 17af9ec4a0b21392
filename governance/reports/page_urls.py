"""Routes of the report pages (server-rendered), mounted at ``reports/`` by ``governance.urls``:
reports requested from the pages, their progress and PDFs, and the regulator's package."""

from django.urls import path

from governance.reports import package_pages, pages

app_name = "report_pages"

urlpatterns = [
    path("new/", pages.report_new, name="new"),
    path("<uuid:report_id>/", pages.report_detail, name="detail"),
    path("<uuid:report_id>/pdf/", pages.report_pdf, name="pdf"),
    path("package/new/", package_pages.package_new, name="package_new"),
    path("package/<uuid:package_id>/", package_pages.package_detail, name="package_detail"),
    path("package/<uuid:package_id>/pdf/", package_pages.package_pdf, name="package_pdf"),
]

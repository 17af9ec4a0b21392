"""Audit API v1 routes, mounted at ``api/v1/audit/`` by ``governance.urls``."""

from django.urls import path

from audit import api

app_name = "audit"

urlpatterns = [
    path("records/", api.AuditRecordListView.as_view(), name="record-list"),
    path("verify", api.AuditVerifyView.as_view(), name="verify"),
]

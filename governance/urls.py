"""URL map: admin, the REST API v1, its OpenAPI schema and offline Swagger UI, the approval
pages and their login."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from governance.accounts.login import AdminLoginForm, LoginView

admin.site.site_header = "Warden"
admin.site.site_title = "Warden"
admin.site.index_title = "Model inventory and audit trail"
admin.site.login_form = AdminLoginForm

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file of its own (`?script`), so
    # the Content-Security-Policy needs no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v1/", include("registry.urls")),
    path("api/v1/", include("governance.approvals.urls")),
    path("api/v1/", include("governance.webhooks.urls")),
    path("api/v1/", include("governance.reports.urls")),
    path("api/v1/audit/", include("audit.urls")),
    path("approvals/", include("governance.approvals.page_urls")),
    path("reports/", include("governance.reports.page_urls")),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("governance.workspace.urls")),
]

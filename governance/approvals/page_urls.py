"""Routes of the approval pages (server-rendered), mounted at ``approvals/`` by
``governance.urls``."""

from django.urls import path

from governance.approvals import views

app_name = "approval_pages"

urlpatterns = [
    path("", views.request_list, name="list"),
    path("new/", views.request_create, name="create"),
    path("emergency/", views.request_emergency, name="emergency"),
    path("findings/<str:name>/<int:version>/new/", views.finding_create, name="finding_create"),
    path("<int:request_id>/", views.request_review, name="review"),
    path("<int:request_id>/sign/", views.request_sign, name="sign"),
    path("<int:request_id>/withdraw/", views.request_withdraw, name="withdraw"),
    path("<int:request_id>/revoke/", views.request_revoke, name="revoke"),
    path("<int:request_id>/retrospective/", views.request_retrospective, name="retrospective"),
]

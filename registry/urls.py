"""Registry API v1 routes, mounted at ``api/v1/`` by ``governance.urls``."""

from django.urls import path

from registry import api

app_name = "registry"

urlpatterns = [
    path("models/", api.ModelListView.as_view(), name="model-list"),
    path("models/<str:name>/", api.ModelDetailView.as_view(), name="model-detail"),
    path("models/<str:name>/risk", api.ModelRiskView.as_view(), name="model-risk"),
    path("models/<str:name>/retire", api.ModelRetireView.as_view(), name="model-retire"),
    path(
        "models/<str:name>/versions/",
        api.ModelVersionListView.as_view(),
        name="model-version-list",
    ),
    path(
        "models/<str:name>/versions/<int:version>/",
        api.ModelVersionDetailView.as_view(),
        name="model-version-detail",
    ),
    path(
        "models/<str:name>/versions/<int:version>/status",
        api.ModelVersionStatusView.as_view(),
        name="model-version-status",
    ),
    path(
        "models/<str:name>/versions/<int:version>/lineage",
        api.ModelVersionLineageView.as_view(),
        name="model-version-lineage",
    ),
    path("datasets/", api.DatasetListView.as_view(), name="dataset-list"),
    path("datasets/<str:name>/", api.DatasetDetailView.as_view(), name="dataset-detail"),
    path("datasets/<str:name>/retire", api.DatasetRetireView.as_view(), name="dataset-retire"),
    path(
        "datasets/<str:name>/versions/",
        api.DatasetVersionListView.as_view(),
        name="dataset-version-list",
    ),
    path(
        "datasets/<str:name>/versions/<int:version>/",
        api.DatasetVersionDetailView.as_view(),
        name="dataset-version-detail",
    ),
]

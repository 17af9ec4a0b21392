"""Webhooks API v1 routes, mounted at ``api/v1/`` by ``governance.urls``."""

from django.urls import path

from governance.webhooks import api

app_name = "webhooks"

urlpatterns = [
    path("webhooks/", api.SubscriptionListView.as_view(), name="subscription-list"),
    path(
        "webhooks/<int:subscription_id>",
        api.SubscriptionDetailView.as_view(),
        name="subscription-detail",
    ),
    path(
        "webhooks/<int:subscription_id>/rotate-secret",
        api.SubscriptionRotateSecretView.as_view(),
        name="subscription-rotate-secret",
    ),
    path(
        "webhooks/<int:subscription_id>/deliveries",
        api.DeliveryListView.as_view(),
        name="delivery-list",
    ),
    path(
        "webhooks/<int:subscription_id>/deliveries/<uuid:delivery_id>/redeliver",
        api.DeliveryRedeliverView.as_view(),
        name="delivery-redeliver",
    ),
]

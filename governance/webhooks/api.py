"""REST API v1 of webhooks: subscriptions (the secret shown once, at creation and rotation),
their delivery history and redelivery. Managers only (administrators, risk and compliance
officers), in a session: no API key scope covers webhooks."""

from __future__ import annotations

import uuid
from typing import Any, cast

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.accounts.callers import Caller
from core.accounts.models import User
from core.api import READ_ERRORS, WRITE_ERRORS, request_user, validated
from core.pagination import StandardPagination
from core.permissions import ScopedPermission
from governance.webhooks import selectors, services
from governance.webhooks.models import WebhookDelivery, WebhookSubscription
from governance.webhooks.serializers import (
    DeliverySerializer,
    SubscriptionCreateSerializer,
    SubscriptionSerializer,
    SubscriptionUpdateSerializer,
    SubscriptionWithSecretSerializer,
)


class WebhookAccess(ScopedPermission):
    """Webhooks: people holding ``webhooks.manage_webhooksubscription`` through a role, in a
    session; no API key may read or change subscriptions (they hold the signing secrets)."""

    read_scopes = ()
    write_scopes = ()

    def has_permission(self, request: Request, view: Any) -> bool:
        if not super().has_permission(request, view):
            return False
        if not services.may_manage(cast(User, request.user)):
            self.message = "webhooks are managed by administrators, risk and compliance officers"
            return False
        return True


@extend_schema_view(
    get=extend_schema(
        summary="Webhook subscriptions", responses={200: SubscriptionSerializer, **READ_ERRORS}
    ),
    post=extend_schema(
        summary="Subscribe a URL to events; the answer shows the signing secret once",
        request=SubscriptionCreateSerializer,
        responses={201: SubscriptionWithSecretSerializer, **WRITE_ERRORS},
    ),
)
@extend_schema(tags=["webhooks"])
class SubscriptionListView(generics.ListAPIView):
    """Every subscription (managers see all of them)."""

    permission_classes = [WebhookAccess]
    queryset = WebhookSubscription.objects.none()
    serializer_class = SubscriptionSerializer
    pagination_class = StandardPagination

    def get_queryset(self) -> QuerySet[WebhookSubscription]:
        if getattr(self, "swagger_fake_view", False):
            return WebhookSubscription.objects.none()
        return selectors.subscription_list(user=request_user(self.request))

    def post(self, request: Request) -> Response:
        data = validated(SubscriptionCreateSerializer, request.data)
        subscription, secret = services.subscription_create(
            caller=Caller.from_request(request),
            url=data["url"],
            events=data["events"],
            description=data.get("description", ""),
        )
        body = SubscriptionWithSecretSerializer(subscription, context={"secret": secret}).data
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(
        summary="One webhook subscription", responses={200: SubscriptionSerializer, **READ_ERRORS}
    ),
    patch=extend_schema(
        summary="Change the URL, events, description or active flag",
        request=SubscriptionUpdateSerializer,
        responses={200: SubscriptionSerializer, **WRITE_ERRORS},
    ),
)
@extend_schema(tags=["webhooks"])
class SubscriptionDetailView(generics.GenericAPIView):
    """Subscriptions are deactivated (``active: false``), never deleted."""

    permission_classes = [WebhookAccess]
    serializer_class = SubscriptionSerializer

    def get(self, request: Request, subscription_id: int) -> Response:
        found = selectors.subscription_get(
            user=request_user(request), subscription_id=subscription_id
        )
        return Response(SubscriptionSerializer(found).data)

    def patch(self, request: Request, subscription_id: int) -> Response:
        found = selectors.subscription_get(
            user=request_user(request), subscription_id=subscription_id
        )
        data = validated(SubscriptionUpdateSerializer, request.data)
        updated = services.subscription_update(
            caller=Caller.from_request(request),
            subscription=found,
            url=data.get("url"),
            events=data.get("events"),
            description=data.get("description"),
            active=data.get("active"),
        )
        return Response(SubscriptionSerializer(updated).data)


@extend_schema(
    summary="Replace the signing secret; the answer shows the new one once",
    request=None,
    responses={200: SubscriptionWithSecretSerializer, **WRITE_ERRORS},
    tags=["webhooks"],
)
class SubscriptionRotateSecretView(generics.GenericAPIView):
    """Attempts from now on are signed with the new secret."""

    permission_classes = [WebhookAccess]
    serializer_class = SubscriptionWithSecretSerializer

    def post(self, request: Request, subscription_id: int) -> Response:
        found = selectors.subscription_get(
            user=request_user(request), subscription_id=subscription_id
        )
        subscription, secret = services.subscription_rotate_secret(
            caller=Caller.from_request(request), subscription=found
        )
        body = SubscriptionWithSecretSerializer(subscription, context={"secret": secret}).data
        return Response(body)


@extend_schema(
    summary="Delivery history of a subscription, newest first",
    parameters=[OpenApiParameter("status", str, enum=["pending", "succeeded", "failed"])],
    responses={200: DeliverySerializer, **READ_ERRORS},
    tags=["webhooks"],
)
class DeliveryListView(generics.ListAPIView):
    """Each delivery with its attempts, last answer (an excerpt) and the body sent."""

    permission_classes = [WebhookAccess]
    queryset = WebhookDelivery.objects.none()
    serializer_class = DeliverySerializer
    pagination_class = StandardPagination

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        if getattr(self, "swagger_fake_view", False):
            return WebhookDelivery.objects.none()
        user = request_user(self.request)
        found = selectors.subscription_get(
            user=user, subscription_id=self.kwargs["subscription_id"]
        )
        return selectors.delivery_list(
            user=user, subscription=found, status=self.request.query_params.get("status")
        )


@extend_schema(
    summary="Send a delivery's body again, as a new delivery",
    request=None,
    responses={202: DeliverySerializer, **WRITE_ERRORS},
    tags=["webhooks"],
)
class DeliveryRedeliverView(generics.GenericAPIView):
    """A new delivery id with the same event id and body; the original stays in history."""

    permission_classes = [WebhookAccess]
    serializer_class = DeliverySerializer

    def post(self, request: Request, subscription_id: int, delivery_id: uuid.UUID) -> Response:
        user = request_user(request)
        found = selectors.subscription_get(user=user, subscription_id=subscription_id)
        delivery = selectors.delivery_get(user=user, subscription=found, delivery_id=delivery_id)
        again = services.delivery_redeliver(caller=Caller.from_request(request), delivery=delivery)
        again.refresh_from_db()
        return Response(DeliverySerializer(again).data, status=status.HTTP_202_ACCEPTED)

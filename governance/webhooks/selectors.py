"""Reads of webhook subscriptions and deliveries: managers (administrators, risk and
compliance officers) see them all; anyone else sees none (404)."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from core.accounts.models import User
from core.errors import NotFound
from governance.webhooks.models import WebhookDelivery, WebhookSubscription
from governance.webhooks.services import may_manage


def subscription_list(*, user: User) -> QuerySet[WebhookSubscription]:
    """Every subscription, for managers; none otherwise."""
    if not may_manage(user):
        return WebhookSubscription.objects.none()
    return WebhookSubscription.objects.select_related("owner").order_by("id")


def subscription_get(*, user: User, subscription_id: int) -> WebhookSubscription:
    """One subscription the user may see, else ``NotFound``."""
    found = subscription_list(user=user).filter(pk=subscription_id).first()
    if found is None:
        raise NotFound(f"webhook subscription {subscription_id} not found")
    return found


def delivery_list(
    *, user: User, subscription: WebhookSubscription, status: str | None = None
) -> QuerySet[WebhookDelivery]:
    """The subscription's deliveries, newest first."""
    rows = subscription_list(user=user).filter(pk=subscription.pk)
    deliveries = WebhookDelivery.objects.filter(subscription__in=rows).select_related(
        "redelivery_of"
    )
    if status:
        deliveries = deliveries.filter(status=status)
    return deliveries.order_by("-created_at", "-id")


def delivery_get(
    *, user: User, subscription: WebhookSubscription, delivery_id: uuid.UUID
) -> WebhookDelivery:
    """One delivery of the subscription, else ``NotFound``."""
    found = (
        delivery_list(user=user, subscription=subscription)
        .select_related("subscription")
        .filter(delivery_id=delivery_id)
        .first()
    )
    if found is None:
        raise NotFound(f"delivery {delivery_id} not found")
    return found

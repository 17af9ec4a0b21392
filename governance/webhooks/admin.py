"""Webhooks in the Django admin: subscriptions and deliveries are visible to managers;
nothing is edited here. Deactivating, rotating a secret (shown once, in the admin's message)
and redelivering are admin actions that call ``governance.webhooks.services``."""

from __future__ import annotations

import json
from typing import Any, cast

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core.accounts.callers import Caller
from core.accounts.models import User
from core.errors import DomainError
from governance.webhooks import services
from governance.webhooks.models import WebhookDelivery, WebhookSubscription


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


def _each(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet, apply: Any
) -> None:
    caller = Caller(user=cast(User, request.user), auth="session")
    for obj in queryset:
        try:
            note = apply(caller, obj)
        except DomainError as error:
            modeladmin.message_user(request, f"{obj}: {error.message}", messages.ERROR)
        else:
            modeladmin.message_user(request, f"{obj}: {note}", messages.SUCCESS)


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(_ReadOnly):
    list_display = ("id", "url", "active", "owner", "created_at", "secret_rotated_at")
    list_filter = ("active",)
    fields = (
        "url",
        "description",
        "events",
        "active",
        "owner",
        "created_at",
        "updated_at",
        "secret_rotated_at",
    )
    readonly_fields = fields
    actions = ["deactivate", "rotate_secret"]

    @admin.action(description="Deactivate selected subscriptions")
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        def apply(caller: Caller, obj: WebhookSubscription) -> str:
            services.subscription_deactivate(caller=caller, subscription=obj)
            return "deactivated."

        _each(self, request, queryset, apply)

    @admin.action(description="Rotate the signing secret (the new one is shown once)")
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet) -> None:
        def apply(caller: Caller, obj: WebhookSubscription) -> str:
            _, secret = services.subscription_rotate_secret(caller=caller, subscription=obj)
            return f"new secret (shown once): {secret}"

        _each(self, request, queryset, apply)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(_ReadOnly):
    list_display = (
        "delivery_id",
        "event_type",
        "subscription",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("status", "event_type")
    fields = (
        "delivery_id",
        "subscription",
        "event_id",
        "event_type",
        "status",
        "attempts",
        "next_attempt_at",
        "last_attempt_at",
        "last_status_code",
        "last_error",
        "response_excerpt",
        "delivered_at",
        "redelivery_of",
        "created_at",
        "body",
    )
    readonly_fields = fields
    actions = ["redeliver"]

    @admin.display(description="body")
    def body(self, obj: WebhookDelivery) -> str:
        return json.dumps(json.loads(bytes(obj.payload)), indent=2, sort_keys=True)

    @admin.action(description="Redeliver selected deliveries")
    def redeliver(self, request: HttpRequest, queryset: QuerySet) -> None:
        def apply(caller: Caller, obj: WebhookDelivery) -> str:
            again = services.delivery_redeliver(caller=caller, delivery=obj)
            return f"redelivered as {again.delivery_id}."

        _each(self, request, queryset, apply)

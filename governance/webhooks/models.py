"""Webhook subscriptions and deliveries.

A subscription (governed: who sends which events to which URL is security relevant) changes
only through ``governance.webhooks.services``, each change audited, and is deactivated, never
deleted. Its signing secret is stored encrypted (``governance.webhooks.crypto``) and shown once.
A delivery is operational history: one row per (subscription, event), written in the
transaction of the change it announces (an outbox) and sent after commit by a Celery task.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from audit.actions import AuditAction
from registry.models import GovernedModel


class WebhookEvent(models.TextChoices):
    """The events Warden sends (docs/webhooks.md describes each payload)."""

    REQUEST_SUBMITTED = AuditAction.DEPLOYMENT_REQUEST_SUBMITTED.value, "Deployment requested"
    REQUEST_APPROVED = "deployment_request.approved", "Deployment request approved"
    REQUEST_REJECTED = "deployment_request.rejected", "Deployment request rejected"
    REQUEST_WITHDRAWN = (
        AuditAction.DEPLOYMENT_REQUEST_WITHDRAWN.value,
        "Deployment request withdrawn",
    )
    REQUEST_REVOKED = AuditAction.DEPLOYMENT_REQUEST_REVOKED.value, "Approval revoked"
    REQUEST_EXPIRED = AuditAction.DEPLOYMENT_REQUEST_EXPIRED.value, "Approval expired"
    REQUEST_EMERGENCY = (
        AuditAction.DEPLOYMENT_REQUEST_EMERGENCY_OPENED.value,
        "Break-glass deployment opened",
    )
    REQUEST_RETROSPECTIVE_OVERDUE = (
        AuditAction.DEPLOYMENT_REQUEST_RETROSPECTIVE_OVERDUE.value,
        "Break-glass retrospective review overdue",
    )
    SIGNOFF_SIGNED = AuditAction.SIGNOFF_SIGNED.value, "Sign-off signed"
    DEPLOYMENT_DEPLOYED = AuditAction.DEPLOYMENT_DEPLOYED.value, "Deployed"
    DEPLOYMENT_ROLLED_BACK = AuditAction.DEPLOYMENT_ROLLED_BACK.value, "Rolled back"
    DEPLOYMENT_RETIRED = AuditAction.DEPLOYMENT_RETIRED.value, "Retired from an environment"
    DEPLOYMENT_UNCHECKED = (
        "deployment.unchecked",
        "Deployed without a gate check that still allows",
    )
    GATE_DENIED = "gate.denied", "Gate check denied"
    SIGNING_LOCKED = "signoff.signing_locked", "Signing locked after failed re-authentications"
    AUDIT_CHANGE_REFUSED = (
        AuditAction.AUDIT_CHANGE_REFUSED.value,
        "Change to an audit record refused",
    )
    AUDIT_VERIFICATION_FAILED = "audit.verification_failed", "Audit log verification failed"
    AUDIT_CHECKPOINT_ALARM = "audit.checkpoint_alarm", "Audit checkpoint refused with an alarm"


class WebhookSubscription(GovernedModel):
    """Where events of the chosen types are POSTed, signed with the subscription's secret.

    ``secret_encrypted`` is a Fernet token; the plain secret is returned only by the service
    that creates or rotates it. Never deleted: ``active=False`` stops deliveries."""

    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list)
    secret_encrypted = models.TextField()
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="webhook_subscriptions"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "webhook subscription"
        permissions = [("manage_webhooksubscription", "Can manage webhook subscriptions")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.url}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event for one subscription: the exact body, and how sending it went.

    ``delivery_id`` is sent as ``Warden-Webhook-Id`` and stays the same across retries, so a
    receiver can drop duplicates; ``event_id`` is the same for every subscription and for
    redeliveries. ``leased_until`` lets exactly one worker send an attempt at a time."""

    delivery_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.PROTECT, related_name="deliveries"
    )
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=64, choices=WebhookEvent.choices)
    payload = models.BinaryField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    redelivery_of = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="redeliveries"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due")]

    def __str__(self) -> str:
        return f"{self.event_type} -> #{self.subscription_id} ({self.status})"

"""Celery tasks of the webhooks: send one delivery, and sweep the outbox for due ones."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.utils import timezone

from governance.webhooks import services
from governance.webhooks.models import DeliveryStatus


@shared_task(name="governance.webhooks.tasks.deliver", ignore_result=True, acks_late=True)
def deliver(delivery_id: str) -> dict[str, Any]:
    """Send one attempt of delivery ``delivery_id`` if it is due (``delivery_attempt``).
    Idempotent per delivery id: a lease and the status make a redelivered or duplicated task
    a no-op. After a failed attempt the retry is enqueued with the backoff delay as countdown;
    the sweep (``sweep``) sends it anyway if the broker loses it."""
    delivery = services.delivery_attempt(delivery_id=delivery_id)
    if delivery is None:
        return {"delivery": delivery_id, "attempted": False}
    if delivery.status == DeliveryStatus.PENDING and delivery.next_attempt_at is not None:
        countdown = max(0, int((delivery.next_attempt_at - timezone.now()).total_seconds()))
        deliver.apply_async((delivery_id,), countdown=countdown)
    return {"delivery": delivery_id, "attempted": True, "status": delivery.status}


@shared_task(name="governance.webhooks.tasks.sweep", ignore_result=True)
def sweep() -> int:
    """Enqueue every pending delivery that is due and not leased; run by Celery beat."""
    due = services.deliveries_due()
    for delivery_id in due:
        deliver.delay(delivery_id)
    return len(due)

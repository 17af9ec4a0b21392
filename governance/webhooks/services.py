"""The only code that changes webhook subscriptions and deliveries. One function per use case.

Subscription services check the caller (holders of ``webhooks.manage_webhooksubscription``
through a role: administrators, risk and compliance officers), validate, change the row and
append one audit record as the last step of one durable transaction; a refusal is recorded as
a security event. The signing secret never reaches an audit record (nor the redaction list's
mercy): records say only that a secret was set or rotated.

Deliveries are operational history: ``delivery_attempt`` sends one attempt under a lease so a
redelivered task cannot send twice at once, and schedules the next with exponential backoff
(``WEBHOOK_RETRY_DELAYS``).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.contrib.auth.models import Permission
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import (
    AuditEvent,
    Subject,
    audit_append_security_event,
    audit_record,
)
from core.accounts.callers import Caller
from core.accounts.models import User
from core.errors import Conflict, Forbidden, InvalidInput
from core.tasks import send_on_commit
from governance.webhooks import crypto, targets, transport
from governance.webhooks.models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookSubscription,
)

# The task that runs a delivery attempt, by its registered name (its module imports this one).
DELIVER = "governance.webhooks.tasks.deliver"

MANAGE_PERMISSION = "webhooks.manage_webhooksubscription"
DEFAULT_RETRY_DELAYS = (10, 30, 120, 600, 1800, 7200)
# A lease outlives the request timeout by this much before another worker may take over.
LEASE_MARGIN = dt.timedelta(seconds=30)
MAX_ERROR = 500


def retry_delays() -> tuple[int, ...]:
    """Seconds to wait after each failed attempt; their number is the number of retries."""
    return tuple(int(s) for s in getattr(settings, "WEBHOOK_RETRY_DELAYS", DEFAULT_RETRY_DELAYS))


def max_attempts() -> int:
    """The first attempt and one per retry delay."""
    return 1 + len(retry_delays())


def _timeout() -> float:
    return float(getattr(settings, "WEBHOOK_TIMEOUT_SECONDS", 10))


def may_manage(user: User) -> bool:
    """Whether one of the user's groups grants managing subscriptions (superuser status does
    not count, as for every role check)."""
    if not user.is_active:
        return False
    app_label, codename = MANAGE_PERMISSION.split(".", 1)
    return Permission.objects.filter(
        group__user=user, content_type__app_label=app_label, codename=codename
    ).exists()


def _subject(subscription: WebhookSubscription) -> Subject:
    label = f"#{subscription.pk} {_url_for_record(subscription.url)}"
    return Subject(type="webhook_subscription", id=str(subscription.pk or ""), label=label)


def _url_for_record(url: str) -> str:
    """The URL as audit records show it: query values may be tokens, so only their names."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = urlencode([(name, "[redacted]") for name, _ in parse_qsl(parts.query, True)])
    return urlunsplit(parts._replace(query=query))


def subscription_snapshot(subscription: WebhookSubscription) -> dict[str, Any]:
    """The subscription as audit records show it: never the secret."""
    return {
        "id": subscription.pk,
        "url": _url_for_record(subscription.url),
        "description": subscription.description,
        "events": list(subscription.events),
        "active": subscription.active,
        "owner": {"id": str(subscription.owner_id), "name": subscription.owner.printed_name},
    }


@contextmanager
def _recording_refusals(caller: Caller, *, subject: Subject) -> Iterator[None]:
    try:
        yield
    except Forbidden as error:
        audit_append_security_event(
            event=AuditEvent(
                action=AuditAction.WEBHOOK_SUBSCRIPTION_REFUSED,
                actor=caller.actor,
                object=subject,
                data={"code": error.code, "message": error.message},
            )
        )
        raise


def _require_manager(caller: Caller) -> None:
    if caller.user.is_service_account or not may_manage(caller.user):
        raise Forbidden("only an administrator, risk or compliance officer manages webhooks")


def _check_url(url: str) -> str:
    text = (url or "").strip()
    try:
        targets.check_url(text)
    except targets.TargetRefused as exc:
        raise InvalidInput(f"url: {exc}", fields={"url": [str(exc)]}) from exc
    return text


def _event_set(events: Sequence[str]) -> list[str]:
    """The subscribed event types, each once, in order (the serializer has checked that
    they are known event types and at least one)."""
    return sorted(set(events))


def _description(description: str) -> str:
    return (description or "").strip()


def _lock(subscription: WebhookSubscription) -> WebhookSubscription:
    return (
        WebhookSubscription.objects.select_for_update()
        .select_related("owner")
        .get(pk=subscription.pk)
    )


def subscription_create(
    *, caller: Caller, url: str, events: Sequence[str], description: str = ""
) -> tuple[WebhookSubscription, str]:
    """Subscribe ``url`` to ``events``, owned by the caller. Returns the subscription and its
    new signing secret, which is never shown again (only its encryption is stored)."""
    checked_url = _check_url(url)
    checked_events = _event_set(events)
    note = _description(description)
    subject = Subject(type="webhook_subscription", id="", label=_url_for_record(checked_url))
    with _recording_refusals(caller, subject=subject):
        _require_manager(caller)
        secret = crypto.generate_secret()
        with transaction.atomic(durable=True):
            subscription = WebhookSubscription.objects.create(
                url=checked_url,
                description=note,
                events=checked_events,
                secret_encrypted=crypto.encrypt_secret(secret),
                owner=caller.user,
            )
            audit_record(
                action=AuditAction.WEBHOOK_SUBSCRIPTION_CREATED,
                actor=caller.actor,
                object=_subject(subscription),
                data={**subscription_snapshot(subscription), "secret_set": True},
            )
    return subscription, secret


def subscription_update(
    *,
    caller: Caller,
    subscription: WebhookSubscription,
    url: str | None = None,
    events: Sequence[str] | None = None,
    description: str | None = None,
    active: bool | None = None,
) -> WebhookSubscription:
    """Change the URL, the events, the description or the active flag; the record keeps
    what changed (before and after)."""
    checked_url = _check_url(url) if url is not None else None
    checked_events = _event_set(events) if events is not None else None
    note = _description(description) if description is not None else None
    with _recording_refusals(caller, subject=_subject(subscription)):
        _require_manager(caller)
        with transaction.atomic(durable=True):
            subscription = _lock(subscription)
            before = subscription_snapshot(subscription)
            if checked_url is not None:
                subscription.url = checked_url
            if checked_events is not None:
                subscription.events = checked_events
            if note is not None:
                subscription.description = note
            if active is not None:
                subscription.active = active
            after = subscription_snapshot(subscription)
            changed = {
                k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]
            }
            if not changed:
                return subscription
            subscription.save()
            audit_record(
                action=AuditAction.WEBHOOK_SUBSCRIPTION_UPDATED,
                actor=caller.actor,
                object=_subject(subscription),
                data={"changes": changed, "subscription": after},
            )
    return subscription


def subscription_deactivate(
    *, caller: Caller, subscription: WebhookSubscription
) -> WebhookSubscription:
    """Stop sending to a subscription (kept, with its history); pending deliveries fail."""
    return subscription_update(caller=caller, subscription=subscription, active=False)


def subscription_rotate_secret(
    *, caller: Caller, subscription: WebhookSubscription
) -> tuple[WebhookSubscription, str]:
    """Replace the signing secret; returns the new one, shown once. Attempts from now on are
    signed with it (deliveries still pending included)."""
    with _recording_refusals(caller, subject=_subject(subscription)):
        _require_manager(caller)
        secret = crypto.generate_secret()
        with transaction.atomic(durable=True):
            subscription = _lock(subscription)
            subscription.secret_encrypted = crypto.encrypt_secret(secret)
            subscription.secret_rotated_at = timezone.now()
            subscription.save()
            audit_record(
                action=AuditAction.WEBHOOK_SUBSCRIPTION_SECRET_ROTATED,
                actor=caller.actor,
                object=_subject(subscription),
                data={
                    **subscription_snapshot(subscription),
                    "rotated_at": subscription.secret_rotated_at,
                },
            )
    return subscription, secret


def delivery_redeliver(*, caller: Caller, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery's exact body again as a new delivery (new delivery id, same event id),
    whatever became of the original. Recorded, since it re-sends data out of Warden."""
    with _recording_refusals(caller, subject=_subject(delivery.subscription)):
        _require_manager(caller)
        if not delivery.subscription.active:
            raise Conflict("the subscription is inactive; activate it before redelivering")
        with transaction.atomic(durable=True):
            again = WebhookDelivery.objects.create(
                subscription=delivery.subscription,
                event_id=delivery.event_id,
                event_type=delivery.event_type,
                payload=bytes(delivery.payload),
                next_attempt_at=timezone.now(),
                redelivery_of=delivery,
            )
            audit_record(
                action=AuditAction.WEBHOOK_DELIVERY_REDELIVERED,
                actor=caller.actor,
                object=Subject(
                    type="webhook_delivery", id=str(again.delivery_id), label=str(again)
                ),
                data={
                    "subscription": delivery.subscription_id,
                    "event_type": delivery.event_type,
                    "event_id": str(delivery.event_id),
                    "redelivery_of": str(delivery.delivery_id),
                },
            )
            enqueue_on_commit([again])
    return again


def enqueue_on_commit(deliveries: Sequence[WebhookDelivery]) -> None:
    """Send each delivery's first attempt once the current transaction commits (never for a
    rolled-back one). The periodic sweep picks up any that the broker lost."""
    for delivery in deliveries:
        send_on_commit(DELIVER, str(delivery.delivery_id))


def _take_lease(delivery_id: uuid.UUID | str, now: dt.datetime) -> WebhookDelivery | None:
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update()
            .filter(delivery_id=delivery_id)
            .select_related("subscription")
            .first()
        )
        if delivery is None or delivery.status != DeliveryStatus.PENDING:
            return None
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
            return None
        if delivery.leased_until is not None and delivery.leased_until > now:
            return None
        delivery.attempts += 1
        delivery.leased_until = now + dt.timedelta(seconds=_timeout()) + LEASE_MARGIN
        delivery.save(update_fields=["attempts", "leased_until"])
    return delivery


def _headers(delivery: WebhookDelivery, secret: str, timestamp: int) -> dict[str, str]:
    return {
        "Warden-Webhook-Id": str(delivery.delivery_id),
        "Warden-Webhook-Event": delivery.event_type,
        "Warden-Webhook-Timestamp": str(timestamp),
        "Warden-Webhook-Signature": crypto.signature(secret, timestamp, bytes(delivery.payload)),
    }


def _send(delivery: WebhookDelivery, now: dt.datetime) -> tuple[int | None, str, str]:
    """One attempt: (status code or None, error, response excerpt)."""
    subscription = delivery.subscription
    if not subscription.active:
        return None, "subscription inactive", ""
    try:
        target = targets.resolve_target(subscription.url)
    except targets.TargetRefused as exc:
        return None, f"target refused: {exc}", ""
    try:
        secret = crypto.decrypt_secret(subscription.secret_encrypted)
    except InvalidToken:
        return None, "the secret cannot be decrypted (was WEBHOOK_SECRET_KEY changed?)", ""
    started = time.monotonic()
    try:
        answer = transport.post(
            target,
            body=bytes(delivery.payload),
            headers=_headers(delivery, secret, int(now.timestamp())),
            timeout=_timeout(),
        )
    except (OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}", ""
    except Exception as exc:  # http.client.HTTPException and friends: a failed attempt
        return None, f"{type(exc).__name__}: {exc}", ""
    elapsed = time.monotonic() - started
    error = "" if 200 <= answer.status < 300 else f"HTTP {answer.status} after {elapsed:.2f}s"
    return answer.status, error, answer.excerpt


def delivery_attempt(
    *, delivery_id: uuid.UUID | str, now: dt.datetime | None = None
) -> WebhookDelivery | None:
    """Send one attempt of a pending delivery that is due, and record how it went.

    Idempotent per delivery id: a delivery that succeeded or failed for good, is not due yet,
    or is leased by another worker is left alone (``None``). A 2xx answer succeeds; anything
    else (another status, a redirect, a timeout, a refused target) schedules the next attempt
    after ``WEBHOOK_RETRY_DELAYS[attempts - 1]`` seconds, or fails the delivery after the last.
    ``now`` is the clock (tests pass a fake one)."""
    now = now or timezone.now()
    delivery = _take_lease(delivery_id, now)
    if delivery is None:
        return None
    status_code, error, excerpt = _send(delivery, now)
    delays = retry_delays()
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        delivery.last_attempt_at = now
        delivery.last_status_code = status_code
        delivery.last_error = error[:MAX_ERROR]
        delivery.response_excerpt = excerpt[:MAX_ERROR]
        delivery.leased_until = None
        if status_code is not None and 200 <= status_code < 300:
            delivery.status = DeliveryStatus.SUCCEEDED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
        elif delivery.attempts > len(delays) or error == "subscription inactive":
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = None
        else:
            delivery.next_attempt_at = now + dt.timedelta(seconds=delays[delivery.attempts - 1])
        delivery.save()
    return delivery


def deliveries_due(*, now: dt.datetime | None = None, limit: int = 500) -> list[str]:
    """Ids of pending deliveries whose next attempt is due and that no worker holds (the
    outbox sweep: covers tasks the broker never got or lost)."""
    now = now or timezone.now()
    rows = (
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lte=now))
        .order_by("next_attempt_at", "id")
        .values_list("delivery_id", flat=True)[:limit]
    )
    return [str(pk) for pk in rows]

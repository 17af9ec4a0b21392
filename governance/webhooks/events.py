"""From domain events to webhook deliveries.

``on_domain_event`` receives ``core.events.domain_event`` (sent by the approvals
services inside their transaction, right after the audit record), turns the audit action into
the webhook event types it means (a signature that completes the last step is also
``deployment_request.approved``; a denied gate check is ``gate.denied``; a deployment reported
without a gate check that still allows is also ``deployment.unchecked``) and calls ``publish``.

``publish`` writes one ``WebhookDelivery`` per active subscription to the event type, in the
same transaction (an outbox), and sends them after commit: a change that rolls back sends
nothing. Payloads carry ids, names, states, the actor's name and the audit seq; never secrets.

``on_alert`` receives ``audit.alerts.alert_raised`` (a refused change to an audit table, a
failed verification, a checkpoint alarm, a locked signer) and publishes the alert as the
webhook event of the same name.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from django.utils import timezone

from audit import selectors as audit_selectors
from audit.actions import AuditAction
from audit.canonical import format_timestamp
from audit.models import AuditRecord
from core.actors import Actor
from governance.webhooks.models import WebhookDelivery, WebhookEvent, WebhookSubscription

PAYLOAD_VERSION = 1
# The fact the gate's decision loads for this app (``governance.approvals.decision``).
ACTIVE_FACT = "webhooks_active"


def _subscribed(event_type: str) -> list[WebhookSubscription]:
    return [
        subscription
        for subscription in WebhookSubscription.objects.filter(active=True)
        if event_type in subscription.events
    ]


def encode(payload: Mapping[str, Any]) -> bytes:
    """The body sent: compact JSON, keys sorted, UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def publish(event_type: str, payload: Mapping[str, Any]) -> list[WebhookDelivery]:
    """Queue ``payload`` (the ``data`` of an event envelope, or a whole envelope with
    ``data``) for every active subscription to ``event_type``; sent after commit."""
    if event_type not in WebhookEvent.values:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    subscriptions = _subscribed(event_type)
    if not subscriptions:
        return []
    envelope = dict(payload) if "data" in payload else {"data": dict(payload)}
    event_id = uuid.UUID(str(envelope.get("id") or uuid.uuid4()))
    envelope = {
        "v": PAYLOAD_VERSION,
        "id": str(event_id),
        "type": event_type,
        "occurred_at": envelope.get("occurred_at") or format_timestamp(timezone.now()),
        **{k: v for k, v in envelope.items() if k not in ("id", "type", "occurred_at", "v")},
    }
    body = encode(envelope)
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                delivery_id=uuid.uuid4(),
                subscription=subscription,
                event_id=event_id,
                event_type=event_type,
                payload=body,
                next_attempt_at=now,
            )
            for subscription in subscriptions
        ]
    )
    from governance.webhooks.services import enqueue_on_commit

    enqueue_on_commit(deliveries)
    return deliveries


def _audit_seq(object_type: str, object_id: str, action: str) -> int | None:
    """The seq of the record the service has just appended (this transaction holds the
    log's lock, so it is the newest one for the object and action)."""
    return audit_selectors.latest_seq(object_type=object_type, object_id=object_id, action=action)


def _asked(check: Any) -> dict[str, Any]:
    version = check.model_version
    return {
        "model": version.model.name,
        "version": version.version,
        "environment": check.environment.name,
    }


def _request_data(request: Any) -> dict[str, Any]:
    version = request.model_version
    return {
        "id": request.pk,
        "model": version.model.name,
        "version": version.version,
        "artifact_digest": version.artifact_digest,
        "environment": request.environment.name,
        "state": request.state,
        "requester": request.requester.printed_name,
        "expires_at": format_timestamp(request.expires_at) if request.expires_at else None,
    }


def _translate(
    action: str, subject: Any, record: AuditRecord | None = None
) -> tuple[list[str], str, str, dict[str, Any]]:
    """(webhook event types, audit object type, audit object id, data) of a domain event."""
    from governance.approvals.models import Deployment, DeploymentRequest, GateCheck, SignOff

    if isinstance(subject, DeploymentRequest):
        types = [action]
        if action == AuditAction.DEPLOYMENT_REQUEST_SUBMITTED and subject.state == "approved":
            types.append(WebhookEvent.REQUEST_APPROVED)
        return types, "deployment_request", str(subject.pk), {"request": _request_data(subject)}
    if isinstance(subject, SignOff):
        request = subject.request
        types = [WebhookEvent.SIGNOFF_SIGNED.value]
        if request.state == "approved" and subject.step != SignOff.RETROSPECTIVE:
            types.append(WebhookEvent.REQUEST_APPROVED)
        elif request.state == "rejected":
            types.append(WebhookEvent.REQUEST_REJECTED)
        data = {
            "request": _request_data(request),
            "signoff": {
                "id": subject.pk,
                "step": subject.step,
                "decision": subject.decision,
                "meaning": subject.meaning,
                "signer": subject.printed_name,
                "signed_sha256": subject.signed_sha256,
            },
        }
        return types, "signoff", str(subject.pk), data
    if isinstance(subject, GateCheck):
        types = [] if subject.allowed else [WebhookEvent.GATE_DENIED.value]
        if not types:
            return types, "gate_check", str(subject.check_id), {}
        # The check's record names what the gate was asked; the check row need not be read.
        asked = json.loads(record.body)["data"] if record is not None else _asked(subject)
        data = {
            "check": {
                "check_id": str(subject.check_id),
                "model": asked["model"],
                "version": asked["version"],
                "environment": asked["environment"],
                "digest": subject.digest,
                "allowed": subject.allowed,
                "status": subject.status,
                "reasons": list(subject.reasons),
                "request": subject.request_id,
                "pipeline_run": subject.pipeline_run,
            }
        }
        return types, "gate_check", str(subject.check_id), data
    if isinstance(subject, Deployment):
        version = subject.model_version
        data = {
            "deployment": {
                "id": subject.pk,
                "model": version.model.name,
                "version": version.version,
                "artifact_digest": version.artifact_digest,
                "environment": subject.environment.name,
                "event": subject.event,
                "occurred_at": format_timestamp(subject.occurred_at),
                "pipeline_run": subject.pipeline_run,
                "commit": subject.commit,
                "check_id": str(subject.gate_check.check_id) if subject.gate_check else None,
                "unchecked": subject.unchecked,
            }
        }
        types = [action]
        if subject.unchecked:
            types.append(WebhookEvent.DEPLOYMENT_UNCHECKED.value)
        return types, "deployment", str(subject.pk), data
    return [], "", "", {}


def on_domain_event(
    sender: Any,
    *,
    action: str,
    subject: Any,
    actor: Actor,
    record: AuditRecord | None = None,
    facts: Mapping[str, Any] | None = None,
    **_: Any,
) -> None:
    """Receiver of ``domain_event``: publish the webhook events an audit action means. With
    the service's ``record`` its seq is taken from it; with ``facts`` saying that no
    subscription is active (``webhooks_active``, loaded with the gate's decision) nothing is
    read."""
    types, object_type, object_id, data = _translate(action, subject, record)
    types = [t for t in types if t in WebhookEvent.values]
    if not types:
        return
    active = (facts or {}).get(ACTIVE_FACT)
    if active is not None and not active:
        return
    if active is None and not WebhookSubscription.objects.filter(active=True).exists():
        return
    envelope = {
        "id": str(uuid.uuid4()),
        "occurred_at": format_timestamp(timezone.now()),
        "audit_seq": record.seq
        if record is not None
        else _audit_seq(object_type, object_id, action),
        "actor": {"type": actor.type, "name": actor.name},
        "data": data,
    }
    for event_type in types:
        publish(event_type, {**envelope, "id": str(uuid.uuid4())})


def on_alert(
    sender: Any,
    *,
    event: str,
    record: AuditRecord | None,
    data: Mapping[str, Any],
    key: str | None = None,
    **_: Any,
) -> None:
    """Receiver of ``audit.alerts.alert_raised``: publish the alert as the webhook event of
    the same name, with the record's seq, actor and (redacted) data, or the data alone. An
    alert with a ``key`` has an event id derived from it and is published once."""
    if (
        event not in WebhookEvent.values
        or not WebhookSubscription.objects.filter(active=True).exists()
    ):
        return
    envelope: dict[str, Any] = {"id": str(uuid.uuid4())}
    if key is not None:
        event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"warden-alert:{event}:{key}")
        if WebhookDelivery.objects.filter(event_id=event_id).exists():
            return
        envelope["id"] = str(event_id)
    if record is not None:
        body = json.loads(record.body)
        actor = body.get("actor") or {}
        envelope.update(
            occurred_at=body.get("ts"),
            audit_seq=record.seq,
            actor={"type": actor.get("type"), "name": actor.get("name")},
            data={"alert": {"action": record.action, **(body.get("data") or {})}},
        )
    else:
        envelope.update(
            audit_seq=None,
            actor={"type": "system", "name": "Warden"},
            data={"alert": dict(data)},
        )
    publish(event, envelope)

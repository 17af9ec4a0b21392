"""Alerts: audit records that security monitoring must hear about when they are written.

A record that carries an alert (a refused change to an audit table, a failed verification, a
locked signer...) is announced with ``alert_raise`` inside the transaction that appended it.
A checkpoint alarm is announced without a record: appending to the log the alarm is about
would move it (a size-specific fork would be signed past); the checkpointer logs it at
CRITICAL and announces it once per kind and stored checkpoint (``key``).

``audit`` imports no other app: the receivers (the webhooks app connects one in its
``ready()``) run in that transaction and must defer anything external to
``transaction.on_commit``, so nothing leaves Warden for a record that rolled back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.dispatch import Signal

from audit.actions import AuditAction

if TYPE_CHECKING:
    from audit.models import AuditRecord

# Sent with ``event`` (what the alert is called outside Warden, ``noun.past_participle``, e.g.
# ``audit.verification_failed``), ``record`` (the audit record carrying it, whose redacted
# ``data`` is what a receiver may send on) or, without a record, ``data``; and ``key``.
alert_raised = Signal()

CHANGE_REFUSED = AuditAction.AUDIT_CHANGE_REFUSED.value
VERIFICATION_FAILED = "audit.verification_failed"
CHECKPOINT_ALARM = "audit.checkpoint_alarm"


def alert_raise(
    *,
    event: str,
    record: AuditRecord | None = None,
    data: Mapping[str, Any] | None = None,
    key: str | None = None,
) -> None:
    """Announce the alert ``event`` carried by ``record`` (already appended, in the open
    transaction), or by ``data`` alone. ``key`` names the alert for good: receivers announce
    an alert with the same event and key once."""
    alert_raised.send(
        sender=alert_raise, event=event, record=record, data=dict(data or {}), key=key
    )

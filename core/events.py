"""Domain events: what a service announces after it has recorded a change.

A service calls ``emit`` inside its transaction, right after its audit record, so receivers
(the webhooks app) see the change and its record together and can defer their side effects
with ``transaction.on_commit``: nothing leaves Warden for a change that rolled back. The
signal lives in this kernel so that lower layers (approvals) never import the apps that
listen (webhooks): dependencies keep pointing one way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.dispatch import Signal

from core.actors import Actor

# Sent with ``action`` (the audit action, e.g. ``deployment_request.submitted``), ``subject``
# (the changed row), ``actor``, and, when the service has them, ``record`` (the audit record it
# has just appended) and ``facts`` (what it already read that receivers would ask again, such
# as the gate's ``webhooks_active``).
domain_event = Signal()


def emit(
    action: str,
    subject: Any,
    actor: Actor,
    *,
    record: Any = None,
    facts: Mapping[str, Any] | None = None,
) -> None:
    """Announce that ``action`` (an audit action) happened to ``subject``, done by ``actor``.

    Call it inside the service's transaction after ``audit_append``; receivers run in that
    transaction and must defer anything external to ``transaction.on_commit``."""
    domain_event.send(
        sender=type(subject),
        action=action,
        subject=subject,
        actor=actor,
        record=record,
        facts=facts or {},
    )

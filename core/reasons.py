"""The reason a person gives for a change, as every service checks it before it goes into
the change's audit record (``AuditEvent.reason``)."""

from __future__ import annotations

from core.errors import InvalidInput

MAX_REASON = 2000


def reason_required(reason: str | None) -> str:
    """``reason`` stripped: required, at most ``MAX_REASON`` characters (``InvalidInput`` on
    the ``reason`` field otherwise)."""
    text = (reason or "").strip()
    if not text:
        raise InvalidInput("a reason is required", fields={"reason": ["This field is required."]})
    if len(text) > MAX_REASON:
        raise InvalidInput(
            "reason too long",
            fields={"reason": [f"Ensure this field has no more than {MAX_REASON} characters."]},
        )
    return text


def reason_optional(reason: str | None) -> str | None:
    """Like ``reason_required``, but a missing or blank reason is ``None``."""
    return reason_required(reason) if (reason or "").strip() else None

"""Template filters and tags of the approval pages: readable reasons, statuses and meanings,
relative times, and whether to offer "Request a deployment" (asked of the selectors)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.utils import timezone

from core.roles import Role
from governance.approvals import readable, selectors

register = template.Library()


@register.filter
def reason_text(code: str) -> str:
    """A gate reason code in words."""
    return readable.reason_text(code)


@register.filter
def reasons_text(codes: Any) -> str:
    """Gate reason codes in words, one list."""
    return readable.reasons_text(codes or [])


@register.filter
def evidence_status_text(status: str) -> str:
    return readable.evidence_status_text(status)


@register.filter
def meaning_text(meaning: str) -> str:
    return readable.meaning_text(meaning)


@register.filter
def role_text(role: str) -> str:
    """A role's label (``Risk officer``); an unknown value as is."""
    return str(Role(role).label) if role in Role.values else str(role)


@register.filter
def relative(moment: dt.datetime | None) -> str:
    """``moment`` relative to now ("just now", "5 minutes ago", "in 3 days")."""
    return readable.relative_time(moment, timezone.now())


@register.simple_tag
def may_request_deployments(user: Any) -> bool:
    """Whether to offer "Request a deployment" to ``user`` (the service decides)."""
    return bool(getattr(user, "is_authenticated", False)) and selectors.deployment_request_allowed(
        user
    )

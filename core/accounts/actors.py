"""Turning the authenticated caller into the audit record's ``actor``."""

from __future__ import annotations

from typing import Any

from core.accounts.models import ApiKey, User
from core.actors import Actor


def actor_for(user: User, auth: Any = None) -> Actor:
    """The audit actor for ``user``; ``auth`` says how they authenticated."""
    if isinstance(auth, ApiKey):
        how = f"api_key:{auth.prefix}"
    elif isinstance(auth, str):
        how = auth
    else:
        how = "session"
    kind = "service" if user.is_service_account else "user"
    return Actor(type=kind, id=str(user.pk), name=user.printed_name, auth=how)

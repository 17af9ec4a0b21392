"""The caller of a service: the acting user and how they authenticated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.accounts.actors import actor_for
from core.accounts.models import ApiKey, User
from core.actors import Actor


@dataclass(frozen=True)
class Caller:
    """Who is acting, passed to every service; ``auth`` is ``session``, ``api_key``, ``cli``..."""

    user: User
    api_key: ApiKey | None = None
    auth: str = "session"

    @classmethod
    def from_request(cls, request: Any) -> Caller:
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        return cls(user=request.user, api_key=api_key, auth="api_key" if api_key else "session")

    @property
    def actor(self) -> Actor:
        return actor_for(self.user, self.api_key or self.auth)


def request_api_key(request: Any) -> ApiKey | None:
    """The key a request authenticated with, if any."""
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiKey) else None

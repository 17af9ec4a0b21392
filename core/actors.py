"""Who acted: the ``actor`` of every audit record and domain event.

It lives in the kernel because every layer names actors (accounts turn a caller into one,
the audit log stores it, services announce events with it), and none of them may import the
layer above. ``audit.services`` re-exports both names for callers of the log.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """Who acted: a person, a service account, or Warden itself."""

    type: str
    id: str
    name: str
    auth: str | None = None

    def as_record(self) -> dict[str, str]:
        out = {"type": self.type, "id": self.id, "name": self.name}
        if self.auth:
            out["auth"] = self.auth
        return out


SYSTEM_ACTOR = Actor(type="system", id="warden", name="Warden")

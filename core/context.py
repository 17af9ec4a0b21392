"""The request context (request id, and client info when enabled) that records carry."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

_current: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "audit_context", default=None
)


def current() -> Mapping[str, Any] | None:
    """The context of the request or job being served, if any."""
    return _current.get()


@contextmanager
def bound(context: Mapping[str, Any]) -> Iterator[None]:
    """Bind ``context`` for the duration of a request, command or task."""
    token = _current.set(dict(context))
    try:
        yield
    finally:
        _current.reset(token)

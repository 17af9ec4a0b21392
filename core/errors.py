"""Domain errors with meaning: what services raise when they refuse.

Framework-free on purpose (no Django, no DRF): pure modules such as the approval workflow
raise them and import without settings. ``http_status`` is the HTTP status as a plain int;
``core.exceptions`` turns these errors into the one JSON error format of the API.
"""

from __future__ import annotations

import errno
import logging
from typing import Any, TypeGuard

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """Base of refusals raised by services; ``code`` is machine-readable."""

    code = "error"
    http_status: int = 400
    # Set by the service that has already written this refusal to the log as a security
    # event, so an outer handler that records refusals does not record it a second time.
    recorded: bool

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.recorded = False


class InvalidInput(DomainError):
    """The request names something impossible (bad value, unknown reference)."""

    code = "invalid"


class EvidenceNotAcknowledged(InvalidInput):
    """An approval while evidence the policy requires is missing or not passing, without the
    signer's explicit acknowledgement of it."""

    code = "evidence_not_acknowledged"


class NotFound(DomainError):
    """The object does not exist, or is outside the user's scope (never 403 for that)."""

    code = "not_found"
    http_status = 404


class Forbidden(DomainError):
    """The actor may see the object but not do this to it."""

    code = "permission_denied"
    http_status = 403


class Conflict(DomainError):
    """The action clashes with existing state (a duplicate, a retired object)."""

    code = "conflict"
    http_status = 409


class ContentChanged(Conflict):
    """What a signer was shown is no longer what would be signed (the evidence, the request
    or the step changed since the page was shown)."""

    code = "content_changed"


class TransitionNotAllowed(Conflict):
    """A state machine refuses the transition from the current state."""

    code = "transition_not_allowed"


class InsufficientStorage(DomainError):
    """The server's disk (or the account's quota on it) is full: the upload was not stored,
    and nothing of it is left behind; the same request may succeed once space is freed."""

    code = "insufficient_storage"
    http_status = 507


# What a client is told when its upload met a full disk, and when anything else did.
UPLOAD_NO_SPACE_MESSAGE = (
    "the server has no space left to store the upload; nothing was stored, "
    "try again once space is freed"
)
NO_SPACE_MESSAGE = "the server has no space left on its disk to complete the request"
# A write refused for want of space: the file system is full, or the quota is used up.
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_out_of_space(exc: BaseException) -> TypeGuard[OSError]:
    """Whether ``exc`` is a write that failed because the disk (or quota) is full."""
    return isinstance(exc, OSError) and exc.errno in _NO_SPACE


def insufficient_storage(exc: OSError, message: str = NO_SPACE_MESSAGE) -> InsufficientStorage:
    """The refusal of a request that met a full disk; logged, since an operator must free
    space (the client's message names no path)."""
    logger.error("a request was refused, the disk is full: %s", exc)
    return InsufficientStorage(message)


class SeparationOfDutiesViolation(Forbidden):
    """A sign-off refused by separation of duties; ``code`` names the rule that refused it
    (``requester_cannot_sign``, ``author_cannot_sign``, ``owner_cannot_sign_independent_step``,
    ``already_signed_another_step``, ``role_required``, ...)."""

    code = "separation_of_duties"

    def __init__(
        self, message: str, *, rule: str, fields: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(message, fields=fields)
        self.code = rule


class ReauthenticationFailed(Forbidden):
    """Signing needs the signer's password again at that moment; it was missing or wrong
    (``reauthentication_failed``), or too many failures locked signing (``signing_locked``)."""

    code = "reauthentication_failed"

    def __init__(
        self, message: str, *, code: str = "reauthentication_failed", fields: Any = None
    ) -> None:
        super().__init__(message, fields=fields)
        self.code = code

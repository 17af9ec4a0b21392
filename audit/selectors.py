"""Reads of the audit log for the other apps: they ask these, never ``AuditRecord.objects``.

The log's own code (append, checkpoints, proofs, exports) reads its tables directly; every
other app goes through a function here, so that what other layers read of the log is listed
in one place and the log's tables can change without them. Functions read the local log
(``AUDIT_LOG_ORIGIN``) unless they say otherwise.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.conf import settings
from django.db.models import Q

from audit.models import AuditRecord


def any_record_exists(*, using: str = "default") -> bool:
    """Whether the log on database ``using`` has begun (any record at all)."""
    return AuditRecord.objects.using(using).exists()


def action_count_since(*, action: str, actor_id: str, since: dt.datetime) -> int:
    """How many ``action`` records ``actor_id`` caused at or after ``since`` (e.g. failed
    re-authentications of a signer within the lock window)."""
    return AuditRecord.objects.filter(action=action, actor_id=actor_id, ts__gte=since).count()


def records_about(subjects: Iterable[tuple[str, Iterable[str]]]) -> list[AuditRecord]:
    """The records about any of ``subjects`` (``(object_type, object_ids)`` pairs), including
    refusals recorded as security events, in log order."""
    query = Q()
    for object_type, object_ids in subjects:
        ids = [str(object_id) for object_id in object_ids]
        query |= Q(object_type=object_type, object_id__in=ids)
    if not query:
        return []
    return list(AuditRecord.objects.filter(query).order_by("seq"))


def latest_seq(*, object_type: str, object_id: str, action: str) -> int | None:
    """The seq of the newest ``action`` record about the object (inside the transaction
    that appended it, which holds the log's lock, that is the record just appended)."""
    seq: int | None = (
        AuditRecord.objects.filter(
            log=settings.AUDIT_LOG_ORIGIN,
            object_type=object_type,
            object_id=object_id,
            action=action,
        )
        .order_by("-seq")
        .values_list("seq", flat=True)
        .first()
    )
    return seq


def first_seqs(*, object_type: str, object_ids: Iterable[object]) -> dict[str, int]:
    """Object id -> the seq of the first record about it (the one that created it)."""
    keys = [str(object_id) for object_id in object_ids]
    if not keys:
        return {}
    seqs: dict[str, int] = {}
    rows = (
        AuditRecord.objects.filter(
            log=settings.AUDIT_LOG_ORIGIN, object_type=object_type, object_id__in=keys
        )
        .order_by("seq")
        .values_list("object_id", "seq")
    )
    for object_id, seq in rows:
        seqs.setdefault(object_id, seq)
    return seqs

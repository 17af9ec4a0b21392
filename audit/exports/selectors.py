"""Reads for exports: who may export, the records and checkpoint notes a bundle holds, and
the export jobs a user may see."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS
from django.db.models import QuerySet
from django.utils import timezone

from audit.exports.format import ExportFilter
from audit.models import AuditExport, AuditExportStatus, AuditRecord, Checkpoint
from core.errors import Conflict, InvalidInput, NotFound

if TYPE_CHECKING:
    from core.accounts.models import User

EXPORT_PERMISSION = "audit.export_auditrecord"


def log_origin() -> str:
    """The origin of this Warden's log (``AUDIT_LOG_ORIGIN``)."""
    return str(settings.AUDIT_LOG_ORIGIN)


def chunk_records() -> int:
    """How many rows an export reads at a time (``AUDIT_EXPORT_CHUNK_RECORDS``)."""
    return max(1, int(getattr(settings, "AUDIT_EXPORT_CHUNK_RECORDS", 5000)))


def export_permitted(user: User) -> bool:
    """Whether ``user`` may export the audit log (``audit.export_auditrecord``: auditors and
    administrators by default)."""
    return bool(user.is_active and user.has_perm(EXPORT_PERMISSION))


def check_request(selection: ExportFilter, prior_size: int | None, using: str) -> None:
    """Refusals that need no checkpoint: an unknown model, a prior size never signed."""
    origin = log_origin()
    if selection.model is not None:
        known = AuditRecord.objects.using(using).filter(log=origin, scope_model=selection.model)
        if not known.exists():
            raise NotFound(
                f"no record of the audit log concerns a model named {selection.model!r}",
                fields={"model": ["no record of the audit log concerns this model"]},
            )
    if prior_size is not None:
        if prior_size < 1:
            raise InvalidInput(
                "prior_size must be the size of a signed checkpoint (1 or more)",
                fields={"prior_size": ["must be at least 1"]},
            )
        if not Checkpoint.objects.using(using).filter(log=origin, size=prior_size).exists():
            raise NotFound(
                f"no checkpoint of size {prior_size}: prior_size must name a signed checkpoint",
                fields={"prior_size": [f"no checkpoint of size {prior_size}"]},
            )


def records_matching(
    origin: str, end: int, selection: ExportFilter, using: str
) -> Iterator[tuple[int, str, bytes]]:
    """``(seq, leaf column, body)`` of the matching records below ``end``, in seq order,
    fetched ``AUDIT_EXPORT_CHUNK_RECORDS`` at a time (``seq >= last + 1 ... LIMIT n``)."""
    chunk = chunk_records()
    matching = AuditRecord.objects.using(using).filter(log=origin, seq__lt=end)
    if selection.model is not None:
        matching = matching.filter(scope_model=selection.model)
    if selection.since is not None:
        matching = matching.filter(ts__gte=selection.since)
    if selection.until is not None:
        matching = matching.filter(ts__lt=selection.until)
    position = 0
    while True:
        rows = list(
            matching.filter(seq__gte=position)
            .order_by("seq")
            .values_list("seq", "leaf", "body")[:chunk]
        )
        for seq, leaf, body in rows:
            yield seq, leaf, body.encode("utf-8")
        if len(rows) < chunk:
            return
        position = rows[-1][0] + 1


def checkpoint_notes(
    origin: str, checkpoint: Checkpoint, prior: Checkpoint | None, full: bool, using: str
) -> Iterator[tuple[int, bytes]]:
    """``(size, exact note bytes)`` of the checkpoints the bundle carries, by size."""
    if full:
        rows = (
            Checkpoint.objects.using(using)
            .filter(log=origin, size__lte=checkpoint.size)
            .order_by("size")
            .values_list("size", "note")
            .iterator(chunk_size=chunk_records())
        )
        for size, note in rows:
            yield size, note.encode("utf-8")
        return
    if prior is not None and prior.size < checkpoint.size:
        yield prior.size, prior.note.encode("utf-8")
    yield checkpoint.size, checkpoint.note.encode("utf-8")


def audit_exports_unstarted(
    *, older_than: dt.timedelta, now: dt.datetime | None = None, using: str = DEFAULT_DB_ALIAS
) -> list[str]:
    """Ids of exports still queued ``older_than`` after their request: their message was lost
    (the broker was down when the request committed, or dropped it). Sending them again is
    harmless: ``audit_export_run`` runs an export once."""
    moment = (now or timezone.now()) - older_than
    queued = AuditExport.objects.using(using).filter(
        status=AuditExportStatus.QUEUED, created_at__lt=moment
    )
    return [str(pk) for pk in queued.values_list("pk", flat=True)]


def audit_export_list(*, user: User, using: str = DEFAULT_DB_ALIAS) -> QuerySet[AuditExport]:
    """The exports ``user`` requested, newest first (nobody sees another person's exports;
    the log shows every export to those who may read it)."""
    return AuditExport.objects.using(using).filter(requested_by=user).order_by("-created_at")


def audit_export_get(
    *, user: User, export_id: uuid.UUID | str, using: str = DEFAULT_DB_ALIAS
) -> AuditExport:
    """One export of ``user``'s; ``NotFound`` for an unknown id or another person's."""
    found = audit_export_list(user=user, using=using).filter(pk=export_id).first()
    if found is None:
        raise NotFound(f"no audit export {export_id} of yours")
    return found


def audit_export_file(*, export: AuditExport) -> Path:
    """The bundle of a done export; ``Conflict`` while it is not done (or failed),
    ``NotFound`` if its file has gone from ``AUDIT_EXPORT_DIR``."""
    if export.status != AuditExportStatus.DONE:
        detail = f": {export.error}" if export.status == AuditExportStatus.FAILED else ""
        raise Conflict(
            f"export {export.id} is {export.status}{detail}; its bundle can be downloaded once "
            "it is done"
        )
    path = Path(settings.AUDIT_EXPORT_DIR) / export.file_name
    if not path.is_file():
        raise NotFound(f"the bundle of export {export.id} is missing from AUDIT_EXPORT_DIR")
    return path

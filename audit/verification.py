"""In-service verification of the whole log, straight from the database, and the record of
a verification's result (``audit.verified``; a failure is also an alert).

The checkpointer re-checks only the records after its last checkpoint; the scheduled full
verification (``audit.tasks.verify_full``, hourly by default) re-checks every record, so that
an older record changed behind the triggers' back is noticed within the hour, not only when
someone runs ``audit_verify``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.backends.utils import CursorWrapper

from audit.actions import AuditAction
from audit.alerts import VERIFICATION_FAILED, alert_raise
from audit.models import AuditRecord, LogHead
from audit.services import Subject, audit_record
from audit.verifier import (
    ChainReport,
    ChainVerifier,
    Checked,
    Finding,
    check_bodies,
    check_in_parallel,
)
from core.actors import SYSTEM_ACTOR

CHUNK = 20_000
# Smaller chunks when worker processes check them: less to copy per hand-over, and the
# first results come back sooner.
PARALLEL_CHUNK = 5_000

Columns = list[tuple[int, str]]


def _chunks(cursor: CursorWrapper, origin: str, size: int) -> Iterator[tuple[Columns, list[bytes]]]:
    """The stored records in seq ranges: ``([(seq column, leaf column)...], [body...])``."""
    last_seq_column = -1
    while True:
        cursor.execute(
            "SELECT seq, leaf, body FROM audit_auditrecord WHERE log = %s AND seq > %s "
            "ORDER BY seq LIMIT %s",
            [origin, last_seq_column, size],
        )
        rows = cursor.fetchall()
        if not rows:
            return
        yield (
            [(seq, leaf) for seq, leaf, _ in rows],
            [body.encode("utf-8") if isinstance(body, str) else bytes(body) for _, _, body in rows],
        )
        last_seq_column = rows[-1][0]


def verify_log(
    *, origin: str | None = None, using: str = DEFAULT_DB_ALIAS, workers: int = 1
) -> ChainReport:
    """Re-check every record of the log: canonical bytes, seq, chain, times, stored leaves.

    Reads in seq ranges so memory stays flat on millions of records. Beyond the body checks
    of ``audit.verifier`` it compares the stored ``seq`` and ``leaf`` columns with the bodies,
    and the head row with the last record (a truncated tail). With ``workers`` > 1 the checks
    of each body run in that many processes; the chain checks stay here, in order, so the
    findings are the same.
    """
    origin = origin or settings.AUDIT_LOG_ORIGIN
    verifier = ChainVerifier(origin)
    report = verifier.report
    connection = connections[using]
    with connection.cursor() as cursor:
        checked: Iterable[tuple[Columns, list[Checked]]]
        if workers > 1:
            checked = check_in_parallel(_chunks(cursor, origin, PARALLEL_CHUNK), workers)
        else:
            checked = (
                (columns, check_bodies(bodies))
                for columns, bodies in _chunks(cursor, origin, CHUNK)
            )
        for columns, results in checked:
            for (seq_column, leaf_column), result in zip(columns, results, strict=True):
                if verifier.accept(result, position=seq_column) != leaf_column:
                    report.findings.append(
                        Finding("E_LEAF", seq_column, "stored leaf hash does not match the body")
                    )
    head = LogHead.objects.using(using).filter(log=origin).first()
    size = head.size if head else 0
    if report.records < size:
        report.findings.append(
            Finding(
                "E_TRUNCATED",
                report.records,
                f"the log head says {size} records, only {report.records} are stored",
            )
        )
    elif head is not None and report.records and head.tip != report.tip:
        report.findings.append(
            Finding("E_PREV", report.last_seq, "the log head's tip is not the last record's leaf")
        )
    return report


VERIFIED = AuditAction.AUDIT_VERIFIED


class VerificationTrigger(models.TextChoices):
    """What ran a recorded verification."""

    SCHEDULE = "schedule", "Scheduled full verification"
    COMMAND = "command", "manage.py audit_verify"


def verification_record(
    *, report: ChainReport, trigger: str, using: str = DEFAULT_DB_ALIAS
) -> AuditRecord:
    """Append ``audit.verified`` with the result of a verification of the whole log (records
    verified, result, first bad seq and its code), in a transaction of its own; a failure
    carries ``"alert": "audit_verification_failed"`` and is announced as
    ``audit.verification_failed``."""
    first = report.first_error
    data = {
        "trigger": trigger,
        "ok": report.ok,
        "size": report.records,
        "first_bad_seq": first.seq if first else None,
        "code": first.code if first else None,
        "findings": len(report.findings),
        "alert": None if report.ok else "audit_verification_failed",
    }
    origin = str(settings.AUDIT_LOG_ORIGIN)
    with transaction.atomic(using=using, durable=True):
        record = audit_record(
            action=VERIFIED,
            actor=SYSTEM_ACTOR,
            object=Subject(type="audit_log", id=origin, label=origin),
            data=data,
            using=using,
        )
        if not report.ok:
            alert_raise(event=VERIFICATION_FAILED, record=record)
    return record


def verify_log_full(
    *, trigger: str = VerificationTrigger.SCHEDULE, using: str = DEFAULT_DB_ALIAS, workers: int = 1
) -> tuple[ChainReport, AuditRecord]:
    """Verify every record of the log (``verify_log``) and record the result
    (``verification_record``)."""
    report = verify_log(using=using, workers=workers)
    return report, verification_record(report=report, trigger=trigger, using=using)

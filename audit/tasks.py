"""Celery tasks of the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from celery import shared_task

from audit.checkpoints import checkpoint_create, checkpoint_due
from audit.exports import audit_export_run, audit_exports_unstarted
from audit.verification import VerificationTrigger, verify_log_full


@shared_task(name="audit.tasks.checkpoint_if_due", ignore_result=True)
def checkpoint_if_due() -> dict[str, Any]:
    """Sign a checkpoint when one is due (``checkpoint_due``: 60 s or 1,000 records by
    default); run by Celery beat every 10 s. Takes no arguments and is idempotent: the
    checkpointer lock and ``UNIQUE(log, size)`` let overlapping runs sign each size once.
    Alarms (fork, truncation, tampering) are logged at CRITICAL and fail the task.
    """
    if not checkpoint_due():
        return {"created": False, "size": None}
    result = checkpoint_create()
    return {
        "created": result.created,
        "size": result.checkpoint.size if result.checkpoint else None,
    }


@shared_task(name="audit.tasks.export_bundle", ignore_result=True, acks_late=True)
def export_bundle(export_id: str) -> dict[str, Any]:
    """Write the bundle of a requested export (``audit.exports.audit_export_run``). Routed to
    the ``checkpoints`` queue: an export signs a checkpoint first, so it runs where the
    signing key is. Idempotent by export id: a done or failed export is not run again, and a
    redelivery after a lost worker writes it afresh (acknowledged late for that reason).
    """
    export = audit_export_run(export_id=export_id)
    return {"export": str(export.id), "status": export.status, "sha256": export.sha256}


# An export request's message is sent at its commit; one still queued this long after was lost.
EXPORT_RESEND_AFTER = dt.timedelta(seconds=60)


@shared_task(name="audit.tasks.requeue_exports", ignore_result=True)
def requeue_exports() -> dict[str, Any]:
    """Send ``export_bundle`` again for every export still queued a minute after its request
    (its message was lost, e.g. the broker was down); run by Celery beat every minute."""
    pending = audit_exports_unstarted(older_than=EXPORT_RESEND_AFTER)
    for export_id in pending:
        export_bundle.delay(export_id)
    return {"requeued": pending}


@shared_task(name="audit.tasks.verify_full", ignore_result=True)
def verify_full() -> dict[str, Any]:
    """Re-check every record of the log and record the result (``audit.verified``; a failure
    is also the ``audit.verification_failed`` alert); run by Celery beat every
    ``AUDIT_FULL_VERIFY_INTERVAL_SECONDS`` (an hour by default). Takes no arguments; each run
    reads the log afresh and appends one record, so overlapping runs do no harm.
    """
    report, record = verify_log_full(trigger=VerificationTrigger.SCHEDULE)
    first = report.first_error
    return {
        "ok": report.ok,
        "records": report.records,
        "first_bad_seq": first.seq if first else None,
        "audit_seq": record.seq,
    }

"""Celery tasks of the reports: computing one report, and requeueing those whose worker died."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from governance.reports import services


@shared_task(
    name="governance.reports.tasks.run_report",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def run_report(report_id: str) -> dict[str, Any]:
    """Compute, render and store one report (``jobs.report_run``). Acknowledged late and
    requeued when the worker is lost; idempotent by report id: a done or failed report is
    never run again, a running one only once its holder's lease expired (the claim is one
    conditional UPDATE, so one worker wins).

    The job (the engine, the PDF renderer and their libraries) is imported by the first
    report a worker runs, not when autodiscovery imports this module."""
    from governance.reports import jobs

    return {"report": report_id, "outcome": jobs.report_run(report_id)}


@shared_task(name="governance.reports.tasks.requeue_expired", ignore_result=True)
def requeue_expired() -> dict[str, Any]:
    """Send ``run_report`` again for every report whose job lease expired or whose message
    was lost (Celery beat, every minute); the claim makes a duplicate harmless."""
    pending = services.reports_expired()
    for report_id in pending:
        run_report.delay(report_id)
    return {"requeued": pending}


@shared_task(
    name="governance.reports.tasks.run_package",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def run_package(package_id: str) -> dict[str, Any]:
    """Write one regulator's package (``package.package_run``): export, verify, render,
    store, record. Idempotent by id: only a queued package is claimed (one conditional
    UPDATE), so a redelivered message does nothing. Runs in-process where no broker is
    configured, like the report jobs."""
    from governance.reports import package

    return {"package": package_id, "outcome": package.package_run(package_id)}

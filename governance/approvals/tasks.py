"""Celery tasks of sign-off and deployment."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from governance.approvals.services import (
    deployment_requests_expire_due,
    retrospectives_flag_overdue,
)


@shared_task(name="governance.approvals.tasks.expire_due_requests", ignore_result=True)
def expire_due_requests() -> dict[str, Any]:
    """Expire every approval whose time has passed (``deployment_requests_expire_due``);
    run by Celery beat every few minutes. Takes no arguments and is idempotent: each request
    is expired under its row lock, and one already expired is skipped. The gate denies an
    expired approval whether or not this has run; this makes the state say so too.
    """
    return {"expired": deployment_requests_expire_due()}


@shared_task(name="governance.approvals.tasks.flag_overdue_retrospectives", ignore_result=True)
def flag_overdue_retrospectives() -> dict[str, Any]:
    """Raise the alert for every break-glass deployment whose retrospective review is past
    due and unsigned (``retrospectives_flag_overdue``); run by Celery beat. Idempotent: each
    request is raised once, under its row lock."""
    return {"raised": retrospectives_flag_overdue()}

"""Sending a Celery task once the current transaction commits, without letting the broker
decide the request's outcome.

The database row is the truth (a queued report, a queued export, a pending webhook delivery);
the message only says "start now". When the broker does not answer, the commit has happened
and the request succeeds: the send is logged and dropped, and the periodic sweep of that kind
of job (``governance.reports.tasks.requeue_expired``, ``audit.tasks.requeue_exports``,
``governance.webhooks.tasks.sweep``) sends it once the broker is back.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from django.db import transaction
from kombu.exceptions import OperationalError as BrokerError

log = logging.getLogger(__name__)


def send(task: Task, *args: Any) -> bool:
    """Send ``task`` now; ``False`` (logged) when the broker is unreachable. In-process
    (eager) execution, the development mode without a broker, runs the task and lets its
    errors through."""
    if task.app.conf.task_always_eager:
        task.apply_async(args)
        return True
    try:
        # One attempt: a sweep resends what is lost, and a request must not wait on retries.
        task.apply_async(args, retry=False)
    except (BrokerError, OSError) as error:
        log.warning(
            "the task broker does not answer (%s): %s%r stays queued for the next sweep",
            error,
            task.name,
            args,
        )
        return False
    return True


def send_on_commit(task: Task, *args: Any, using: str | None = None) -> None:
    """``send`` once the current transaction commits (at once outside one); never for a
    transaction that rolls back."""
    transaction.on_commit(lambda: send(task, *args), using=using)

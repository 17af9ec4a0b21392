"""Sending a Celery task once the current transaction commits, without letting the broker
decide the request's outcome.

The database row is the truth (a queued report, a queued export, a pending webhook delivery);
the message only says "start now". When the broker does not answer, the commit has happened
and the request succeeds: the send is logged and dropped, and the periodic sweep of that kind
of job (``governance.reports.tasks.requeue_expired``, ``audit.tasks.requeue_exports``,
``governance.webhooks.tasks.sweep``) sends it once the broker is back.

A service names the task it sends by its registered name: the task module imports the
service it runs, so the service importing the task module back would be a cycle.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from celery import Task, current_app
from django.db import transaction
from kombu.exceptions import OperationalError as BrokerError

log = logging.getLogger(__name__)


def registered(task: Task | str) -> Task:
    """``task`` itself, or the task registered under that name. A task is named by its
    dotted path (``governance.reports.tasks.run_report``), so a process that has not yet
    imported its module (a web worker) imports it here, which registers it."""
    if not isinstance(task, str):
        return task
    if task not in current_app.tasks:
        importlib.import_module(task.rpartition(".")[0])
    return current_app.tasks[task]


def send(task: Task | str, *args: Any) -> bool:
    """Send ``task`` (a task, or its registered name) now; ``False`` (logged) when the broker
    is unreachable. In-process (eager) execution, the development mode without a broker, runs
    the task and lets its errors through."""
    task = registered(task)
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


def send_on_commit(task: Task | str, *args: Any, using: str | None = None) -> None:
    """``send`` once the current transaction commits (at once outside one); never for a
    transaction that rolls back."""
    transaction.on_commit(lambda: send(task, *args), using=using)

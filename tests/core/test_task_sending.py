"""Sending a task after a commit (``core.tasks``): a broker that does not answer
costs the request nothing (the row is the truth; the send is logged for the sweep), a
rolled-back transaction sends nothing, and in-process execution lets a task's errors through.
The end-to-end case, Redis stopped under real requests and a real worker resuming the work,
is ``tests/test_redis_unavailable.py``."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from django.db import transaction
from django.utils import timezone

from audit.exports import audit_export_request, audit_exports_unstarted
from audit.models import AuditExport
from audit.tasks import EXPORT_RESEND_AFTER, requeue_exports
from core.accounts.callers import Caller
from core.accounts.models import User
from core.tasks import send, send_on_commit


class Refusing:
    """A TCP server that closes every connection at once, counting them: a broker that does
    not answer, and how many times a send tried to reach it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def refusing() -> Iterator[Refusing]:
    broker = Refusing()
    yield broker
    broker.close()


@pytest.fixture
def unreachable(refusing: Refusing) -> Iterator[Any]:
    """A task of an application whose broker closes every connection, with the project's
    publishing options."""
    from django.conf import settings

    app = Celery(
        "warden-unreachable",
        broker=f"redis://127.0.0.1:{refusing.port}/0",
        set_as_current=False,  # the project's shared tasks keep their own app
    )
    app.conf.broker_transport_options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    ran: list[str] = []

    @app.task(name="tests.unreachable.note")
    def note(value: str) -> None:
        ran.append(value)

    yield note
    app.close()


def test_a_broker_that_does_not_answer_is_logged_not_raised(
    unreachable: Any, refusing: Refusing, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="core.tasks"):
        assert send(unreachable, "r-1") is False
    # Connected at most twice (one attempt, one quick retry), not kombu's reconnection loop.
    assert 1 <= refusing.connections <= 2
    (warning,) = caplog.records
    assert "broker does not answer" in warning.getMessage()
    assert "tests.unreachable.note('r-1',)" in warning.getMessage()


@pytest.mark.django_db(transaction=True)
def test_after_commit_the_send_failing_does_not_fail_the_caller(
    unreachable: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="core.tasks"):
        with transaction.atomic():
            send_on_commit(unreachable, "r-2")
        # Rolled back: nothing is sent, nothing is logged.
        with pytest.raises(RuntimeError), transaction.atomic():
            send_on_commit(unreachable, "r-3")
            raise RuntimeError("roll back")
    assert [r.getMessage().count("r-2") for r in caplog.records] == [1]


def test_in_process_execution_runs_the_task_and_lets_its_errors_through() -> None:
    app = Celery("warden-eager", set_as_current=False)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True

    @app.task(name="tests.eager.fail")
    def fail() -> None:
        raise ValueError("the task's own error")

    with pytest.raises(ValueError, match="the task's own error"):
        send(fail)


@pytest.mark.django_db
def test_the_sweep_resends_exports_still_queued_a_minute_after_their_request(
    admin_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = audit_export_request(requested_by=admin_user, actor=Caller(user=admin_user).actor)
    new = audit_export_request(requested_by=admin_user, actor=Caller(user=admin_user).actor)
    AuditExport.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - EXPORT_RESEND_AFTER - dt.timedelta(seconds=1)
    )
    assert audit_exports_unstarted(older_than=EXPORT_RESEND_AFTER) == [str(old.pk)]

    sent: list[str] = []
    monkeypatch.setattr("audit.tasks.export_bundle.delay", sent.append)
    assert requeue_exports() == {"requeued": [str(old.pk)]}
    assert sent == [str(old.pk)]
    # Once it ran (done), it is not queued any more: never sent again.
    AuditExport.objects.filter(pk=old.pk).update(status="done")
    assert requeue_exports() == {"requeued": []}
    assert new.status == "queued"


def test_beat_sweeps_the_exports_every_minute_on_the_checkpoints_queue() -> None:
    from django.conf import settings

    from governance.celery import app

    entry = app.conf.beat_schedule["audit-requeue-exports"]
    assert (entry["task"], entry["schedule"]) == ("audit.tasks.requeue_exports", 60.0)
    assert settings.CELERY_TASK_ROUTES["audit.tasks.requeue_exports"] == {"queue": "checkpoints"}


def test_services_name_the_tasks_they_send_by_registered_name() -> None:
    """A service sends its task by name (its task module imports the service, so importing
    the task back would be a cycle); each name is the task's registered one."""
    from audit.exports.services import EXPORT_BUNDLE
    from audit.tasks import export_bundle
    from core.tasks import registered
    from governance.reports.services import RUN_REPORT
    from governance.reports.tasks import run_report
    from governance.webhooks.services import DELIVER
    from governance.webhooks.tasks import deliver

    # ``shared_task`` hands out a proxy; the registry holds the task it stands for.
    for name, task in (
        (EXPORT_BUNDLE, export_bundle),
        (RUN_REPORT, run_report),
        (DELIVER, deliver),
    ):
        assert registered(name) is task._get_current_object()  # type: ignore[attr-defined]
    assert registered(deliver) is deliver
    with pytest.raises(KeyError):
        registered("governance.reports.tasks.no_such_task")

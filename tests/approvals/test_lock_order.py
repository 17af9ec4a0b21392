"""Lock order on PostgreSQL: a deployment report serialises on its environment's row while
other transactions that reference the environment (gate checks, requests) hold the audit
log's head and check their foreign keys at commit. The environment lock must not conflict
with those checks (``FOR NO KEY UPDATE``, not ``FOR UPDATE``), or the two deadlock and one of
them is answered 500."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditRecord
from audit.services import AuditEvent, Subject, audit_append
from governance.approvals import services
from governance.approvals.models import Deployment, Environment, GateCheck
from tests.support import on_postgres

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

WAIT_SECONDS = 30


def waiting_for_a_lock(pid: int) -> bool:
    """Whether the backend ``pid`` is blocked on a lock (pg_locks is read afresh each time)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_locks WHERE pid = %s AND NOT granted", [pid])
        return cursor.fetchone() is not None


def test_a_deployment_report_waiting_for_the_log_does_not_deadlock_a_gate_check(
    version, ci, ci_account
):
    if not on_postgres():
        pytest.skip("row lock modes are PostgreSQL's; SQLite serialises every writer")
    dev = Environment.objects.get(name="dev")
    connection.ensure_connection()
    reporter_pid = connection.connection.info.backend_pid
    holding = threading.Event()
    errors: list[BaseException] = []

    def gate_check_committing_after_the_report_waits() -> None:
        # A gate check's transaction: its row (foreign key to the environment, checked at
        # commit) and its audit record (the log's head locked until commit).
        try:
            with transaction.atomic(durable=True):
                check = GateCheck.objects.create(
                    check_id=uuid.uuid4(),
                    model_version=version,
                    environment=dev,
                    digest=version.artifact_digest,
                    allowed=True,
                    status="allowed",
                    asked_by=ci_account,
                    asked_at=timezone.now(),
                )
                audit_append(
                    events=[
                        AuditEvent(
                            action="gate.checked",
                            actor=ci.actor,
                            object=Subject(type="gate_check", id=str(check.check_id), label="x"),
                            data={"check_id": str(check.check_id)},
                        )
                    ]
                )
                holding.set()
                deadline = time.monotonic() + WAIT_SECONDS
                while not waiting_for_a_lock(reporter_pid):
                    assert time.monotonic() < deadline, "the report never waited for the log"
                    time.sleep(0.05)
        except BaseException as error:  # the test thread asserts there was none
            errors.append(error)
            holding.set()
        finally:
            connection.close()

    checker = threading.Thread(target=gate_check_committing_after_the_report_waits)
    checker.start()
    assert holding.wait(WAIT_SECONDS)
    try:
        deployment = services.deployment_report(
            caller=ci, version=version, environment="dev", event="deployed"
        )
    finally:
        checker.join(WAIT_SECONDS)
    assert errors == []
    assert Deployment.objects.filter(pk=deployment.pk).exists()
    assert GateCheck.objects.filter(model_version=version, environment=dev).count() == 1
    actions = list(AuditRecord.objects.order_by("seq").values_list("action", flat=True))
    assert actions[-2:] == ["gate.checked", "deployment.deployed"]

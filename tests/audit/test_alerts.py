"""Tampering is noticed when it happens, not only when someone looks: refused changes to the
audit tables, checkpoint alarms, failed verifications (scheduled, or ``audit_verify``) and a
locked signer are recorded in the audit log and go out as webhook events.

Tampering runs as the database owner with the triggers dropped (``helpers``); the scheduled
full verification is what must notice it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction

from audit import tasks
from audit.checkpoints import TruncationAlarm, checkpoint_create
from audit.models import AppendOnlyError, AuditRecord, Checkpoint
from core.accounts.callers import Caller
from core.accounts.models import User
from governance.webhooks import services as webhook_services
from governance.webhooks.models import WebhookDelivery, WebhookSubscription
from tests.apitools import last_seq, records_since
from tests.audit.conftest import only_signing_key
from tests.audit.helpers import (
    append_log,
    delete,
    overwrite,
    set_head,
    stored,
    stored_bodies,
    with_data,
)
from tests.audit.test_append_only import ORM_WRITES

pytestmark = pytest.mark.django_db

ALERTS = [
    "audit.change_refused",
    "audit.verification_failed",
    "audit.checkpoint_alarm",
    "signoff.signing_locked",
]


@pytest.fixture
def watcher(rita: User) -> WebhookSubscription:
    """Security monitoring subscribed to every alert (through the service, audited)."""
    subscription, _ = webhook_services.subscription_create(
        caller=Caller(user=rita),
        url="http://127.0.0.1:9/alerts",
        events=ALERTS,
        description="security monitoring",
    )
    return subscription


def deliveries(event_type: str) -> list[dict[str, Any]]:
    """The bodies of the queued deliveries of ``event_type``."""
    return [
        json.loads(bytes(d.payload))
        for d in WebhookDelivery.objects.filter(event_type=event_type).order_by("id")
    ]


def new_records(seq: int, action: str) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in records_since(seq) if r.action == action]


@pytest.mark.usefixtures("watcher")
@pytest.mark.parametrize("write", ORM_WRITES.values(), ids=ORM_WRITES.keys())
def test_a_refused_change_to_a_record_is_recorded_and_alerted(
    write: Callable[[AuditRecord], Any],
) -> None:
    append_log(3)
    before = stored()
    seq = last_seq()
    with pytest.raises(AppendOnlyError):
        write(AuditRecord.objects.get(seq=1))

    assert stored()[: len(before)] == before
    (body,) = new_records(seq, "audit.change_refused")
    assert body["data"]["table"] == "audit_auditrecord"
    assert body["data"]["alert"] == "audit_change_refused"
    assert "append-only" in body["data"]["message"]
    (payload,) = deliveries("audit.change_refused")
    assert payload["audit_seq"] == body["seq"]
    assert payload["data"]["alert"]["table"] == "audit_auditrecord"


@pytest.mark.usefixtures("watcher")
def test_a_refused_checkpoint_change_is_recorded_and_alerted(settings: Any, tmp_path: Path) -> None:
    only_signing_key(settings, tmp_path, publish=True)
    append_log(3)
    checkpoint = checkpoint_create().checkpoint
    assert checkpoint is not None
    seq = last_seq()
    with pytest.raises(AppendOnlyError):
        Checkpoint.objects.filter(pk=checkpoint.pk).update(root="0" * 64)
    (body,) = new_records(seq, "audit.change_refused")
    assert body["data"]["table"] == "audit_checkpoint"
    assert len(deliveries("audit.change_refused")) == 1


@pytest.mark.usefixtures("watcher")
def test_a_change_refused_inside_a_transaction_is_recorded_when_it_commits(
    django_capture_on_commit_callbacks: Any,
) -> None:
    append_log(2)
    seq = last_seq()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        with pytest.raises(AppendOnlyError):
            AuditRecord.objects.get(seq=0).delete()
        assert new_records(seq, "audit.change_refused") == []
    (body,) = new_records(seq, "audit.change_refused")
    assert body["data"]["operation"] == "delete()"
    assert len(deliveries("audit.change_refused")) == 1


@pytest.mark.usefixtures("watcher")
def test_the_scheduled_verification_of_an_intact_log_is_recorded() -> None:
    append_log(4)
    size = last_seq() + 1
    result = tasks.verify_full()
    assert result["ok"] is True
    (body,) = new_records(size - 1, "audit.verified")
    assert body["data"] == {
        "trigger": "schedule",
        "ok": True,
        "size": size,
        "first_bad_seq": None,
        "code": None,
        "findings": 0,
        "alert": None,
    }
    assert deliveries("audit.verification_failed") == []


@pytest.mark.usefixtures("watcher")
def test_the_scheduled_verification_records_and_alerts_an_edited_old_record() -> None:
    append_log(6)
    bodies = stored_bodies()
    overwrite({2: with_data(bodies[2], n=999)}, update_columns=False)
    seq = last_seq()

    result = tasks.verify_full()

    assert result["ok"] is False
    (body,) = new_records(seq, "audit.verified")
    data = body["data"]
    assert (data["ok"], data["first_bad_seq"], data["code"]) == (False, 2, "E_LEAF")
    assert data["alert"] == "audit_verification_failed"
    assert data["size"] >= 6
    (payload,) = deliveries("audit.verification_failed")
    assert payload["audit_seq"] == body["seq"]
    assert payload["data"]["alert"]["first_bad_seq"] == 2
    assert payload["data"]["alert"]["code"] == "E_LEAF"


@pytest.mark.usefixtures("watcher")
def test_the_scheduled_verification_notices_a_deleted_record() -> None:
    append_log(5)
    delete(1)
    seq = last_seq()
    tasks.verify_full()
    (body,) = new_records(seq, "audit.verified")
    assert body["data"]["ok"] is False
    assert body["data"]["first_bad_seq"] == 1
    assert len(deliveries("audit.verification_failed")) == 1


def test_beat_runs_the_full_verification_hourly(settings: Any) -> None:
    from governance.celery import app

    assert settings.AUDIT_FULL_VERIFY_INTERVAL_SECONDS == 3600
    entry = app.conf.beat_schedule["audit-verify-full"]
    assert (entry["task"], entry["schedule"]) == ("audit.tasks.verify_full", 3600.0)
    app.loader.import_default_modules()
    assert "audit.tasks.verify_full" in app.tasks


@pytest.mark.usefixtures("watcher")
def test_a_failing_audit_verify_command_records_and_alerts() -> None:
    append_log(4)
    overwrite({1: with_data(stored_bodies()[1], n=7)}, update_columns=False)
    seq = last_seq()
    with pytest.raises(SystemExit) as exit_:
        call_command("audit_verify", stdout=StringIO())
    assert exit_.value.code == 1
    (body,) = new_records(seq, "audit.verified")
    assert (body["data"]["trigger"], body["data"]["ok"]) == ("command", False)
    assert body["data"]["first_bad_seq"] == 1
    assert len(deliveries("audit.verification_failed")) == 1


@pytest.mark.usefixtures("watcher")
def test_a_passing_audit_verify_command_records_nothing() -> None:
    append_log(3)
    seq = last_seq()
    call_command("audit_verify", stdout=StringIO())
    assert records_since(seq) == []


@pytest.mark.usefixtures("watcher")
def test_a_truncation_alarm_is_alerted_once_and_appends_nothing(
    settings: Any, tmp_path: Path
) -> None:
    only_signing_key(settings, tmp_path, publish=True)
    append_log(10)
    checkpoint_create()
    top = last_seq()
    for gone in (top, top - 1, top - 2):
        delete(gone)
    set_head(size=top - 2, tip=stored()[-1][2])
    before = stored()

    with pytest.raises(TruncationAlarm):
        checkpoint_create()
    # Appending to the log the alarm is about would change what the alarm is about.
    assert stored() == before
    (payload,) = deliveries("audit.checkpoint_alarm")
    alert = payload["data"]["alert"]
    assert (alert["kind"], alert["checkpoint_size"]) == ("TruncationAlarm", top + 1)
    assert "covers" in alert["message"]

    # The beat runs the checkpointer every 10 s: the same alarm is not sent again.
    with pytest.raises(TruncationAlarm):
        checkpoint_create()
    assert len(deliveries("audit.checkpoint_alarm")) == 1

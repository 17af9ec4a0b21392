"""The report job: claim by one conditional UPDATE, progress, idempotence, lease takeover,
failure on bad input, and the audit records with the PDF's SHA-256."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from audit.models import AuditRecord
from core.accounts.callers import Caller
from governance.reports import jobs, services
from governance.reports.models import Report, ReportJob, ReportStatus
from governance.reports.tasks import requeue_expired, run_report
from tests.conftest import client_for
from tests.reports.conftest import COMPAS, COMPAS_FIELDS, upload

pytestmark = pytest.mark.django_db


def actions(report: Report) -> list[str]:
    return [r.action for r in AuditRecord.objects.filter(object_id=str(report.pk)).order_by("seq")]


@pytest.fixture
def queued(alice, version) -> Report:
    """A fairness report requested through the API, its task not run yet."""
    response = client_for(alice).post(
        "/api/v1/reports/", {**COMPAS_FIELDS, "evaluation": upload(COMPAS)}, format="multipart"
    )
    assert response.status_code == 202
    return Report.objects.get(pk=response.json()["id"])


def test_run_completes_once_with_the_pdf_digest_in_the_audit_log(queued, report_dirs):
    assert run_report(str(queued.pk)) == {"report": str(queued.pk), "outcome": "done"}
    queued.refresh_from_db()
    assert queued.status == ReportStatus.DONE and queued.attempts == 1
    pdf = Path(report_dirs["pdfs"]) / queued.pdf_path
    assert hashlib.sha256(pdf.read_bytes()).hexdigest() == queued.pdf_sha256
    completed = json.loads(AuditRecord.objects.get(action="report.completed").body)
    assert completed["data"]["pdf_sha256"] == queued.pdf_sha256
    assert completed["data"]["audit_seq_at_generation"] == queued.audit_seq
    # The seq at generation is the report.started record, the last one before rendering.
    started = AuditRecord.objects.get(action="report.started")
    assert queued.audit_seq == started.seq
    assert json.loads(queued.result_json)["kind"] == "fairness"
    # Idempotent: a redelivery finds it done and does nothing.
    assert run_report(str(queued.pk))["outcome"] == "skipped"
    assert actions(queued) == ["report.requested", "report.started", "report.completed"]


def test_progress_moves_through_the_stages(queued, monkeypatch):
    seen: list[tuple[int, str]] = []

    def observe(report: Report, progress: int) -> None:
        job = ReportJob.objects.get(report=report)
        seen.append((job.progress, job.stage))

    monkeypatch.setattr(jobs, "progress_hooks", [observe])
    jobs.report_run(str(queued.pk), worker="w1")
    assert seen == [(10, "reading"), (50, "rendering"), (80, "storing")]
    job = ReportJob.objects.get(report=queued)
    assert (job.progress, job.stage, job.finished) == (100, "done", True)


def test_a_report_requested_without_the_api_is_sent_on_commit_too(
    alice, version, django_capture_on_commit_callbacks
):
    """The service sends the job's task itself, so an admin action or a command that requests
    a report enqueues it as the API does: once the request commits, and only then."""
    with django_capture_on_commit_callbacks() as enqueued:
        report = services.report_request(
            caller=Caller(user=alice, auth="cli"),
            version=version,
            kind="lineage",
            parameters={},
            uploads={},
            datasets={},
            overrides={},
        )
    assert len(enqueued) == 1
    report.refresh_from_db()
    assert report.status == ReportStatus.QUEUED
    for callback in enqueued:
        callback()  # the in-process (eager) task, as without a broker
    report.refresh_from_db()
    assert report.status == ReportStatus.DONE
    assert actions(report) == ["report.requested", "report.started", "report.completed"]


def test_a_report_request_that_rolls_back_sends_nothing(
    alice, version, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks() as enqueued,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.report_request(
            caller=Caller(user=alice, auth="cli"),
            version=version,
            kind="lineage",
            parameters={},
            uploads={},
            datasets={},
            overrides={},
        )
        raise RuntimeError("roll back")
    assert enqueued == []
    assert not Report.objects.exists()


def test_a_live_lease_keeps_other_workers_out(queued):
    assert services.report_claim(report_id=queued.pk, worker="w1") is not None
    assert services.report_claim(report_id=queued.pk, worker="w2") is None
    assert jobs.report_run(str(queued.pk), worker="w2") == "skipped"


def test_an_expired_lease_is_taken_over_and_finished_once(queued):
    first = services.report_claim(report_id=queued.pk, worker="dead")
    assert first is not None
    # The first worker died: its lease runs out.
    ReportJob.objects.filter(report=queued).update(
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert services.reports_expired() == [str(queued.pk)]
    assert jobs.report_run(str(queued.pk), worker="second") == "done"
    queued.refresh_from_db()
    assert queued.status == ReportStatus.DONE and queued.attempts == 2
    started = [
        json.loads(r.body)["data"] for r in AuditRecord.objects.filter(action="report.started")
    ]
    assert [(s["worker"], s["took_over"]) for s in started] == [
        ("dead", False),
        ("second", True),
    ]
    # The first worker, should it wake up, can neither report progress nor complete.
    with pytest.raises(services.LeaseLost):
        services.report_progress(report=first, worker="dead", progress=50, stage="x")
    with pytest.raises(services.LeaseLost):
        services.report_fail(report=first, worker="dead", message="late")
    assert AuditRecord.objects.filter(action="report.completed").count() == 1
    assert services.reports_expired() == []


def test_requeue_sends_expired_and_lost_reports(queued, django_capture_on_commit_callbacks):
    services.report_claim(report_id=queued.pk, worker="dead")
    ReportJob.objects.filter(report=queued).update(
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert requeue_expired() == {"requeued": [str(queued.pk)]}
    queued.refresh_from_db()
    assert queued.status == ReportStatus.DONE


def test_bad_data_found_late_fails_the_report_with_one_message(alice, version, tmp_path):
    # The first rows are fine; a later row has a label the engine refuses.
    good = "two_year_recid,score_text,race\n" + "1,High,A\n0,Low,B\n" * 90_000
    path = tmp_path / "late.csv"
    path.write_text(good + "maybe,Low,A\n")
    response = client_for(alice).post(
        "/api/v1/reports/", {**COMPAS_FIELDS, "evaluation": upload(path)}, format="multipart"
    )
    assert response.status_code == 202, response.json()
    report = Report.objects.get(pk=response.json()["id"])
    assert jobs.report_run(str(report.pk)) == "failed"
    report.refresh_from_db()
    assert report.status == ReportStatus.FAILED
    assert "two_year_recid" in report.error and "\n" not in report.error
    failed = json.loads(AuditRecord.objects.get(action="report.failed").body)
    assert failed["data"]["error"] == report.error and failed["data"]["code"] == "invalid"
    detail = client_for(alice).get(f"/api/v1/reports/{report.pk}").json()
    assert detail["status"] == "failed"
    assert detail["error"] == {"code": "invalid", "message": report.error}
    assert client_for(alice).get(f"/api/v1/reports/{report.pk}/pdf").status_code == 409

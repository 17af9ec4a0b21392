"""Report jobs on real Celery workers: ``celery -A governance worker --queues=reports`` takes
``run_report`` from the Redis broker (database 8, under this test process's key prefix) and
completes the report;
a worker killed in the middle of a report loses its lease and a second worker takes the job
over and completes it exactly once.

The report is requested through the API (``POST /api/v1/reports/``) by a helper process, this
module run as ``python -m tests.reports.test_report_worker``, with the broker configured so
the service's after-commit ``run_report`` send goes to Redis (never eager); the same helper
reads the report, its job and its audit records back. On file SQLite the helper and the
workers share a database migrated by ``manage.py migrate``; on PostgreSQL, the test database.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import broker_env, broker_transport_options, delete_broker_keys

REPO = Path(__file__).resolve().parents[2]
REDIS_HOST, REDIS_PORT, REDIS_DB = "127.0.0.1", 6379, 8
BROKER_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
WAIT_SECONDS = 120  # a hang detector: a busy 2-core machine starts a worker slowly
# A short lease for the worker that is killed: the takeover need not wait long.
SHORT_LEASE = 3
# Imported into worker A only: it stops the job at WARDEN_TEST_PAUSE_AT % until killed.
PAUSE_MODULE = "tests.reports.worker_pause"
COMPAS = REPO / "data" / "compas-scores-two-years.csv"
COMPAS_FIELDS = {
    "kind": "fairness",
    "model": "recidivism",
    "version": 1,
    "label": "two_year_recid",
    "prediction": "score_text",
    "prediction_positive": "Medium,High",
    "favorable_label": "Low",
    "sensitive": "race",
}


class Target:
    """A database the workers and the helper processes share, with the upload and PDF
    directories every one of them is given."""

    def __init__(self, url: str, directory: Path) -> None:
        self.url = url
        self.directory = directory
        self.uploads = directory / "inputs"
        self.pdfs = directory / "pdfs"
        self.uploads.mkdir()
        self.pdfs.mkdir()

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_ENV": "test",
            "DJANGO_SETTINGS_MODULE": "governance.settings.test",
            "DATABASE_URL": self.url,
            "PYTHONPATH": str(REPO),
            "CELERY_BROKER_URL": BROKER_URL,
            **broker_env(),
            "REPORTS_UPLOAD_DIR": str(self.uploads),
            "REPORTS_DIR": str(self.pdfs),
            "ALLOWED_HOSTS": "testserver",
        }

    # The module run as the helper process (its ``main``).
    helper_module = "tests.reports.test_report_worker"

    def run(self, *args: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", self.helper_module, *args],
            cwd=REPO,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    def request(self) -> str:
        """A fairness report on the first 600 rows of the COMPAS file, its task sent to the
        broker by the service."""
        small = self.directory / "compas-small.csv"
        with COMPAS.open() as source, small.open("w") as target:
            for _, line in zip(range(601), source, strict=False):
                target.write(line)
        return str(self.run("request", str(small))["id"])

    def state(self, report_id: str) -> dict[str, Any]:
        return self.run("state", report_id)


class Worker:
    """``celery -A governance worker`` on the ``reports`` queue only, one process (the solo
    pool runs the task in this very process: its pid is the one in the lease and the pause
    marker)."""

    def __init__(
        self,
        target: Target,
        name: str,
        queues: str = "reports",
        include: str | None = None,
        **extra: str,
    ) -> None:
        self.log = target.directory / f"worker-{name}.log"
        with self.log.open("w") as output:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "governance",
                    "worker",
                    f"--queues={queues}",
                    "--pool=solo",
                    "--concurrency=1",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "--loglevel=INFO",
                    f"--hostname=reports-{name}-{os.getpid()}@%h",
                    *([f"--include={include}"] if include else []),
                ],
                cwd=REPO,
                env={**target.env(), **extra},
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]

    def alive(self) -> None:
        assert self.process.poll() is None, f"the worker exited:\n{self.output()}"

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # warm shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)


def wait_until(what: str, check: Callable[[], Any], worker: Worker) -> Any:
    """The first true value of ``check``, within WAIT_SECONDS while ``worker`` lives."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        value = check()
        if value:
            return value
        worker.alive()
        assert time.monotonic() < deadline, f"no {what} after {WAIT_SECONDS} s:\n" + (
            worker.output()
        )
        time.sleep(0.3)


def send(task: str) -> None:
    """Send ``task`` by name through the broker, routed by the project's ``CELERY_TASK_ROUTES``
    (no queue named here): a misrouted task never reaches the worker."""
    from celery import Celery
    from django.conf import settings

    producer = Celery("warden-test-producer", broker=BROKER_URL, set_as_current=False)
    producer.conf.task_routes = settings.CELERY_TASK_ROUTES
    producer.conf.broker_transport_options = broker_transport_options()
    try:
        producer.send_task(task)
    finally:
        producer.close()


def done_state(target: Target, report_id: str, worker: Worker) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        state = target.state(report_id)
        return state if state["status"] in ("done", "failed") else None

    state: dict[str, Any] = wait_until(f"finished report {report_id}", finished, worker)
    assert state["status"] == "done", f"{state}\n{worker.output()}"
    return state


def records(state: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [r["data"] for r in state["records"] if r["action"] == action]


def assert_pdf_on_record(target: Target, state: dict[str, Any]) -> None:
    (completed,) = records(state, "report.completed")
    pdf = target.pdfs / state["pdf_path"]
    assert pdf.is_file()
    digest = hashlib.sha256(pdf.read_bytes()).hexdigest()
    assert digest == completed["pdf_sha256"] == state["pdf_sha256"]
    assert pdf.read_bytes().startswith(b"%PDF")
    assert state["chain_ok"], state["chain_findings"]


if __name__ != "__main__":
    from tests.support import need, port_open, shared_database_url

    # Transactional: on PostgreSQL the workers' commits are visible to the helpers, and the
    # flush afterwards (past the triggers, see tests/conftest.py) cleans up.
    pytestmark = [
        pytest.mark.django_db(transaction=True),
        pytest.mark.slow,
        pytest.mark.redis,
    ]

    @pytest.fixture(params=["sqlite-file", "postgres"])
    def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
        need(
            port_open(REDIS_HOST, REDIS_PORT),
            f"Redis on {REDIS_HOST}:{REDIS_PORT}",
            "start redis-server (the Celery broker of the report worker test)",
        )
        url = shared_database_url(request.param, tmp_path)
        delete_broker_keys(BROKER_URL)  # no message left over from an earlier test
        try:
            yield Target(url, tmp_path)
        finally:
            delete_broker_keys(BROKER_URL)

    @pytest.fixture
    def workers(target: Target) -> Iterator[Callable[..., Worker]]:
        """Starts workers; every one is stopped (or killed) when the test ends."""
        started: list[Worker] = []

        def start(name: str, include: str | None = None, **extra: str) -> Worker:
            worker = Worker(target, name, include=include, **extra)
            started.append(worker)
            return worker

        try:
            yield start
        finally:
            for worker in started:
                worker.stop()

    def test_a_requested_report_is_completed_by_a_real_worker(
        target: Target, workers: Callable[..., Worker]
    ) -> None:
        """The request's after-commit task reaches the worker through Redis: the report ends
        done, once, and the PDF on disk is the one whose SHA-256 the log records."""
        worker = workers("one")
        report_id = target.request()
        state = done_state(target, report_id, worker)
        assert [r["action"] for r in state["records"]] == [
            "report.requested",
            "report.started",
            "report.completed",
        ]
        (started,) = records(state, "report.started")
        assert started["attempt"] == 1 and started["took_over"] is False
        assert started["worker"].split(":")[1] == str(worker.pid)
        assert state["attempts"] == 1 and state["job"]["finished"] is True
        assert_pdf_on_record(target, state)

    def test_a_worker_killed_mid_report_is_taken_over_and_the_report_completes_once(
        target: Target, workers: Callable[..., Worker]
    ) -> None:
        """Worker A stops at 50 % with a 3 s lease and is SIGKILLed; once the lease ran out,
        ``requeue_expired`` on worker B sends the job again, B takes it over (attempt 2,
        ``took_over``) and completes it: one ``report.completed``, its PDF on disk."""
        first = workers(
            "a",
            include=PAUSE_MODULE,
            WARDEN_TEST_PAUSE_AT="50",
            REPORTS_LEASE_SECONDS=str(SHORT_LEASE),
        )
        report_id = target.request()
        marker = target.uploads / f"paused-{first.pid}"
        wait_until(marker.name, marker.exists, first)
        paused = time.monotonic()
        state = target.state(report_id)
        assert state["status"] == "running" and state["job"]["progress"] == 50
        first.kill()

        second = workers("b")
        # The lease (3 s from A's last heartbeat, before the marker) has run out.
        time.sleep(max(0.0, SHORT_LEASE + 1 - (time.monotonic() - paused)))
        send("governance.reports.tasks.requeue_expired")
        state = done_state(target, report_id, second)

        assert [r["action"] for r in state["records"]] == [
            "report.requested",
            "report.started",
            "report.started",
            "report.completed",
        ]
        one, two = records(state, "report.started")
        assert (one["attempt"], one["took_over"]) == (1, False)
        assert (two["attempt"], two["took_over"]) == (2, True)
        assert one["worker"].split(":")[1] == str(first.pid)
        assert two["worker"].split(":")[1] == str(second.pid)
        assert state["attempts"] == 2
        assert state["job"]["worker"] == two["worker"] and state["job"]["finished"] is True
        assert_pdf_on_record(target, state)


def _request(csv: str) -> dict[str, Any]:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import transaction

    from governance.accounts.roles import Role, sync_role_permissions
    from registry.datafiles import file_digest
    from registry.services import DatasetRef
    from tests import factories
    from tests.conftest import client_for, make_person

    sync_role_permissions()
    from django.contrib.auth.models import Group

    team = Group.objects.get_or_create(name="credit-risk")[0]
    alice = make_person("alice", Role.DATA_SCIENTIST, team=team, full_name="Alice Archer")
    model = factories.registered_model(
        alice, name="recidivism", risk_tier="high", team=team, sensitive_attributes=["race"]
    )
    compas = factories.dataset(alice, name="compas")
    factories.dataset_version(
        alice, compas, content_digest=file_digest(COMPAS), row_count=7214,
        source_uri=str(COMPAS), schema={"race": "string"},
    )  # fmt: skip
    factories.model_version(alice, model, datasets=[DatasetRef("compas", 1, "validation")])
    path = Path(csv)
    upload = SimpleUploadedFile(path.name, path.read_bytes(), content_type="text/csv")
    assert transaction.get_autocommit()  # the service's on_commit sends the task at once
    response = client_for(alice).post(
        "/api/v1/reports/", {**COMPAS_FIELDS, "evaluation": upload}, format="multipart"
    )
    assert response.status_code == 202, response.content
    return {"id": response.json()["id"]}


def _state(report_id: str) -> dict[str, Any]:
    from audit.models import AuditRecord
    from audit.verification import verify_log
    from governance.reports.models import Report, ReportJob

    report = Report.objects.get(pk=report_id)
    job = ReportJob.objects.get(report=report)
    chain = verify_log()
    return {
        "status": str(report.status),
        "attempts": report.attempts,
        "pdf_path": report.pdf_path,
        "pdf_sha256": report.pdf_sha256,
        "job": {"worker": job.worker, "progress": job.progress, "finished": job.finished},
        "records": [
            {"action": r.action, "data": json.loads(r.body)["data"]}
            for r in AuditRecord.objects.filter(object_id=report_id).order_by("seq")
        ],
        "chain_ok": chain.ok,
        "chain_findings": [str(f) for f in chain.findings],
    }


def main(argv: list[str]) -> None:
    import django

    django.setup()
    command, argument = argv
    result = _request(argument) if command == "request" else _state(argument)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])

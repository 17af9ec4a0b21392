"""Redis unavailable: Warden's own Redis (a ``redis-server`` this test starts on a port of its
own) is both the shared cache (login and API throttling) and the Celery broker. While it is
down, the gate answers and records its checks, reads answer, a person signs in, and writes
that start a job (a report request, a webhook delivery of a denied gate check) commit and
answer as usual: the job's row is the truth, the message that could not be sent is logged.
Once Redis is back, the periodic sweeps (what Celery beat sends) hand the queued work to a
real worker: the report completes once and the webhook reaches its receiver once.

The requests are made by a helper process, this module run as
``python -m tests.test_redis_unavailable``, through Django's test client with the cache and
the broker configured by environment as in production (never eager).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reports.test_report_worker import COMPAS, WAIT_SECONDS, Target, Worker
from tests.support import broker_transport_options

REPO = Path(__file__).resolve().parents[1]
MODEL = "credit-score"


class Redis:
    """A ``redis-server`` of this test, without persistence, in ``directory``."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from tests.support import port_open

        binary = shutil.which("redis-server")
        assert binary is not None
        self.process = subprocess.Popen(
            [
                *(binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            assert self.process.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)  # as a crash: no goodbye to clients
            self.process.wait(timeout=10)
        self.process = None


class DownTarget(Target):
    """The report worker test's shared database and directories, with this test's Redis as
    cache and broker."""

    helper_module = "tests.test_redis_unavailable"

    def __init__(self, url: str, directory: Path, redis: Redis) -> None:
        super().__init__(url, directory)
        self.redis = redis

    @property
    def broker_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis.port}/1"

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "CELERY_BROKER_URL": self.broker_url,
            "CACHE_URL": f"redis://127.0.0.1:{self.redis.port}/0",
            # A queued report is resent by the sweep once it waited this long (default 300).
            "REPORTS_LEASE_SECONDS": "1",
        }

    def send(self, task: str) -> None:
        """``task`` by name through the broker, as Celery beat sends it."""
        from celery import Celery
        from django.conf import settings

        producer = Celery("warden-test-beat", broker=self.broker_url, set_as_current=False)
        producer.conf.task_routes = settings.CELERY_TASK_ROUTES
        # The worker reads the keys under this process's prefix (Target.env).
        producer.conf.broker_transport_options = broker_transport_options()
        try:
            producer.send_task(task)
        finally:
            producer.close()


if __name__ != "__main__":
    from tests.approvals.conftest import seeded_defaults  # noqa: F401 - autouse: environments
    from tests.support import need, shared_database_url
    from tests.webhooks.conftest import Receiver

    pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.redis]

    @pytest.fixture(params=["sqlite-file", "postgres"])
    def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DownTarget]:
        need(
            shutil.which("redis-server") is not None,
            "the redis-server program",
            "install redis-server (the test starts a Redis of its own and stops it)",
        )
        url = shared_database_url(request.param, tmp_path)
        from tests.audit.test_crashes import _free_port

        redis = Redis(tmp_path, _free_port())
        redis.start()
        try:
            yield DownTarget(url, tmp_path, redis)
        finally:
            redis.stop()

    def test_with_redis_down_the_gate_reads_and_sign_in_work_and_queued_jobs_resume(
        target: DownTarget,
    ) -> None:
        with Receiver() as receiver:
            cast = target.run("seed", receiver.url)
            target.redis.stop()

            small = target.directory / "compas-small.csv"
            with COMPAS.open() as source, small.open("w") as rows:
                for _, line in zip(range(301), source, strict=False):
                    rows.write(line)
            down = target.run("down", cast["key"], str(small))

            # Every request answered as with Redis up, at once.
            assert down["statuses"] == {
                "gate": 200,
                "gate_status": 200,
                "models": 200,
                "model": 200,
                "register": 201,
                "sign_in": 302,
                "report": 202,
            }, down
            assert down["gate"]["allowed"] is False and down["gate"]["recorded"] is True
            # The jobs are on record, waiting: a report queued, a delivery pending.
            assert down["report"]["status"] == "queued"
            assert down["delivery"] == {"status": "pending", "attempts": 0}
            # The operator is told: each message not sent, and the cache at most once per use.
            assert down["warnings"]["broker"] == 2  # the delivery and the report
            assert 1 <= down["warnings"]["cache"] <= 2  # login and API throttling

            target.redis.start()
            worker = Worker(target, "resumed", queues="reports,celery")
            try:
                target.send("governance.reports.tasks.requeue_expired")
                target.send("governance.webhooks.tasks.sweep")

                state = target.run("wait", down["report"]["id"])
            finally:
                worker.stop()
            assert state["report"] == "done", (state, worker.output())
            assert state["report_records"] == [
                "report.requested",
                "report.started",
                "report.completed",
            ]
            assert state["delivery"] == {"status": "succeeded", "attempts": 1}
            (received,) = receiver.requests
            assert json.loads(received.body)["type"] == "gate.denied"
            assert state["chain_ok"], state["chain_findings"]


def _seed(receiver_url: str) -> dict[str, Any]:
    from django.contrib.auth.models import Group

    from core.accounts.callers import Caller
    from core.roles import Role
    from governance.accounts.roles import sync_role_permissions
    from governance.accounts.services import api_key_create, user_create
    from governance.webhooks import services as webhooks
    from tests import factories
    from tests.conftest import make_person

    sync_role_permissions()
    team = Group.objects.get_or_create(name="credit-risk")[0]
    alice = make_person("alice", Role.DATA_SCIENTIST, team=team, full_name="Alice Archer")
    rita = make_person("rita", Role.RISK_OFFICER, full_name="Rita Reyes")
    admin = make_person("root", Role.ADMIN, is_staff=True, is_superuser=True)
    model = factories.registered_model(alice, name=MODEL, risk_tier="high", team=team)
    factories.model_version(alice, model, artifact_digest=factories.digest("credit v1"))
    ci = user_create(caller=None, username="ci", kind="service", groups=[team], reason="test cast")
    key, _ = api_key_create(
        caller=Caller(user=admin, auth="cli"),
        user=ci,
        name="ci",
        scopes=["gate:read", "registry:write"],
    )
    webhooks.subscription_create(
        caller=Caller(user=rita), url=f"{receiver_url}/hook", events=["gate.denied"]
    )
    return {"key": key}


class _Warnings:
    """Counts the warnings that say the broker or the shared cache does not answer."""

    def __init__(self) -> None:
        import logging

        self.counts = {"broker": 0, "cache": 0}
        counts = self.counts

        class Count(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                message = record.getMessage()
                if "broker does not answer" in message:
                    counts["broker"] += 1
                if "shared cache does not answer" in message:
                    counts["cache"] += 1

        logging.getLogger().addHandler(Count(level=logging.WARNING))


def _down(key: str, csv: str) -> dict[str, Any]:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    from audit.models import AuditRecord
    from core.accounts.models import User
    from governance.reports.models import Report
    from governance.webhooks.models import WebhookDelivery
    from registry.models import ModelVersion
    from tests import factories
    from tests.conftest import PASSWORD, client_for, client_with_key

    warnings = _Warnings()
    version = ModelVersion.objects.get(model__name=MODEL, version=1)
    query = {
        "model": MODEL,
        "version": 1,
        "environment": "prod",
        "digest": version.artifact_digest,
    }
    ci = client_with_key(key)
    alice = User.objects.get(username="alice")
    upload = SimpleUploadedFile("compas.csv", Path(csv).read_bytes(), content_type="text/csv")
    requests: dict[str, Any] = {
        "gate": lambda: ci.get("/api/v1/gate", query),
        "gate_status": lambda: ci.get("/api/v1/gate/status", query),
        "models": lambda: ci.get("/api/v1/models/"),
        "model": lambda: ci.get(f"/api/v1/models/{MODEL}/"),
        "register": lambda: ci.post(
            f"/api/v1/models/{MODEL}/versions/",
            {
                "artifact_uri": "s3://models/credit/2.pkl",
                "artifact_digest": factories.digest(),
                "author": "alice",
            },
            format="json",
        ),
        "sign_in": lambda: Client().post(
            "/accounts/login/", {"username": "alice", "password": PASSWORD}
        ),
        "report": lambda: client_for(alice).post(
            "/api/v1/reports/",
            {
                "kind": "fairness",
                "model": MODEL,
                "version": 1,
                "label": "two_year_recid",
                "prediction": "score_text",
                "prediction_positive": "Medium,High",
                "favorable_label": "Low",
                "sensitive": "race",
                "evaluation": upload,
            },
            format="multipart",
        ),
    }
    ci.get("/api/v1/models/")  # the first request of a process loads the URLconf: not timed
    statuses: dict[str, int] = {}
    seconds: dict[str, float] = {}
    answers: dict[str, Any] = {}
    for name, call in requests.items():
        started = time.monotonic()
        response = call()
        seconds[name] = round(time.monotonic() - started, 3)
        statuses[name] = response.status_code
        if response.get("Content-Type", "").startswith("application/json"):
            answers[name] = response.json()
            if response.status_code >= 400:
                answers.setdefault("errors", {})[name] = answers[name]
    gate_records = AuditRecord.objects.filter(action="gate.checked").count()
    report = Report.objects.get(pk=answers["report"]["id"])
    delivery = WebhookDelivery.objects.get(event_type="gate.denied")
    return {
        "statuses": statuses,
        "seconds": seconds,
        "gate": {"allowed": answers["gate"]["allowed"], "recorded": gate_records == 1},
        "report": {"id": str(report.pk), "status": str(report.status)},
        "delivery": {"status": str(delivery.status), "attempts": delivery.attempts},
        "warnings": warnings.counts,
        "errors": answers.get("errors", {}),
    }


def _state(report_id: str) -> dict[str, Any]:
    from audit.models import AuditRecord
    from audit.verification import verify_log
    from governance.reports.models import Report
    from governance.webhooks.models import WebhookDelivery

    delivery = WebhookDelivery.objects.get(event_type="gate.denied")
    chain = verify_log()
    return {
        "report": str(Report.objects.get(pk=report_id).status),
        "report_records": [
            r.action for r in AuditRecord.objects.filter(object_id=report_id).order_by("seq")
        ],
        "delivery": {"status": str(delivery.status), "attempts": delivery.attempts},
        "chain_ok": chain.ok,
        "chain_findings": [str(f) for f in chain.findings],
    }


def _wait(report_id: str) -> dict[str, Any]:
    """``_state`` once the report finished and the delivery was attempted, or after
    WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        state = _state(report_id)
        finished = state["report"] in ("done", "failed") and state["delivery"]["attempts"]
        if finished or time.monotonic() > deadline:
            return state
        time.sleep(0.3)


def main(argv: list[str]) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings.test")
    django.setup()
    command, *args = argv
    result = {"seed": _seed, "down": _down, "wait": _wait}[command](*args)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])

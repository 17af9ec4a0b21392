"""The checkpoint task on a real Celery worker (AUDIT_SPEC.md section 5): a
``celery -A governance worker`` process that serves only the ``checkpoints`` queue, with the
signing key file and the publish directory given to it alone, takes
``audit.tasks.checkpoint_if_due`` from the Redis broker, signs the log and publishes the note.

The test process only sends the task (by name, routed by the project's ``CELERY_TASK_ROUTES``)
and reads the result back; the records are appended and read by ``tests/audit/checkpointers.py``
processes, on a file-based SQLite database or on PostgreSQL.
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
from django.conf import settings

from audit import keys, merkle
from audit.notes import open_checkpoint
from audit.tasks import checkpoint_if_due
from tests.support import (
    broker_env,
    broker_transport_options,
    current_database_url,
    delete_broker_keys,
    migrated_sqlite_file,
    need,
    on_postgres,
    port_open,
)

# Transactional: on PostgreSQL the worker's commits must be visible to the test, and the flush
# afterwards (past the triggers, see conftest) cleans up.
pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parents[2]
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# Not database 0, and the keys under this test process's prefix: the broker of this test only.
BROKER_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/7"
WAIT_SECONDS = 30


class Target:
    """A database the worker and the helper processes share, a signing key file (0600) and a
    publish directory that only the worker is given."""

    def __init__(self, url: str, directory: Path) -> None:
        self.url = url
        self.directory = directory
        self.key_file = directory / "signing.key"
        self.published = directory / "published"
        keys.generate_key_file(self.key_file, "warden.test")
        self.signer = keys.read_signer_file(self.key_file)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_ENV": "test",
            "DJANGO_SETTINGS_MODULE": "governance.settings.test",
            "DATABASE_URL": self.url,
            "PYTHONPATH": str(REPO),
            "AUDIT_SIGNING_KEY_FILE": str(self.key_file),
            "AUDIT_VERIFICATION_KEYS": "",
            "AUDIT_CHECKPOINT_PUBLISH_DIR": str(self.published),
        }

    def run(self, *args: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "tests.audit.checkpointers", *args],
            cwd=REPO,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file database migrated once by ``manage.py migrate``; tests copy it."""
    path = tmp_path_factory.mktemp("worker-sqlite") / "template.sqlite3"
    return migrated_sqlite_file(path)


@pytest.fixture(params=["sqlite-file", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    if request.param == "postgres":
        if not on_postgres():
            pytest.skip("the PostgreSQL worker runs when the suite runs on PostgreSQL")
        return Target(current_database_url(), tmp_path)
    if on_postgres():
        pytest.skip("the file-SQLite worker runs in the SQLite pass of the suite")
    path = tmp_path / "audit.sqlite3"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    return Target(f"sqlite:///{path}", tmp_path)


class Worker:
    """``celery -A governance worker`` on the ``checkpoints`` queue only, one process."""

    def __init__(self, target: Target) -> None:
        self.log = target.directory / "worker.log"
        with self.log.open("w") as output:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "governance",
                    "worker",
                    "--queues=checkpoints",
                    "--pool=solo",
                    "--concurrency=1",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "--loglevel=INFO",
                    f"--hostname=checkpointer-test-{os.getpid()}@%h",
                ],
                cwd=REPO,
                env={
                    **target.env(),
                    "CELERY_BROKER_URL": BROKER_URL,
                    **broker_env(),
                    # Due as soon as the log grew (the first checkpoint is due anyway).
                    "AUDIT_CHECKPOINT_INTERVAL_SECONDS": "0",
                },
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]

    def wait_for(self, path: Path) -> bytes:
        """The bytes of ``path`` once the worker has written it."""
        deadline = time.monotonic() + WAIT_SECONDS
        while not path.exists():
            assert self.process.poll() is None, f"the worker exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"no {path.name} after {WAIT_SECONDS} s:\n" + (
                self.output()
            )
            time.sleep(0.1)
        return path.read_bytes()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # warm shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)


@pytest.fixture
def worker(target: Target) -> Iterator[Worker]:
    need(
        port_open(REDIS_HOST, REDIS_PORT),
        f"Redis on {REDIS_HOST}:{REDIS_PORT}",
        "start redis-server (the Celery broker of the checkpoint worker test)",
    )
    started = Worker(target)
    try:
        yield started
    finally:
        started.stop()
        delete_broker_keys(BROKER_URL)


def send_checkpoint_task() -> None:
    """Send ``checkpoint_if_due`` by name through the broker, routed by the project's
    ``CELERY_TASK_ROUTES`` (no queue named here): a misrouted task never reaches the worker."""
    from celery import Celery

    producer = Celery("warden-test-producer", broker=BROKER_URL, set_as_current=False)
    producer.conf.task_routes = settings.CELERY_TASK_ROUTES
    producer.conf.broker_transport_options = broker_transport_options()
    try:
        producer.send_task(checkpoint_if_due.name)
    finally:
        producer.close()


def signed(target: Target, worker: Worker, size: int) -> tuple[bytes, dict[str, Any]]:
    """The note of size ``size`` once the worker has published it and committed its row (it
    publishes before its transaction commits), and the report that shows the row."""
    note = worker.wait_for(target.published / f"{size}.note")
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        report = target.run("report")
        if size in [row["size"] for row in report["checkpoints"]]:
            return note, report
        assert worker.process.poll() is None, f"the worker exited:\n{worker.output()}"
        assert time.monotonic() < deadline, f"no checkpoint row of size {size}:\n{worker.output()}"
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.redis
def test_the_checkpoint_task_signs_and_publishes_on_a_real_worker(
    target: Target, worker: Worker
) -> None:
    """Five records, the task, then three more and the task again: the worker signs a
    checkpoint at size 5 and one at size 8. Each is stored and published byte for byte, opens
    with the key's public half alone, names the log's origin and its size, and its root is the
    Merkle root of the stored leaves up to that size; the second is consistent with the first."""
    verifier = target.signer.verifier()
    target.run("append", "5")
    send_checkpoint_task()
    first, _ = signed(target, worker, 5)

    target.run("append", "3")
    send_checkpoint_task()
    second, report = signed(target, worker, 8)

    leaves = [bytes.fromhex(leaf) for leaf in report["leaves"]]
    assert len(leaves) == 8
    assert [(row["size"], row["note"].encode()) for row in report["checkpoints"]] == [
        (5, first),
        (8, second),
    ]
    assert report["published"]["latest.note"].encode() == second
    for row, note in zip(report["checkpoints"], (first, second), strict=True):
        size = row["size"]
        opened, _ = open_checkpoint(note, [verifier])
        root = merkle.root(leaves[:size])
        assert (opened.origin, opened.size, opened.root) == (settings.AUDIT_LOG_ORIGIN, size, root)
        assert row["root"] == root.hex()
        assert row["key_names"] == ["warden.test"]
    proof = merkle.consistency_proof(leaves, 5, 8)
    assert merkle.verify_consistency(5, 8, merkle.root(leaves[:5]), merkle.root(leaves), proof)

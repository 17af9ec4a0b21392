"""The backup and restore drill of the README, run as an operator runs it: PostgreSQL's own
``pg_dump`` and ``pg_restore``, then ``manage.py audit_verify`` and ``manage.py
audit_checkpoint`` against the checkpoint copy held outside the database.

- the latest backup restored verifies, and the checkpointer accepts it;
- an older backup restored is caught as a truncation by the held checkpoint, although the
  restored log verifies in itself;
- that older copy, once it takes new appends past the held size, is caught as a fork.

Every database is made for the test on the shared server (``createdb``) and dropped after;
nothing here stops a server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import need, port_open

REPO = Path(__file__).resolve().parents[2]
HOST, PORT = "127.0.0.1", 5432
ALARM_EXIT = 2

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.database_free]


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}")):
            found = str(candidate)
    need(found is not None, f"PostgreSQL's {name}", "apt-get install postgresql-client")
    return str(found)


class Drill:
    """One operator's shell: a signing key and the checkpointer's published copy in a
    directory of its own, and the databases it made."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.published = root / "published"
        self.key = root / "audit-signing.key"
        self.databases: list[str] = []

    def url(self, database: str) -> str:
        return f"postgres://postgres@{HOST}:{PORT}/{database}"

    def createdb(self) -> str:
        name = f"warden_drill_{uuid.uuid4().hex[:10]}"
        self.pg("createdb", name)
        self.databases.append(name)
        return name

    def pg(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [_pg_tool(tool), "-h", HOST, "-p", str(PORT), "-U", "postgres", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{tool} {args} failed:\n{done.stdout}\n{done.stderr}"
        return done

    def env(self, database: str) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_ENV": "test",
            "DJANGO_SETTINGS_MODULE": "governance.settings.test",
            "DATABASE_URL": self.url(database),
            "AUDIT_SIGNING_KEY_FILE": str(self.key),
            "AUDIT_CHECKPOINT_PUBLISH_DIR": str(self.published),
            "PYTHONPATH": str(REPO),
        }

    def steps(self, database: str, *steps: str) -> list[dict[str, Any]]:
        """Run ``steps`` (``tests/audit/drill.py``) on ``database`` in one process."""
        done = subprocess.run(
            [sys.executable, "-m", "tests.audit.drill", *steps],
            cwd=REPO,
            env=self.env(database),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"{steps} failed:\n{done.stdout}\n{done.stderr}"
        results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        assert [result["step"] for result in results] == list(steps), done.stdout
        return results

    def dump(self, database: str, name: str) -> Path:
        path = self.root / f"{name}.dump"
        self.pg("pg_dump", "--format=custom", f"--file={path}", database)
        return path

    def restore(self, dump: Path) -> str:
        database = self.createdb()
        self.pg("pg_restore", "--no-owner", "--exit-on-error", f"--dbname={database}", str(dump))
        return database


@pytest.fixture
def drill(tmp_path: Path) -> Iterator[Drill]:
    need(
        port_open(HOST, PORT),
        f"PostgreSQL on {HOST}:{PORT}",
        "start the server (pg_ctlcluster <version> main start)",
    )
    operator = Drill(tmp_path)
    try:
        yield operator
    finally:
        for database in operator.databases:
            subprocess.run(
                [
                    _pg_tool("dropdb"),
                    "-h",
                    HOST,
                    "-p",
                    str(PORT),
                    "-U",
                    "postgres",
                    "--force",
                    "--if-exists",
                    database,
                ],
                capture_output=True,
                timeout=60,
                check=False,
            )


def _size(checkpoint: dict[str, Any]) -> int:
    assert checkpoint["status"] == 0, checkpoint
    return int(
        next(line for line in checkpoint["stdout"].splitlines() if line.startswith("size "))[5:]
    )


def test_backups_restore_and_verify_and_an_old_copy_that_takes_appends_is_a_fork(
    drill: Drill,
) -> None:
    live = drill.createdb()
    *_, first = drill.steps(live, "migrate", "seed", "register:v1", "checkpoint")
    old_size = _size(first)
    old_backup = drill.dump(live, "nightly-1")

    *_, second = drill.steps(live, "register:v2", "register:v3", "checkpoint")
    held_size = _size(second)
    assert held_size > old_size
    latest_backup = drill.dump(live, "nightly-2")
    assert (drill.published / "latest.note").read_text().splitlines()[1] == str(held_size)

    # The latest backup: intact, and the checkpointer finds it extends what it signed.
    verified, checkpointed = drill.steps(drill.restore(latest_backup), "verify", "checkpoint")
    assert verified["status"] == 0, verified
    assert f"OK: {held_size} records verified" in verified["stdout"]
    assert checkpointed["status"] == 0, checkpointed

    old = drill.restore(old_backup)
    verified, truncated, *_, reverified, forked = drill.steps(
        old,
        "verify",
        "checkpoint",
        # The old copy put back in service takes new writes past the held size.
        "register:v2-after-restore",
        "register:v3-after-restore",
        "register:v4-after-restore",
        "verify",
        "checkpoint",
    )
    # An older backup verifies in itself: the chain alone cannot tell it is old ...
    assert verified["status"] == 0, verified
    assert f"OK: {old_size} records verified" in verified["stdout"]
    # ... the checkpoint held outside the database can.
    assert truncated["status"] == ALARM_EXIT, truncated
    assert "TruncationAlarm" in truncated["stderr"]
    assert f"covers {held_size} records, the log holds {old_size}" in truncated["stderr"]
    # Past the held size the copy is self-consistent again, and a fork.
    assert reverified["status"] == 0, reverified
    assert forked["status"] == ALARM_EXIT, forked
    assert "ForkAlarm" in forked["stderr"]
    assert "does not extend" in forked["stderr"]
    # Nothing was signed for the forked copy: the held copy still ends at the held size.
    assert (drill.published / "latest.note").read_text().splitlines()[1] == str(held_size)

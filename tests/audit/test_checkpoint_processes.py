"""Checkpointers in processes of their own (AUDIT_SPEC.md section 8): two or more signing at
once, checkpointers racing writers, and a checkpointer killed after signing. Each process has
its own database connection, on a file-based SQLite database and on PostgreSQL.

The processes are ``tests/audit/checkpointers.py``, started as a program.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from audit import keys, merkle
from audit.notes import Checkpoint as CheckpointText
from audit.notes import open_checkpoint, sign_checkpoint
from tests.support import current_database_url, migrated_sqlite_file, on_postgres

# Transactional: the processes' commits must be visible to the test, and the flush afterwards
# (past the triggers, see conftest) cleans up.
pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parents[2]


class Target:
    """A database the processes share, a signing key and a publish directory."""

    def __init__(self, url: str, directory: Path) -> None:
        self.url = url
        self.key_file = directory / "signing.key"
        self.published = directory / "published"
        keys.generate_key_file(self.key_file, "warden.test")
        self.signer = keys.read_signer_file(self.key_file)

    def run(self, *args: str, expect: int = 0) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "tests.audit.checkpointers", *args],
            cwd=REPO,
            env={
                **os.environ,
                "DJANGO_ENV": "test",
                "DJANGO_SETTINGS_MODULE": "governance.settings.test",
                "DATABASE_URL": self.url,
                "PYTHONPATH": str(REPO),
                "AUDIT_SIGNING_KEY_FILE": str(self.key_file),
                "AUDIT_VERIFICATION_KEYS": "",
                "AUDIT_CHECKPOINT_PUBLISH_DIR": str(self.published),
            },
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == expect, f"{args}:\n{done.stdout}\n{done.stderr}"
        if expect:
            return {}
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file database migrated once by ``manage.py migrate``; tests copy it."""
    path = tmp_path_factory.mktemp("checkpoint-sqlite") / "template.sqlite3"
    return migrated_sqlite_file(path)


@pytest.fixture(params=["sqlite-file", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "postgres":
        if not on_postgres():
            pytest.skip("PostgreSQL checkpointers run when the suite runs on PostgreSQL")
        yield Target(current_database_url(), tmp_path)
        return
    if on_postgres():
        pytest.skip("file-SQLite checkpointers run in the SQLite pass of the suite")
    path = tmp_path / "audit.sqlite3"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    yield Target(f"sqlite:///{path}", tmp_path)


def check_signed_log(target: Target) -> dict[str, Any]:
    """Every stored checkpoint verifies, commits to the leaves up to its size, extends the one
    before it and is published byte for byte; one root per size. Returns the report."""
    report = target.run("report")
    log = [bytes.fromhex(leaf) for leaf in report["leaves"]]
    verifier = target.signer.verifier()
    previous: tuple[int, bytes] | None = None
    sizes = [row["size"] for row in report["checkpoints"]]
    assert sizes == sorted(set(sizes))
    for row in report["checkpoints"]:
        size, root = row["size"], merkle.root(log[: row["size"]])
        parsed, _ = open_checkpoint(row["note"].encode("utf-8"), [verifier])
        assert (parsed.origin, parsed.size, parsed.root) == (settings.AUDIT_LOG_ORIGIN, size, root)
        assert row["root"] == root.hex()
        assert report["published"][f"{size}.note"] == row["note"]
        if previous is not None:
            proof = merkle.consistency_proof(log, previous[0], size)
            assert merkle.verify_consistency(previous[0], size, previous[1], root, proof)
        previous = (size, root)
    assert set(report["published"]) == {f"{s}.note" for s in sizes} | {"latest.note"}
    assert report["published"]["latest.note"] == report["checkpoints"][-1]["note"]
    return report


@pytest.mark.slow
@pytest.mark.parametrize("checkpointers", [2, 4])
def test_checkpointers_at_once_sign_each_size_once(target: Target, checkpointers: int) -> None:
    rounds = 6
    result = target.run("race", "--checkpointers", str(checkpointers), "--rounds", str(rounds))
    assert result["errors"] == []
    report = check_signed_log(target)
    assert [row["size"] for row in report["checkpoints"]] == list(range(1, rounds + 1))
    for round_ in range(rounds):  # every process saw the same root, one of them signed it
        seen = [results[round_] for results in result["checkpointers"]]
        assert {(r["size"], r["root"]) for r in seen} == {
            (round_ + 1, report["checkpoints"][round_]["root"])
        }
        assert sum(r["created"] for r in seen) == 1


@pytest.mark.slow
def test_checkpointers_racing_writers_sign_only_the_true_roots(target: Target) -> None:
    result = target.run("race", "--checkpointers", "2", "--writers", "4", "--transactions", "100")
    assert result["errors"] == []
    report = check_signed_log(target)
    assert len(report["leaves"]) == 400
    assert report["checkpoints"][-1]["size"] == 400  # signed once more after the writers
    created = [r for results in result["checkpointers"] for r in results if r["created"]]
    assert sorted(r["size"] for r in created) == [row["size"] for row in report["checkpoints"]]


@pytest.mark.slow
def test_a_checkpointer_killed_after_publishing_signs_the_identical_note_again(
    target: Target,
) -> None:
    target.run("checkpoint", "--append", "5", "--kill-after-publish", expect=-9)
    published = (target.published / "5.note").read_text(encoding="utf-8")

    result = target.run("checkpoint")
    # Created now: the killed process's transaction died with it.
    assert (result["created"], result["size"]) == (True, 5)
    report = check_signed_log(target)
    assert [row["note"] for row in report["checkpoints"]] == [published]
    # Ed25519 is deterministic: signing the same checkpoint gives these very bytes.
    log = [bytes.fromhex(leaf) for leaf in report["leaves"]]
    again = sign_checkpoint(
        CheckpointText(settings.AUDIT_LOG_ORIGIN, 5, merkle.root(log)), [target.signer]
    )
    assert again.decode("utf-8") == published


def test_migrating_a_fresh_file_database_protects_every_audit_table(
    request: pytest.FixtureRequest,
) -> None:
    if on_postgres():
        pytest.skip("file-SQLite checks run in the SQLite pass of the suite")
    with sqlite3.connect(request.getfixturevalue("sqlite_template")) as db:
        names = {
            name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        }
    for table in ("audit_auditrecord", "audit_checkpoint", "audit_treenode"):
        assert {f"{table}_no_update", f"{table}_no_delete"} <= names

"""Concurrent writers (AUDIT_SPEC sections 4 and 8): separate processes on separate
connections append at once to a file-based SQLite database and to PostgreSQL; the chain
stays contiguous and verifies, rolled-back appends leave no trace, and writers that bypass
the lock are stopped by the UNIQUE constraints.

The writers are ``tests/audit/writers.py``, started as a program (Django set up once, one
forked process per writer, a barrier to start them together).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from audit.verifier import verify_bodies
from tests.audit.helpers import stored
from tests.support import current_database_url, migrated_sqlite_file, on_postgres

# Transactional: on PostgreSQL the writers' commits must be visible to the test, and the
# flush afterwards (past the triggers, see conftest) cleans up.
pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parents[2]
BACKENDS = ["sqlite-file", "postgres"]


def _env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_ENV": "test",
        "DJANGO_SETTINGS_MODULE": "governance.settings.test",
        "DATABASE_URL": database_url,
        "PYTHONPATH": str(REPO),
    }


def _python(database_url: str, *args: str, timeout: int = 240) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=_env(database_url),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file database migrated once by ``manage.py migrate``; tests copy it."""
    path = tmp_path_factory.mktemp("audit-sqlite") / "template.sqlite3"
    return migrated_sqlite_file(path)


class Target:
    """Where the writers write, and how the test reads the result back."""

    def __init__(self, url: str, read: Callable[[], list[tuple[int, bytes]]]) -> None:
        self.url = url
        self.read = read

    def writers(self, *args: str) -> dict[str, Any]:
        output = _python(self.url, "-m", "tests.audit.writers", *args)
        return dict(json.loads(output.strip().splitlines()[-1]))


def _sqlite_reader(path: Path) -> Callable[[], list[tuple[int, bytes]]]:
    def read() -> list[tuple[int, bytes]]:
        with closing(sqlite3.connect(path)) as db:
            rows = db.execute(
                "SELECT seq, body FROM audit_auditrecord WHERE log = ? ORDER BY seq",
                [settings.AUDIT_LOG_ORIGIN],
            ).fetchall()
        return [(seq, body.encode("utf-8")) for seq, body in rows]

    return read


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "postgres":
        if not on_postgres():
            pytest.skip("PostgreSQL writers run when the suite runs on PostgreSQL (DATABASE_URL)")
        assert not stored(), "the test database should start empty"
        yield Target(current_database_url(), lambda: [(seq, body) for seq, _, _, body in stored()])
        return
    if on_postgres():
        pytest.skip("file-SQLite writers run in the SQLite pass of the suite")
    path = tmp_path / "audit.sqlite3"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    yield Target(f"sqlite:///{path}", _sqlite_reader(path))


def check(result: dict[str, Any], rows: list[tuple[int, bytes]], *, events: int = 1) -> list[Any]:
    """The chain is contiguous from 0, verifies, and holds exactly the committed transactions,
    each as a contiguous run of its events. Returns every record's data (writer, n, part)."""
    assert result["errors"] == []
    assert result["verify"]["ok"] is True, result["verify"]["findings"]
    assert [seq for seq, _ in rows] == list(range(len(rows)))
    assert verify_bodies(settings.AUDIT_LOG_ORIGIN, [body for _, body in rows]).ok
    labels = [json.loads(body)["data"] for _, body in rows]
    committed = {(w["writer"], n) for w in result["writers"] for n in w["committed"]}
    rolled_back = {(w["writer"], n) for w in result["writers"] for n in w["rolled_back"]}
    assert {(d["writer"], d["n"]) for d in labels} == committed
    assert not committed & rolled_back
    assert len(rows) == events * len(committed)
    seqs_of: dict[tuple[int, int], list[int]] = defaultdict(list)
    for seq, data in enumerate(labels):
        seqs_of[data["writer"], data["n"]].append(seq)
        assert data["part"] == seq - seqs_of[data["writer"], data["n"]][0]
    for seqs in seqs_of.values():
        assert seqs == list(range(seqs[0], seqs[0] + events))  # one call, one contiguous run
    for writer in {d["writer"] for d in labels}:
        mine = [d["n"] for d in labels if d["writer"] == writer and d["part"] == 0]
        assert mine == sorted(mine)  # each writer's transactions in the order it committed them
    return labels


@pytest.mark.slow
@pytest.mark.parametrize(("writers", "transactions"), [(2, 200), (8, 200), (32, 50)])
def test_concurrent_writers_make_one_contiguous_verifying_chain(
    target: Target, writers: int, transactions: int
) -> None:
    result = target.writers("--writers", str(writers), "--transactions", str(transactions))
    rows = target.read()
    assert len(rows) == writers * transactions
    check(result, rows)


@pytest.mark.slow
def test_rolled_back_appends_leave_no_record_and_no_gap(target: Target) -> None:
    result = target.writers(
        "--writers", "8", "--transactions", "100", "--rollback", "0.3", "--seed", "7"
    )
    rows = target.read()
    rolled_back = sum(len(w["rolled_back"]) for w in result["writers"])
    assert 160 <= rolled_back <= 320  # about 30 % of 800
    assert len(rows) == 800 - rolled_back
    check(result, rows)


@pytest.mark.slow
def test_events_appended_together_stay_together(target: Target) -> None:
    result = target.writers("--writers", "4", "--transactions", "50", "--events", "3")
    rows = target.read()
    assert len(rows) == 600
    check(result, rows, events=3)


@pytest.mark.slow
def test_writers_that_bypass_the_lock_are_refused_by_the_constraints(target: Target) -> None:
    """Negative control. Each round all 8 unlocked writers read the same tip and insert the
    same seq with the same prev: without UNIQUE(log, seq) and UNIQUE(log, prev) all 8 would
    commit, forking the chain 8 ways every round."""
    rounds = 10
    result = target.writers("--writers", "8", "--transactions", str(rounds), "--unlocked")
    assert result["errors"] == []
    committed = sum(len(w["committed"]) for w in result["writers"])
    refused = sum(w["refused"] for w in result["writers"])
    assert (committed, refused) == (rounds, 7 * rounds)  # one winner a round, no fork
    rows = target.read()
    assert [seq for seq, _ in rows] == list(range(rounds))
    prevs = [json.loads(body)["prev"] for _, body in rows]
    assert len(set(prevs)) == len(prevs)
    assert result["verify"]["ok"] is True, result["verify"]["findings"]
    assert verify_bodies(settings.AUDIT_LOG_ORIGIN, [body for _, body in rows]).ok


@pytest.mark.django_db
def test_the_triggers_exist_after_migrating_a_fresh_file_database(
    request: pytest.FixtureRequest,
) -> None:
    if on_postgres():
        pytest.skip("file-SQLite checks run in the SQLite pass of the suite")
    sqlite_template = request.getfixturevalue("sqlite_template")
    with closing(sqlite3.connect(sqlite_template)) as db:
        names = {
            name
            for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name = 'audit_auditrecord'"
            )
        }
        assert names == {
            "audit_auditrecord_no_update",
            "audit_auditrecord_no_delete",
            "audit_auditrecord_advance_head",
        }
        journal = db.execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"

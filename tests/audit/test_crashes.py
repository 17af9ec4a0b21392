"""Crashes (AUDIT_SPEC.md section 8): a registry write killed between its append and its
commit leaves neither the change nor the record, and PostgreSQL stopped immediately under
concurrent writes and started again keeps every record whose commit it acknowledged while the
writers reconnect and go on. (A checkpointer killed after signing is in
``test_checkpoint_processes.py``.)

The writers are ``tests/audit/crashers.py``, started as a program: real registry services,
each process on its own database connection. The kill test runs on a file-based SQLite
database and on PostgreSQL; the immediate stop runs on a throwaway PostgreSQL cluster that the
test creates with ``initdb`` on a port of its own, never on the shared server.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.audit.crashers import MODEL
from tests.support import current_database_url, migrated_sqlite_file, need, on_postgres

REPO = Path(__file__).resolve().parents[2]


def _env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_ENV": "test",
        "DJANGO_SETTINGS_MODULE": "governance.settings.test",
        "DATABASE_URL": database_url,
        "PYTHONPATH": str(REPO),
    }


def _crashers(*args: str) -> list[str]:
    return [sys.executable, "-m", "tests.audit.crashers", *args]


def _run(database_url: str, *args: str, timeout: int = 240) -> dict[str, Any]:
    done = subprocess.run(
        _crashers(*args),
        cwd=REPO,
        env=_env(database_url),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _migrate(database_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=REPO,
        env=_env(database_url),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, f"migrate failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file database migrated once by ``manage.py migrate``; tests copy it."""
    path = tmp_path_factory.mktemp("crash-sqlite") / "template.sqlite3"
    return migrated_sqlite_file(path)


@pytest.fixture(params=["sqlite-file", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database the writers and the test share, seeded with a model and a dataset."""
    if request.param == "postgres":
        if not on_postgres():
            pytest.skip("PostgreSQL crashes run when the suite runs on PostgreSQL (DATABASE_URL)")
        url = current_database_url()
    else:
        if on_postgres():
            pytest.skip("file-SQLite crashes run in the SQLite pass of the suite")
        path = tmp_path / "crash.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    _run(url, "seed")
    return url


def _wait_for_file(path: Path, process: subprocess.Popen[str], timeout: float) -> None:
    """Until ``path`` has content, as long as ``process`` runs."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size > 0):
        assert process.poll() is None, f"the process ended ({process.returncode}) before {path}"
        assert time.monotonic() < deadline, f"no {path} after {timeout} s"
        time.sleep(0.05)


# Transactional: on PostgreSQL the processes' commits must be visible to the test, and the
# flush afterwards (past the triggers, see conftest) cleans up.
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_write_killed_between_append_and_commit_leaves_neither_the_change_nor_the_record(
    database_url: str, tmp_path: Path
) -> None:
    """The process registers a model version (version row, lineage row, audit record in one
    durable transaction) and is SIGKILLed after ``audit_append`` returned, before COMMIT. Its
    own transaction held the version, the lineage and the record at the next seq; afterwards
    the database is exactly as before (same rows, same records, same head), the log verifies,
    and the same artifact registers again as the same version at that very seq: no gap."""
    _run(database_url, "register", "v1")
    before = _run(database_url, "report")
    assert before["verify"]["ok"] is True, before["verify"]["findings"]
    size, _ = before["head"]
    assert [r["seq"] for r in before["records"]] == list(range(size))

    appended = tmp_path / "appended.json"
    child = subprocess.Popen(
        _crashers("register", "v2", "--pause-at-commit", str(appended)),
        cwd=REPO,
        env=_env(database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_file(appended, child, timeout=120)
    finally:
        child.send_signal(signal.SIGKILL)
        _, stderr = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, stderr
    # What the killed transaction held when it died: the change and its record, uncommitted.
    assert json.loads(appended.read_text()) == {
        "in_transaction": True,
        "seqs": [size],
        "versions": [1, 2],
        "usages": before["usages"] + 1,
    }

    after = _run(database_url, "report")
    assert after == before  # no version, no lineage, no record, the head where it was
    assert after["verify"]["ok"] is True

    # The same artifact is not "already registered": it becomes v2 again, at the next seq.
    assert _run(database_url, "register", "v2") == {"version": 2, "seqs": [size]}
    final = _run(database_url, "report")
    assert final["verify"]["ok"] is True, final["verify"]["findings"]
    assert [r["seq"] for r in final["records"]] == list(range(size + 1))
    assert final["records"][:size] == before["records"]
    assert final["records"][size]["action"] == "model_version.registered"
    assert final["records"][size]["object"]["label"] == f"{MODEL} v2"
    assert final["head"][0] == size + 1
    assert final["versions"] == [[MODEL, 1], [MODEL, 2]]
    assert final["usages"] == before["usages"] + 1


def _postgres_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` (Debian), else the one on PATH."""
    found = sorted(
        (path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")),
        key=lambda bindir: int(bindir.parent.name) if bindir.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port != 5432:
            return port


class Cluster:
    """A PostgreSQL cluster of one test: a data directory in ``root`` and a server on ``port``,
    run as ``owner`` (PostgreSQL refuses to run as root) or as the current user."""

    def __init__(self, bindir: Path, root: Path, owner: pwd.struct_passwd | None) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.owner = owner
        self.port = _free_port()

    def pg(self, program: str, *args: str, timeout: int = 60) -> str:
        as_owner: dict[str, Any] = {}
        if self.owner is not None:
            as_owner = {"user": self.owner.pw_uid, "group": self.owner.pw_gid, "extra_groups": []}
        done = subprocess.run(
            [str(self.bindir / program), *args],
            cwd=self.root,
            env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "LANG": "C"},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **as_owner,
        )
        log = self.root / "server.log"
        server_log = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        assert done.returncode == 0, (
            f"{program} {args}:\n{done.stdout}\n{done.stderr}\n{server_log}"
        )
        return done.stdout

    def init(self) -> None:
        # --no-sync: only an operating-system crash could lose what initdb leaves unsynced.
        options = ["--username=postgres", "--auth=trust", "--encoding=UTF8", "--no-sync"]
        self.pg("initdb", "-D", str(self.data), *options)
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(
                f"port = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n"
                "max_connections = 30\n"
                "shared_buffers = 16MB\n"
                # The durability under test: commits are acknowledged after their WAL is flushed.
                "fsync = on\n"
                "synchronous_commit = on\n"
                "full_page_writes = on\n"
            )

    def start(self) -> None:
        self.pg("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "start")

    def stop(self, mode: str) -> None:
        self.pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def state(self) -> str:
        """``Database cluster state`` of the control file (``shut down``, ``in production``)."""
        for line in self.pg("pg_controldata", "-D", str(self.data)).splitlines():
            if line.startswith("Database cluster state:"):
                return line.split(":", 1)[1].strip()
        raise AssertionError("pg_controldata printed no cluster state")

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A fresh cluster, started; stopped and deleted afterwards whatever happened."""
    if not on_postgres():
        pytest.skip("the throwaway PostgreSQL cluster runs in the PostgreSQL pass of the suite")
    bindir = _postgres_bindir()
    need(
        bindir is not None and (bindir / "pg_ctl").exists(),
        "the PostgreSQL server programs (initdb, pg_ctl, pg_controldata)",
        "install the postgresql package (/usr/lib/postgresql/<version>/bin)",
    )
    assert bindir is not None
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            owner = None
        need(
            owner is not None,
            "a 'postgres' OS user",
            "PostgreSQL refuses to run as root; the postgresql package creates that user",
        )
    root = Path(tempfile.mkdtemp(prefix="warden-crash-pg-"))
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    made = Cluster(bindir, root, owner)
    try:
        made.init()
        made.start()
        yield made
    finally:
        try:
            if made.running:
                made.stop("immediate")
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _acknowledged(acks: Path) -> dict[int, str]:
    """seq -> dataset name of every commit a writer saw acknowledged."""
    acked: dict[int, str] = {}
    for path in sorted(acks.glob("*.acks")):
        for line in path.read_text(encoding="utf-8").splitlines():
            seq, name = line.split(" ")
            assert int(seq) not in acked, f"seq {seq} acknowledged twice"
            acked[int(seq)] = name
    return acked


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_restarted_under_concurrent_writes_keeps_every_acknowledged_record(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Four writers create datasets through the registry service, each logging (fsynced) the
    seq of every record whose COMMIT returned, while ``pg_ctl stop -m immediate`` kills the
    server under them (its control file then says it did not shut down cleanly) and the
    server is started again: crash recovery. The writers meet errors while it is down, then
    reconnect and go on. Afterwards every acknowledged record is there with its dataset, the
    chain verifies across the restart, the head's size is the record count, and besides the
    acknowledged ones at most one commit per writer (the one in flight when the server died)
    made it, always with its dataset."""
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=cluster.port, user="postgres", dbname="postgres", autocommit=True
    ) as admin:
        admin.execute("CREATE DATABASE warden")
        durability = {}
        for name in ("fsync", "synchronous_commit", "full_page_writes"):
            row = admin.execute(f"SHOW {name}").fetchone()
            durability[name] = row[0] if row else None
    assert durability == {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
    url = cluster.url("warden")
    _migrate(url)
    assert _run(url, "report")["records"] == []

    writers = 4
    acks = tmp_path / "acks"
    done = tmp_path / "done"
    load = subprocess.Popen(
        _crashers("load", "--writers", str(writers), "--acks", str(acks), "--until", str(done)),
        cwd=REPO,
        env=_env(url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its forked writers are in its process group
    )
    logs = [acks / f"{writer}.acks" for writer in range(writers)]
    try:
        for log in logs:  # every writer has committed at least once
            _wait_for_file(log, load, timeout=30)
        time.sleep(1.5)
        cluster.stop("immediate")
        # Not "shut down": recovery must replay the WAL.
        assert cluster.state() == "in production"
        before_restart = [_lines(log) for log in logs]
        time.sleep(1.0)  # the writers meet the server gone, and retry
        cluster.start()
        deadline = time.monotonic() + 60
        while any(_lines(log) < n + 5 for log, n in zip(logs, before_restart, strict=True)):
            assert load.poll() is None, load.communicate()[1]
            assert time.monotonic() < deadline, "the writers did not resume after the restart"
            time.sleep(0.1)
        done.touch()
        stdout, stderr = load.communicate(timeout=60)
    finally:
        if load.poll() is None:
            os.killpg(load.pid, signal.SIGKILL)
            load.communicate(timeout=30)
    assert load.returncode == 0, stderr
    outcomes = json.loads(stdout.strip().splitlines()[-1])["writers"]
    # Each writer met the server gone, and each went on writing once it was back.
    assert [o["database_error"] for o in outcomes] == [True] * writers, outcomes
    assert all(o["errors"] >= 1 and o["acked_after_error"] >= 5 for o in outcomes), outcomes
    acked = _acknowledged(acks)
    assert len(acked) == sum(o["acked"] for o in outcomes)

    after = _run(url, "report")
    assert after["verify"]["ok"] is True, after["verify"]["findings"]
    records = after["records"]
    assert [r["seq"] for r in records] == list(range(len(records)))
    assert after["head"][0] == len(records) == after["verify"]["records"]
    created = {r["seq"]: r["object"]["label"] for r in records if r["action"] == "dataset.created"}
    for seq, name in acked.items():
        assert created.get(seq) == name, f"acknowledged seq {seq} ({name}) was lost"
    # Every record but the writers' author (recorded when she was made) is a dataset of the load.
    assert [r["action"] for r in records if r["seq"] not in created] == ["user.created"]
    in_flight = {seq: name for seq, name in created.items() if seq not in acked}
    assert len(in_flight) <= writers, in_flight
    assert after["datasets"] == sorted(created.values())  # each record with its dataset

"""Test helpers shared by the suite: real services, and what to do when one is missing."""

from __future__ import annotations

import ast
import atexit
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

IN_CI = os.environ.get("CI") == "true"


def need(available: bool, what: str, how: str) -> None:
    """Skip locally when a real component is missing; under CI=true that is a failure."""
    if available:
        return
    message = f"{what} is not available: {how}"
    if IN_CI:
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


GOVERNED_TABLES = frozenset(
    {
        "registry_registeredmodel",
        "registry_modelversion",
        "registry_dataset",
        "registry_datasetversion",
        "registry_datasetusage",
        "accounts_apikey",
        # Who holds power: accounts and their flags, roles and teams, permissions.
        "accounts_user",
        "accounts_user_groups",
        "accounts_user_user_permissions",
        "auth_group_permissions",
        "approvals_environment",
        "approvals_signoffpolicy",
        "approvals_deploymentrequest",
        "approvals_signoff",
        "approvals_gatecheck",
        "approvals_deployment",
        "webhooks_webhooksubscription",
        "reports_report",
        "reports_reportinput",
    }
)
AUDIT_TABLE = "audit_auditrecord"
# SQLite adds many-to-many rows with INSERT OR IGNORE; the audit append on PostgreSQL inserts
# its records in a data-modifying CTE (WITH inserted AS (INSERT INTO ...) UPDATE ...).
WRITE = re.compile(
    r'^\s*(?:WITH\s+"?\w+"?\s+AS\s*\(\s*)?'
    r'(INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?',
    re.IGNORECASE,
)
# Logging in and setting one's password touch the users table but grant nothing.
UNGOVERNED_USER_COLUMNS = frozenset({"last_login", "password"})
_SET_COLUMNS = re.compile(r'"(\w+)"\s*=\s*(?:%s|\?)')


def governed_write(sql: str, verb: str, table: str) -> bool:
    """Whether a write statement changes governed state."""
    if table not in GOVERNED_TABLES:
        return False
    if table == "accounts_user" and verb.upper() == "UPDATE":
        assignments = re.split(r"\bWHERE\b", sql, maxsplit=1, flags=re.IGNORECASE)[0]
        columns = set(_SET_COLUMNS.findall(assignments))
        return not columns or not columns <= UNGOVERNED_USER_COLUMNS
    return True


class CompletenessGuard:
    """Execute wrapper: every (sub)transaction that writes a governed table must also append
    an audit record before it commits (AUDIT_SPEC section 4, completeness guard).

    Savepoints delimit units of work inside the test transaction; a unit rolled back to its
    savepoint is forgotten. Violations are collected and reported when the test ends.
    """

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = [{"governed": set(), "audited": False}]
        self.violations: list[str] = []

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        head = sql.lstrip()[:24].upper()
        if head.startswith("SAVEPOINT"):
            self.frames.append({"governed": set(), "audited": False})
        elif head.startswith("ROLLBACK TO SAVEPOINT"):
            self.frames[-1] = {"governed": set(), "audited": False, "rolled_back": True}
        elif head.startswith("RELEASE SAVEPOINT") and len(self.frames) > 1:
            frame = self.frames.pop()
            self._close(frame)
        else:
            match = WRITE.match(sql)
            if match:
                table = match.group(2).lower()
                if governed_write(sql, match.group(1), table):
                    self.frames[-1]["governed"].add(table)
                elif table == AUDIT_TABLE and match.group(1).upper().startswith("INSERT"):
                    self.frames[-1]["audited"] = True
        return execute(sql, params, many, context)

    def _close(self, frame: dict[str, Any]) -> None:
        if frame["governed"] and not frame["audited"]:
            self.violations.append(
                f"a transaction wrote {sorted(frame['governed'])} without an audit record"
            )

    def finish(self) -> list[str]:
        while self.frames:
            self._close(self.frames.pop())
        return self.violations


REPO = Path(__file__).resolve().parent.parent
# What production needs to start; tests drop one at a time or add *_FILE variants.
PROD_ENV = {
    "DJANGO_ENV": "prod",
    "SECRET_KEY": "x" * 20 + "a-long-random-production-secret-key-0123456789",
    "DATABASE_URL": "postgres://warden_app@127.0.0.1:5432/warden",
    "MIGRATION_DATABASE_URL": "postgres://warden_owner@127.0.0.1:5432/warden",
    "ALLOWED_HOSTS": "warden.example.org",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "AUDIT_LOG_ORIGIN": "warden.example.org/prod",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py`` in a fresh process with exactly ``env`` on top of a clean base
    (no inherited Django, Warden or audit settings)."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AUDIT_", "DJANGO_", "WARDEN_")) and k not in PROD_ENV
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def imported_roots(path: Path) -> set[str]:
    """The top-level packages a module imports (relative imports are refused): modules that
    the offline verifier vendors must import the standard library and ``cryptography`` only."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: no relative imports"
            roots.add((node.module or "").split(".")[0])
    return roots


def current_database_url() -> str:
    """The URL of the PostgreSQL database this test runs on, for the processes it starts."""
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


# The one file database ``manage.py migrate`` made in this test session; every caller of
# ``migrated_sqlite_file`` gets a copy of it (migrating costs seconds per process start).
_MIGRATED: list[Path] = []


def migrated_sqlite_file(path: Path) -> Path:
    """A file database at ``path``, migrated by ``manage.py migrate`` in a process of its own
    (the triggers and seeds exactly as a deployment gets them); tests copy it. Migrated once
    per test session, then copied."""
    if not _MIGRATED:
        directory = Path(tempfile.mkdtemp(prefix="warden-migrated-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        template = directory / "migrated.sqlite3"
        done = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=REPO,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "governance.settings.test",
                "DATABASE_URL": f"sqlite:///{template}",
            },
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert done.returncode == 0, f"migrate failed:\n{done.stdout}\n{done.stderr}"
        _MIGRATED.append(template)
    shutil.copyfile(_MIGRATED[0], path)
    return path


def shared_database_url(kind: str, directory: Path) -> str:
    """The database a test shares with the processes it starts: ``postgres``, the test
    database (in the suite's PostgreSQL pass); ``sqlite-file``, a migrated file database in
    ``directory`` (in the SQLite pass). The variant of the other pass is skipped."""
    if kind == "postgres":
        if not on_postgres():
            pytest.skip("the PostgreSQL variant runs in the suite's PostgreSQL pass")
        return current_database_url()
    if on_postgres():
        pytest.skip("the file-SQLite variant runs in the suite's SQLite pass")
    return f"sqlite:///{migrated_sqlite_file(directory / 'shared.sqlite3')}"


# The Redis key prefix of the Celery brokers this test process talks to (the settings read it
# as WARDEN_TEST_BROKER_KEYPREFIX): one per process, so xdist workers, and other runs on the
# same Redis server, each have keys of their own in the broker database.
BROKER_KEYPREFIX = f"warden-test-{os.getpid()}-{secrets.token_hex(4)}:"


def broker_env() -> dict[str, str]:
    """What a worker or helper process needs to use this process's broker keys."""
    return {"WARDEN_TEST_BROKER_KEYPREFIX": BROKER_KEYPREFIX}


def broker_transport_options() -> dict[str, object]:
    """The project's broker transport options with this process's key prefix, for producers."""
    from django.conf import settings

    return {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": BROKER_KEYPREFIX}


def delete_broker_keys(url: str) -> None:
    """Remove this process's keys from the broker database at ``url`` (never the others')."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{BROKER_KEYPREFIX}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()

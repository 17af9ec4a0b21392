"""Test helpers shared by the suite: real services, and what to do when one is missing."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
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
    }
)
AUDIT_TABLE = "audit_auditrecord"
_WRITE = re.compile(r'^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)


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
            match = _WRITE.match(sql)
            if match:
                table = match.group(2).lower()
                if table in GOVERNED_TABLES:
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

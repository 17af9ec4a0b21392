"""The soak benchmark's short run: half a minute of mixed traffic against a really started gunicorn
and Celery worker answers every request as expected, never 5xx, and leaves a log that
verifies. It creates and drops a PostgreSQL database of its own, so it runs once, in the
SQLite pass."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import need, port_open

pytestmark = [pytest.mark.slow, pytest.mark.database_free]

REPO = Path(__file__).resolve().parent.parent
KINDS = (
    "register_model",
    "register_dataset",
    "register_dataset_version",
    "register_version",
    "gate",
    "deployment_report",
    "request_submit",
    "signing_content",
    "sign_api",
    "sign_page",
    "sign_form",
    "report_request",
    "report_status",
    "login_page",
    "login",
    "approvals_page",
)


def test_a_half_minute_soak_answers_every_request_as_expected_and_the_log_verifies(tmp_path):
    need(
        shutil.which("createdb") is not None and port_open("127.0.0.1", 5432),
        "PostgreSQL at 127.0.0.1:5432 (with createdb on PATH)",
        "start it, e.g. `docker compose up -d db`",
    )
    need(port_open("127.0.0.1", 6379), "Redis at 127.0.0.1:6379", "start it (broker DB 13)")
    figures_file = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, "bench/soak.py", "--minutes", "0.5", "--json", str(figures_file)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = done.stdout[-6000:] + done.stderr[-3000:]
    assert done.returncode == 0, output
    figures = json.loads(figures_file.read_text())
    assert figures["5xx"] == 0, output
    assert figures["unexpected"] == 0, output
    assert figures["audit_verify"]["ok"], figures["audit_verify"]
    made = {kind: figures["by_kind"].get(kind, {}).get("count", 0) for kind in KINDS}
    assert all(count >= 3 for count in made.values()), made
    assert figures["audit_records"]["gate.checked"] == made["gate"]

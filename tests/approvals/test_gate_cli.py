"""``warden-gate`` against a live server: the real executable in a subprocess, with the key in
``WARDEN_API_KEY``, for every exit status (0 allowed, 1 denied, 2 configuration or
authentication, 3 unreachable), ``--wait`` and ``--json``; each answered check is recorded."""

from __future__ import annotations

import ast
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audit.models import AuditRecord
from core.accounts.callers import Caller
from core.accounts.models import User
from governance.accounts.services import api_key_create
from governance.approvals import services
from governance.approvals.models import GateCheck
from registry.models import ModelVersion
from tests import factories
from tests.approvals.conftest import approve_through, deploy
from tests.conftest import PASSWORD
from tests.support import REPO, imported_roots

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT = REPO / "clients" / "warden-gate" / "warden_gate" / "cli.py"
EXECUTABLE = Path(sys.executable).parent / "warden-gate"
# What a CI runner's environment must not leak into these runs.
CI_VARIABLES = ("WARDEN_API_KEY", "GITHUB_RUN_ID", "GITHUB_REPOSITORY", "CI_PIPELINE_URL")


def run_gate(
    url: str, version: ModelVersion, environment: str, *args: str, key: str | None, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """``warden-gate check`` for ``version`` (its registered digest unless ``--digest`` is
    among ``args``), as a pipeline runs it."""
    env = {k: v for k, v in os.environ.items() if k not in CI_VARIABLES}
    env.update(kw.pop("env", {}))
    if key is not None:
        env["WARDEN_API_KEY"] = key
    command = (
        [str(EXECUTABLE)] if EXECUTABLE.exists() else [sys.executable, "-m", "warden_gate.cli"]
    )
    digest = [] if "--digest" in args else ["--digest", version.artifact_digest]
    return subprocess.run(
        [
            *command,
            "check",
            "--url",
            url,
            "--model",
            version.model.name,
            "--version",
            str(version.version),
            "--environment",
            environment,
            *digest,
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=kw.pop("timeout", 60),
        check=False,
    )


def gate_records() -> list[dict[str, Any]]:
    return [
        json.loads(r.body)["data"]
        for r in AuditRecord.objects.filter(action="gate.checked").order_by("seq")
    ]


@pytest.fixture
def in_dev(alice: User, version: ModelVersion) -> ModelVersion:
    """A version approved for dev (no sign-off steps there)."""
    approve_through(version, "dev", alice)
    return version


def test_allowed_exits_0_and_the_check_is_recorded(live_server, in_dev, gate_only_key):
    result = run_gate(live_server.url, in_dev, "dev", key=gate_only_key)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ALLOWED: credit-score v1 to dev")
    (check,) = GateCheck.objects.all()
    assert check.allowed and str(check.check_id) in result.stdout
    (record,) = gate_records()
    assert record["check_id"] == str(check.check_id)
    assert record["allowed"] is True and record["environment"] == "dev"


def test_other_digest_is_denied_with_exit_1(live_server, in_dev, gate_only_key):
    other = factories.digest("a rebuilt artifact")
    result = run_gate(live_server.url, in_dev, "dev", "--digest", other, key=gate_only_key)

    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("DENIED: credit-score v1 to dev, status approved")
    assert lines[1:] == [
        "  digest_mismatch: the artifact's digest is not the registered version's digest"
    ]
    assert gate_records()[-1]["reasons"] == ["digest_mismatch"]


def test_pending_sign_off_is_denied_with_each_reason_on_its_line(
    live_server, alice, ci, in_dev, gate_only_key
):
    deploy(ci, in_dev, "dev")
    approve_through(in_dev, "test", alice)

    result = run_gate(live_server.url, in_dev, "test", key=gate_only_key)

    assert result.returncode == 1, result.stderr
    assert "  pending_step:review: sign-off pending at step 'review'" in result.stdout
    unrequested = run_gate(live_server.url, in_dev, "prod", key=gate_only_key)
    assert unrequested.returncode == 1
    reasons = [line.strip().split(":")[0] for line in unrequested.stdout.splitlines()[1:]]
    assert reasons == ["previous_environment_missing", "not_requested", *["evidence_missing"] * 2]
    assert [r["allowed"] for r in gate_records()] == [False, False]


def test_wait_polls_unrecorded_status_and_records_exactly_one_check(
    live_server, people, ci, in_dev, gate_only_key
):
    deploy(ci, in_dev, "dev")
    request = approve_through(in_dev, "test", people.alice)
    env = {k: v for k, v in os.environ.items() if k not in CI_VARIABLES}
    env["WARDEN_API_KEY"] = gate_only_key
    waiting = subprocess.Popen(
        [
            *(sys.executable, "-m", "warden_gate.cli", "check", "--url", live_server.url),
            *("--model", "credit-score", "--version", "1", "--environment", "test"),
            *("--digest", in_dev.artifact_digest, "--wait", "60"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Sign once the client has polled the status at least once (it says so on stderr).
        assert waiting.stderr is not None
        first = waiting.stderr.readline()
        assert "denied (pending_step:review); asking again in 5 s" in first
        # The polls so far were not recorded.
        assert not GateCheck.objects.exists() and gate_records() == []
        services.signoff_sign(
            caller=Caller(user=people.bob), request=request, decision="approve", password=PASSWORD
        )
        stdout, stderr = waiting.communicate(timeout=60)
    finally:
        waiting.kill()

    assert waiting.returncode == 0, stderr
    assert stdout.startswith("ALLOWED: credit-score v1 to test")
    (check,) = GateCheck.objects.all()
    assert check.allowed and str(check.check_id) in stdout
    assert [r["allowed"] for r in gate_records()] == [True]


def test_wait_records_one_denial_when_the_time_is_up(live_server, alice, ci, in_dev, ci_key):
    deploy(ci, in_dev, "dev")
    approve_through(in_dev, "test", alice)

    result = run_gate(live_server.url, in_dev, "test", "--wait", "6", key=ci_key)

    assert result.returncode == 1, result.stderr
    # Polled at least twice (at the start and after 5 s), recorded once, at the end.
    assert result.stderr.count("denied (pending_step:review)") >= 1
    assert "the wait is over" in result.stderr
    (record,) = gate_records()
    assert record["reasons"] == ["pending_step:review"]
    assert GateCheck.objects.count() == 1


def test_wait_honours_the_policys_wait_period(live_server, admin_user, alice, version, ci_key):
    services.signoff_policy_publish(
        caller=Caller(user=admin_user),
        environment="dev",
        risk_tier="high",
        steps=[],
        wait_seconds=4,
        note="a short pause after approval",
    )
    approve_through(version, "dev", alice)

    result = run_gate(live_server.url, version, "dev", "--wait", "30", key=ci_key)

    assert result.returncode == 0, result.stderr
    (only,) = gate_records()
    assert only["allowed"] is True
    # Asked again just after the wait period ends, not after the usual backoff.
    assert re.search(r"denied \(waiting_until:\S+\); asking again in [1-5] s", result.stderr)


def test_wait_stops_at_a_denial_that_waiting_cannot_change(live_server, in_dev, ci_key):
    other = factories.digest("not this one")
    began = time.monotonic()
    result = run_gate(
        live_server.url, in_dev, "dev", "--digest", other, "--wait", "600", key=ci_key
    )

    assert result.returncode == 1
    # It never asked again: far below the 600 s it was allowed to wait, even on a busy machine.
    assert "asking again" not in result.stderr
    assert time.monotonic() - began < 120
    assert len(gate_records()) == 1


def test_json_prints_the_answer_and_the_pipeline_is_recorded(live_server, in_dev, gate_only_key):
    github = {
        "GITHUB_SERVER_URL": "https://github.example.org",
        "GITHUB_REPOSITORY": "bank/credit-score",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_SHA": "0123abcd",
    }
    result = run_gate(live_server.url, in_dev, "dev", "--json", key=gate_only_key, env=github)

    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["allowed"] is True and answer["reasons"] == []
    assert "ALLOWED" in result.stderr
    (record,) = gate_records()
    assert record["check_id"] == answer["check_id"]
    assert (
        record["pipeline_run"] == "https://github.example.org/bank/credit-score/actions/runs/4242"
    )
    assert record["commit"] == "0123abcd"
    assert AuditRecord.objects.get(seq=answer["audit_seq"]).action == "gate.checked"

    explicit = run_gate(
        live_server.url,
        in_dev,
        "dev",
        "--json",
        "--pipeline-run",
        "https://ci.example.org/run/7",
        "--commit",
        "feed",
        key=gate_only_key,
        env=github,
    )
    assert json.loads(explicit.stdout)["allowed"] is True
    assert gate_records()[-1]["pipeline_run"] == "https://ci.example.org/run/7"
    assert gate_records()[-1]["commit"] == "feed"


def test_missing_key_is_a_configuration_error_before_any_request(live_server, in_dev):
    result = run_gate(live_server.url, in_dev, "dev", "--json", key=None)

    assert result.returncode == 2
    assert "WARDEN_API_KEY is not set" in result.stderr
    assert json.loads(result.stdout)["error"]["exit_code"] == 2
    assert not GateCheck.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--digest", "sha256:abc"], "--digest must be 'sha256:'"),
        (["--digest", "SHA256:" + "A" * 64], "--digest must be 'sha256:'"),
        (["--version", "0"], "--version must be a whole number"),
        (["--wait", "-1"], "--wait must be >= 0"),
    ],
)
def test_malformed_arguments_exit_2(live_server, in_dev, gate_only_key, args, message):
    result = run_gate(live_server.url, in_dev, "dev", *args, key=gate_only_key)

    assert result.returncode == 2
    assert message in result.stderr
    assert not GateCheck.objects.exists()


def test_malformed_url_and_unknown_option_exit_2(in_dev, gate_only_key):
    for url in ("warden.example.org", "ftp://warden.example.org", "https://x.org/?a=b"):
        result = run_gate(url, in_dev, "dev", key=gate_only_key)
        assert result.returncode == 2, url
        assert "--url must" in result.stderr
    unknown = run_gate("https://x.org", in_dev, "dev", "--api-key", "k", key=gate_only_key)
    assert unknown.returncode == 2
    assert "unrecognized arguments: --api-key" in unknown.stderr


def test_bad_key_is_401_and_exit_2(live_server, in_dev):
    result = run_gate(live_server.url, in_dev, "dev", key="wdn_not-a-key")

    assert result.returncode == 2
    assert "401 not authenticated" in result.stderr
    assert not GateCheck.objects.exists()


def test_key_without_gate_read_is_403_and_exit_2(live_server, in_dev, ci_account, admin_user):
    key, _ = api_key_create(
        caller=Caller(user=admin_user, auth="cli"),
        user=ci_account,
        name="deploy reports only",
        scopes=["deployments:write"],
    )
    result = run_gate(live_server.url, in_dev, "dev", key=key)

    assert result.returncode == 2
    assert "403 forbidden" in result.stderr
    assert not GateCheck.objects.exists()


def test_unknown_model_is_404_and_unknown_environment_400_both_exit_2(
    live_server, in_dev, gate_only_key
):
    command = [
        sys.executable,
        "-m",
        "warden_gate.cli",
        "check",
        "--url",
        live_server.url,
        "--model",
        "no-such-model",
        "--version",
        "1",
        "--environment",
        "dev",
        "--digest",
        in_dev.artifact_digest,
        "--json",
    ]
    env = {**os.environ, "WARDEN_API_KEY": gate_only_key}
    missing = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert missing.returncode == 2
    assert "404 not found" in missing.stderr
    assert json.loads(missing.stdout)["error"]["http_status"] == 404

    staging = run_gate(live_server.url, in_dev, "staging", key=gate_only_key)
    assert staging.returncode == 2
    assert "400 bad request: environment 'staging' does not exist" in staging.stderr
    assert not GateCheck.objects.exists()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_closed_port_is_unreachable_exit_3_after_retrying(in_dev, gate_only_key):
    url = f"http://127.0.0.1:{closed_port()}"
    result = run_gate(url, in_dev, "dev", "--retries", "1", key=gate_only_key)

    assert result.returncode == 3
    assert "Connection refused; retrying in 1 s" in result.stderr
    assert "error: cannot reach" in result.stderr


class _Unavailable(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        body = b'{"error": {"code": "unavailable", "message": "database restarting"}}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Retry-After", "1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def unavailable() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    _Unavailable.hits = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_5xx_is_retried_then_exit_3(unavailable, in_dev, gate_only_key):
    result = run_gate(unavailable, in_dev, "dev", "--retries", "2", key=gate_only_key)

    assert result.returncode == 3
    assert _Unavailable.hits == 3
    assert "503 from Warden: database restarting" in result.stderr


def test_client_imports_only_the_standard_library_and_parses_as_python_3_9():
    roots = imported_roots(CLIENT)

    assert roots <= set(sys.stdlib_module_names), roots - set(sys.stdlib_module_names)
    ast.parse(CLIENT.read_text(), feature_version=(3, 9))
    checked = subprocess.run(
        [
            *(sys.executable, "-m", "mypy", "--config-file", "/dev/null"),
            *("--python-version", "3.9", "--strict", "--no-incremental", str(CLIENT)),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert checked.returncode == 0, checked.stdout

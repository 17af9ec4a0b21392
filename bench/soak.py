"""Soak benchmark: mixed traffic for a bounded time against a really started Warden, with the
resident memory of every server process sampled throughout.

Sets up throwaway state of its own: a fresh database (``createdb warden_soak_<pid>`` on the
PostgreSQL server of ``--postgres``, dropped at the end; or ``--database sqlite``, a file in a
temporary directory), ``manage.py migrate``, a cast of people and keys made through the
services (``bench/_soak_cast.py``), and a signing key, publish, upload and report directories
in the temporary directory. Starts gunicorn (``--workers`` 2, sync) on a free port of
127.0.0.1 and a Celery worker for the report jobs on ``--redis`` (also the throttles' shared
cache, as in production), or runs the jobs in the web processes with ``--eager``. Everything
it starts runs in its own process group and is stopped at the end, always.

``--clients`` (4) threads, standard library only, each on keep-alive ``http.client``
connections to 127.0.0.1, repeat a deployment cycle with a pause between requests until the
time is up: the CI key (``registry:write``) registers a dataset version and a model version;
the model's owner, logged in with a session, requests dev (approved at once), the gate
(``gate:read`` key) allows and CI reports the deployment; then test, signed by a teammate or a
validator re-entering their password through the API (bound to the signing content's SHA-256)
or the approval form; every third cycle prod, signed by a validator and the risk officer; the
gate is also asked about an environment the version is not approved for (denied). Every other
cycle CI requests a fairness or drift report on a small CSV upload and the client follows it
to ``done``; every cycle someone logs in through ``/accounts/login/`` with the CSRF token.

Every ``--sample-seconds`` (5) it reads ``VmRSS`` of each gunicorn worker and Celery process
from ``/proc``; prints a table per minute; at the end the requests by kind (count, errors,
p50, p99), the 5xx count, each process's memory at minute 2 and at the end and its growth,
and ``manage.py audit_verify``. Exit 1 on any 5xx or unexpected answer, a failed report, a
server process that died or was replaced, memory growth over 10 % from minute 2 to the end
(judged when the run lasts at least 3 minutes), or a log that does not verify.

    PYTHONPATH=. .venv/bin/python bench/soak.py [--minutes 10] [--clients 4] [--pause 0.3]
        [--database postgres|sqlite] [--eager] [--json FILE] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fcntl
import hashlib
import http.client
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MEMORY_GROWTH_LIMIT = 0.10
JUDGE_MEMORY_AFTER_SECONDS = 180.0
BASELINE_SECONDS = 120.0
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
SHOWN_CONTENT = re.compile(r'name="shown_content" value="([^"]+)"')
# Report inputs: slices of the data files the reports' acceptance tests use.
FAIRNESS_FIELDS = {
    "label": "two_year_recid",
    "prediction": "score_text",
    "prediction_positive": "Medium,High",
    "favorable_label": "Low",
    "sensitive": "race",
}
DRIFT_COLUMNS = "temp:numerical,hum:numerical,weathersit:categorical"


def log(message: str) -> None:
    print(message, flush=True)


@dataclass
class Answer:
    kind: str
    at: float
    status: int
    ms: float
    expected: bool


@dataclass
class Recorder:
    """Every answer of every client, and the unexpected ones described."""

    began: float
    answers: list[Answer] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    checks_failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, answer: Answer, problem: str | None = None) -> None:
        with self.lock:
            self.answers.append(answer)
            if problem is not None and len(self.problems) < 200:
                self.problems.append(problem)

    def problem(self, text: str) -> None:
        """An answer with the expected status but the wrong content."""
        with self.lock:
            self.checks_failed += 1
            if len(self.problems) < 200:
                self.problems.append(text)

    def snapshot(self) -> list[Answer]:
        with self.lock:
            return list(self.answers)


class Unexpected(Exception):
    """An answer other than the one the step needs: the cycle cannot go on."""


class Client:
    """One browser or pipeline: a keep-alive connection, its cookies (session and CSRF), or
    a Bearer key."""

    def __init__(
        self, port: int, recorder: Recorder, pause: float, *, key: str | None = None
    ) -> None:
        self.port, self.recorder, self.pause, self.key = port, recorder, pause, key
        self.cookies: dict[str, str] = {}
        self.conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        expect: tuple[int, ...] = (200,),
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {"Accept": "application/json", "User-Agent": "warden-soak"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if method != "GET" and "csrftoken" in self.cookies and not self.key:
            headers["X-CSRFToken"] = self.cookies["csrftoken"]
        if content_type:
            headers["Content-Type"] = content_type
        began = time.perf_counter()
        status, answer_headers, data = 0, {}, b""
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
            status = response.status
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
            for raw in response.msg.get_all("Set-Cookie") or []:
                jar: SimpleCookie = SimpleCookie()
                jar.load(raw)
                for name, morsel in jar.items():
                    if morsel.value:
                        self.cookies[name] = morsel.value
                    else:
                        self.cookies.pop(name, None)
            if response.will_close:
                self.close()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            ms = (time.perf_counter() - began) * 1000
            self.recorder.add(
                Answer(kind, time.monotonic() - self.recorder.began, 0, ms, False),
                f"{kind}: {method} {path}: {type(exc).__name__}: {exc}",
            )
            raise Unexpected(kind) from exc
        ms = (time.perf_counter() - began) * 1000
        ok = status in expect
        problem = None
        if not ok:
            problem = f"{kind}: {method} {path} answered {status}: {data[:300]!r}"
        self.recorder.add(
            Answer(kind, time.monotonic() - self.recorder.began, status, ms, ok), problem
        )
        if self.pause:
            time.sleep(self.pause * random.uniform(0.5, 1.5))
        if not ok:
            raise Unexpected(kind)
        return status, answer_headers, data

    def json(self, kind: str, method: str, path: str, payload: Any = None, **kw: Any) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        _, _, data = self.request(
            kind, method, path, body=body, content_type="application/json" if body else None, **kw
        )
        return json.loads(data) if data else None

    def form(self, kind: str, path: str, fields: list[tuple[str, str]], **kw: Any) -> Any:
        return self.request(
            kind,
            "POST",
            path,
            body=urlencode(fields).encode(),
            content_type="application/x-www-form-urlencoded",
            **kw,
        )

    def multipart(
        self, kind: str, path: str, fields: dict[str, str], files: dict[str, bytes], **kw: Any
    ) -> Any:
        boundary = uuid.uuid4().hex
        out = io.BytesIO()
        for name, value in fields.items():
            out.write(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            )
            out.write(value.encode() + b"\r\n")
        for name, content in files.items():
            out.write(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{name}.csv"\r\nContent-Type: text/csv\r\n\r\n'.encode()
            )
            out.write(content + b"\r\n")
        out.write(f"--{boundary}--\r\n".encode())
        _, _, data = self.request(
            kind,
            "POST",
            path,
            body=out.getvalue(),
            content_type=f"multipart/form-data; boundary={boundary}",
            **kw,
        )
        return json.loads(data)

    def login(self, username: str, password: str) -> None:
        """The approval pages' login: the form's CSRF token, then the password (302)."""
        _, _, page = self.request("login_page", "GET", "/accounts/login/")
        token = CSRF_INPUT.search(page.decode())
        if token is None:
            self.recorder.problem("login_page: no csrfmiddlewaretoken in the form")
            raise Unexpected("login_page")
        _, headers, _ = self.form(
            "login",
            "/accounts/login/",
            [
                ("csrfmiddlewaretoken", token.group(1)),
                ("username", username),
                ("password", password),
            ],
            expect=(302,),
        )
        if "sessionid" not in self.cookies or headers.get("location") != "/":  # their home
            self.recorder.problem(f"login of {username}: no session ({headers.get('location')})")
            raise Unexpected("login")


def _csv_slice(path: Path, columns: list[str], start: int, rows: int) -> bytes:
    with path.open(newline="") as source:
        reader = csv.DictReader(source)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for index, row in enumerate(reader):
            if index >= start + rows:
                break
            if index >= start:
                writer.writerow([row[c] for c in columns])
    return out.getvalue().encode()


@dataclass
class Inputs:
    evaluation: bytes
    reference: bytes
    current: bytes

    @classmethod
    def load(cls) -> Inputs:
        compas = REPO / "data" / "compas-scores-two-years.csv"
        bike = REPO / "data" / "bike-sharing-hour.csv"
        weather = ["temp", "hum", "weathersit"]
        return cls(
            evaluation=_csv_slice(compas, ["two_year_recid", "score_text", "race"], 0, 600),
            reference=_csv_slice(bike, weather, 0, 300),
            current=_csv_slice(bike, weather, 4300, 300),
        )


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class Pipeline(threading.Thread):
    """One client thread: a model of its own, owned by one data scientist, taken through
    dev, test and (every third cycle) prod, again and again."""

    def __init__(
        self,
        index: int,
        *,
        port: int,
        cast: dict[str, Any],
        recorder: Recorder,
        inputs: Inputs,
        args: argparse.Namespace,
        stop_at: float,
    ) -> None:
        super().__init__(name=f"client-{index}", daemon=True)
        self.index, self.port, self.cast, self.recorder = index, port, cast, recorder
        self.inputs, self.args, self.stop_at = inputs, args, stop_at
        self.password = cast["password"]
        self.owner = ("olive", "oscar")[index % 2]
        self.model = f"soak-model-{os.getpid()}-{index}"
        self.dataset = f"soak-data-{os.getpid()}-{index}"
        self.pending_reports: list[str] = []
        self.cycles = 0
        self.sessions: dict[str, Client] = {}
        self.random = random.Random(index)

    def client(self, *, key: str | None = None) -> Client:
        return Client(self.port, self.recorder, self.args.pause, key=key)

    def session(self, username: str) -> Client:
        if username not in self.sessions:
            person = self.client()
            person.login(username, self.password)
            self.sessions[username] = person
        return self.sessions[username]

    def run(self) -> None:
        self.ci = self.client(key=self.cast["registry_key"])
        self.gate_client = self.client(key=self.cast["gate_key"])
        try:
            self.set_up()
        except Unexpected:
            self.recorder.problem(f"{self.name}: set-up failed; this client stops")
            return
        while time.monotonic() < self.stop_at and self.cycles < self.args.max_cycles:
            # An unexpected answer is recorded; the next cycle starts from a new version.
            with contextlib.suppress(Unexpected):
                self.cycle(self.cycles)
            self.cycles += 1
        self.finish_reports(deadline=time.monotonic() + self.args.report_wait)
        for c in (self.ci, self.gate_client, *self.sessions.values()):
            c.close()

    def set_up(self) -> None:
        self.ci.json(
            "register_model",
            "POST",
            "/api/v1/models/",
            {
                "name": self.model,
                "risk_tier": "medium",
                "owner": self.owner,
                "team": self.cast["team"],
                "sensitive_attributes": ["race"],
                "description": "Soak benchmark model.",
            },
            expect=(201,),
        )
        self.ci.json(
            "register_dataset",
            "POST",
            "/api/v1/datasets/",
            {"name": self.dataset, "description": "Soak benchmark data."},
            expect=(201,),
        )

    def gate(self, version: int, digest: str, environment: str, *, allowed: bool) -> str:
        query = urlencode(
            {
                "model": self.model,
                "version": version,
                "environment": environment,
                "digest": digest,
                "pipeline_run": f"https://ci.example.org/soak/{self.index}/{version}",
            }
        )
        answer = self.gate_client.json("gate", "GET", f"/api/v1/gate?{query}")
        if answer["allowed"] is not allowed:
            self.recorder.problem(
                f"gate {self.model} v{version} {environment}: allowed={answer['allowed']} "
                f"(expected {allowed}): {answer['reasons']}"
            )
            raise Unexpected("gate")
        return str(answer["check_id"])

    def deploy(self, version: int, digest: str, environment: str) -> None:
        check_id = self.gate(version, digest, environment, allowed=True)
        self.ci.json(
            "deployment_report",
            "POST",
            "/api/v1/deployments/",
            {
                "model": self.model,
                "version": version,
                "environment": environment,
                "event": "deployed",
                "check_id": check_id,
            },
            expect=(201,),
        )

    def submit(self, version: int, environment: str) -> dict[str, Any]:
        return dict(
            self.session(self.owner).json(
                "request_submit",
                "POST",
                "/api/v1/deployment-requests/",
                {
                    "model": self.model,
                    "version": version,
                    "environment": environment,
                    "reason": f"soak cycle to {environment}",
                },
                expect=(201,),
            )
        )

    def sign_api(self, signer: str, request_id: int) -> None:
        """Through the API, bound to the content shown: signing-content, then sign."""
        person = self.session(signer)
        content = person.json(
            "signing_content",
            "GET",
            f"/api/v1/deployment-requests/{request_id}/signing-content?decision=approve",
        )
        person.json(
            "sign_api",
            "POST",
            f"/api/v1/deployment-requests/{request_id}/sign",
            {
                "decision": "approve",
                "password": self.password,
                "comment": "soak",
                "expected_content_sha256": content["sha256"],
            },
            expect=(201,),
        )

    def sign_form(self, signer: str, request_id: int, meaning: str) -> None:
        """Through the approval page: the form (CSRF token, what it showed), then POST."""
        person = self.session(signer)
        path = f"/approvals/{request_id}/sign/"
        _, _, page = person.request("sign_page", "GET", path)
        html = page.decode()
        token = CSRF_INPUT.search(html)
        shown = SHOWN_CONTENT.findall(html)
        if token is None or not shown:
            self.recorder.problem(f"sign_page {request_id}: no CSRF token or shown content")
            raise Unexpected("sign_page")
        fields = [("csrfmiddlewaretoken", token.group(1))]
        fields += [("shown_content", value) for value in shown]
        fields += [
            ("decision", "approve"),
            ("meaning", meaning),
            ("comment", "soak"),
            ("password", self.password),
        ]
        _, headers, _ = person.form("sign_form", path, fields, expect=(302,))
        if headers.get("location") != f"/approvals/{request_id}/":
            self.recorder.problem(
                f"sign_form {request_id}: redirected to {headers.get('location')}"
            )
            raise Unexpected("sign_form")

    def cycle(self, n: int) -> None:
        tag = f"{os.getpid()}-{self.index}-{n}"
        dataset_version = self.ci.json(
            "register_dataset_version",
            "POST",
            f"/api/v1/datasets/{self.dataset}/versions/",
            {
                "content_digest": _digest(f"data {tag}"),
                "row_count": 600 + n,
                "schema": {"race": "string", "score_text": "string"},
            },
            expect=(201,),
        )
        digest = _digest(f"artifact {tag}")
        registered = self.ci.json(
            "register_version",
            "POST",
            f"/api/v1/models/{self.model}/versions/",
            {
                "artifact_uri": f"s3://soak/{self.model}/{n}",
                "artifact_digest": digest,
                "framework": "sklearn",
                "metrics": {"auc": 0.8},
                "author": self.owner,
                "datasets": [
                    {
                        "dataset": self.dataset,
                        "version": dataset_version["version"],
                        "role": "training",
                    }
                ],
            },
            expect=(201,),
        )
        version = int(registered["version"])

        dev = self.submit(version, "dev")
        if dev["state"] != "approved":
            self.recorder.problem(f"dev request {dev['id']} is {dev['state']}, not approved")
            raise Unexpected("request_submit")
        self.deploy(version, digest, "dev")

        test = self.submit(version, "test")
        reviewer = ("tessa", "vince")[n % 2]
        if n % 2 == 0:
            self.sign_api(reviewer, test["id"])
        else:
            self.sign_form(reviewer, test["id"], "review")
        self.deploy(version, digest, "test")

        if n % 3 == 2:
            prod = self.submit(version, "prod")
            self.sign_api("vera", prod["id"])
            self.sign_form("rosa", prod["id"], "approval")
            self.deploy(version, digest, "prod")
        else:
            self.gate(version, digest, "prod", allowed=False)

        if n % 2 == 1:
            self.request_report(version, "fairness" if n % 4 == 1 else "drift")
        self.poll_reports()

        visitor = self.client()
        visitor.login(self.random.choice(self.cast["people"]), self.password)
        visitor.request("approvals_page", "GET", "/approvals/")
        visitor.close()

    def request_report(self, version: int, kind: str) -> None:
        if kind == "fairness":
            fields = {"kind": kind, "model": self.model, "version": str(version), **FAIRNESS_FIELDS}
            files = {"evaluation": self.inputs.evaluation}
        else:
            fields = {"kind": kind, "model": self.model, "version": str(version)}
            fields["columns"] = DRIFT_COLUMNS
            files = {"reference": self.inputs.reference, "current": self.inputs.current}
        report = self.ci.multipart(
            "report_request", "/api/v1/reports/", fields, files, expect=(202,)
        )
        self.pending_reports.append(str(report["id"]))

    def poll_reports(self) -> None:
        still = []
        for report_id in self.pending_reports:
            report = self.ci.json("report_status", "GET", f"/api/v1/reports/{report_id}")
            if report["status"] == "failed":
                self.recorder.problem(f"report {report_id} failed: {report.get('error')}")
            elif report["status"] != "done":
                still.append(report_id)
        self.pending_reports = still

    def finish_reports(self, *, deadline: float) -> None:
        while self.pending_reports and time.monotonic() < deadline:
            try:
                self.poll_reports()
            except Unexpected:
                return
            if self.pending_reports:
                time.sleep(1)
        for report_id in self.pending_reports:
            self.recorder.problem(
                f"report {report_id} was not done {self.args.report_wait:.0f} s after the run"
            )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def redis_ping(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def exclusive(url: str) -> Iterator[None]:
    """One soak at a time per broker database: two would take each other's report jobs."""
    name = re.sub(r"[^A-Za-z0-9]+", "-", url).strip("-")
    path = Path(tempfile.gettempdir()) / f"warden-soak-{name}.lock"
    with path.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"another soak run is using {url} (lock {path})") from None
        yield


class Processes:
    """The processes the run started, each the leader of its own process group."""

    def __init__(self) -> None:
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self, label: str, command: list[str], env: dict[str, str], logfile: Path
    ) -> subprocess.Popen[bytes]:
        with logfile.open("ab") as out:
            process = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append((label, process))
        return process

    def stop_all(self) -> None:
        for _, process in reversed(self.started):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for label, process in reversed(self.started):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log(f"{label} did not stop within 30 s: killed")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            # Pool children left behind by a killed leader.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command may contain spaces and parentheses: fields follow the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class Sample:
    at: float
    rss: dict[str, int]  # label -> kB


def watched(
    gunicorn: subprocess.Popen[bytes], celery: subprocess.Popen[bytes] | None
) -> dict[str, int]:
    """Label -> pid of every process whose memory is watched: the gunicorn workers, the Celery
    worker and its pool processes."""
    labels = {f"gunicorn worker {pid}": pid for pid in children_of(gunicorn.pid)}
    if celery is not None:
        labels[f"celery main {celery.pid}"] = celery.pid
        labels.update({f"celery pool {pid}": pid for pid in children_of(celery.pid)})
    return labels


def wait_listening(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode} before listening")
        if answers("127.0.0.1", port):
            return
        time.sleep(0.2)
    raise SystemExit("gunicorn did not listen within 60 s")


def wait_workers(
    gunicorn: subprocess.Popen[bytes],
    celery: subprocess.Popen[bytes] | None,
    args: argparse.Namespace,
    deadline: float,
) -> None:
    """Until every worker process has forked (their memory is watched from the start)."""
    while time.monotonic() < deadline:
        gunicorn_ok = len(children_of(gunicorn.pid)) >= args.workers
        celery_ok = celery is None or len(children_of(celery.pid)) >= args.celery_concurrency
        if gunicorn_ok and celery_ok:
            return
        time.sleep(0.5)
    raise SystemExit("the gunicorn or Celery worker processes did not start within 120 s")


def warm_up(port: int, cast: dict[str, Any], args: argparse.Namespace) -> tuple[float, int]:
    """Requests until each web worker has answered one (the first request of a worker loads
    the URL map and every view module): twice as many at once as there are workers, twice.
    Returns the seconds it took and the gate checks it made (none); these answers are not
    part of the figures."""
    began = time.monotonic()
    recorder = Recorder(began=began)

    def one() -> None:
        client = Client(port, recorder, 0, key=cast["registry_key"])
        with contextlib.suppress(Unexpected):
            client.request("warm_up", "GET", "/api/v1/models/")
        client.close()

    for _ in range(2):
        threads = [threading.Thread(target=one) for _ in range(2 * args.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if recorder.problems:
        raise SystemExit(f"warm-up failed: {recorder.problems[0]}")
    return time.monotonic() - began, 0


def percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def by_kind(answers_seen: list[Answer]) -> dict[str, dict[str, Any]]:
    grouped: dict[str, list[Answer]] = defaultdict(list)
    for answer in answers_seen:
        grouped[answer.kind].append(answer)
    figures = {}
    for kind in sorted(grouped):
        seen = grouped[kind]
        latencies = sorted(a.ms for a in seen)
        figures[kind] = {
            "count": len(seen),
            "errors": sum(not a.expected for a in seen),
            "statuses": dict(Counter(str(a.status) for a in seen)),
            "p50_ms": round(statistics.median(latencies), 1),
            "p99_ms": round(percentile(latencies, 0.99), 1),
        }
    return figures


def minute_row(minute: int, seen: list[Answer], sample: Sample | None, labels: list[str]) -> str:
    window = [a for a in seen if (minute - 1) * 60 <= a.at < minute * 60]
    latencies = sorted(a.ms for a in window)
    errors = sum(not a.expected for a in window)
    fivexx = sum(a.status >= 500 for a in window)
    memory = " ".join(
        f"{(sample.rss.get(label, 0) / 1024 if sample else 0):>9.1f}" for label in labels
    )
    p50 = statistics.median(latencies) if latencies else float("nan")
    return (
        f"{minute:>6} {len(window):>8} {errors:>6} {fivexx:>4} {p50:>8.1f} "
        f"{percentile(latencies, 0.99):>8.1f}  {memory}"
    )


def memory_figures(
    samples: list[Sample], duration: float
) -> tuple[float, dict[str, dict[str, Any]]]:
    """Each process's RSS at the baseline (the first sample at or after minute 2, or half-way
    through a shorter run) and at the end, and the growth."""
    baseline_at = BASELINE_SECONDS if duration >= JUDGE_MEMORY_AFTER_SECONDS else duration / 2
    base = next((s for s in samples if s.at >= baseline_at), samples[-1])
    end = samples[-1]
    figures = {}
    for label in sorted(set(base.rss) | set(end.rss)):
        start_kb, end_kb = base.rss.get(label), end.rss.get(label)
        growth = (end_kb - start_kb) / start_kb if start_kb and end_kb else None
        figures[label] = {
            "baseline_kb": start_kb,
            "end_kb": end_kb,
            "growth_pct": None if growth is None else round(growth * 100, 2),
        }
    return base.at, figures


def interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the traffic (10)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads (4)")
    parser.add_argument("--pause", type=float, default=0.3, help="mean pause after each request, s")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (2)")
    parser.add_argument("--celery-concurrency", type=int, default=1, help="Celery pool size (1)")
    parser.add_argument("--sample-seconds", type=float, default=5.0, help="memory sampling period")
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("SOAK_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server on which warden_soak_<pid> is created and dropped",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("SOAK_REDIS_URL", "redis://127.0.0.1:6379/13"),
        help="Celery broker and throttling cache (a database of its own: never flushed)",
    )
    parser.add_argument("--eager", action="store_true", help="report jobs in the web processes")
    parser.add_argument("--max-cycles", type=int, default=100_000, help="cycles per client at most")
    parser.add_argument("--report-wait", type=float, default=120.0, help="s to wait for reports")
    parser.add_argument(
        "--json", metavar="FILE", help="also write the figures as JSON ('-': stdout)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database and temp directory")
    args = parser.parse_args(argv)

    if args.database == "postgres":
        server = urlsplit(args.postgres)
        if not answers(server.hostname or "127.0.0.1", server.port or 5432):
            raise SystemExit(f"PostgreSQL is not answering at {args.postgres}")
    if not args.eager and not redis_ping(args.redis):
        raise SystemExit(f"Redis is not answering at {args.redis} (or run with --eager)")
    # SIGTERM (a CI timeout) unwinds like Ctrl-C, through the finally blocks below.
    signal.signal(signal.SIGTERM, interrupted)
    lock = exclusive(args.redis) if not args.eager else contextlib.nullcontext()
    with lock:
        return Soak(args).run()


class Soak:
    """One run: its temporary directory, database, environment and processes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir = Path(tempfile.mkdtemp(prefix=f"warden-soak-{os.getpid()}-"))
        self.name = f"warden_soak_{os.getpid()}"
        self.pg_env = dict(os.environ)
        self.pg_args: list[str] = []
        if args.database == "postgres":
            server = urlsplit(args.postgres)
            self.database_url = server._replace(path=f"/{self.name}").geturl()
            host, port = server.hostname or "127.0.0.1", str(server.port or 5432)
            self.pg_args = ["-h", host, "-p", port, "-U", server.username or "postgres"]
            if server.password:
                self.pg_env["PGPASSWORD"] = server.password
        else:
            self.database_url = f"sqlite:///{self.workdir / 'soak.sqlite3'}"
        inherited = ("AUDIT_", "DJANGO_", "REPORTS_", "CELERY_", "CACHE_URL", "DATABASE_URL")
        work = self.workdir
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(inherited)},
            # The test settings: fast password hashing, no API rate limit to speak of.
            "DJANGO_ENV": "test",
            "DJANGO_SETTINGS_MODULE": "governance.settings.test",
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": self.database_url,
            "WARDEN_LOG_LEVEL": "WARNING",
            # Every process of the run shares these (the test settings would make them per pid).
            "AUDIT_SIGNING_KEY_FILE": str(work / "audit-signing.key"),
            "AUDIT_CHECKPOINT_PUBLISH_DIR": str(work / "checkpoints"),
            "AUDIT_EXPORT_DIR": str(work / "exports"),
            "REPORTS_UPLOAD_DIR": str(work / "report-inputs"),
            "REPORTS_DIR": str(work / "reports"),
        }
        if not args.eager:
            self.env["CELERY_BROKER_URL"] = args.redis
            self.env["CACHE_URL"] = args.redis
        self.processes = Processes()
        self.created = False
        self.failures: list[str] = []

    def run(self) -> int:
        figures: dict[str, Any] = {}
        try:
            cast = self.set_up()
            figures = self.soak(cast)
        except KeyboardInterrupt:
            self.failures.append("interrupted")
            log("interrupted: stopping")
        finally:
            self.processes.stop_all()
            if figures:
                self.check_log(figures)
            self.clean_up()
        if not figures:
            return 1
        figures["failures"] = self.failures
        figures["ok"] = not self.failures
        print_summary(figures)
        if self.args.json == "-":
            print(json.dumps(figures, indent=2))
        elif self.args.json:
            Path(self.args.json).write_text(json.dumps(figures, indent=2) + "\n")
        return 0 if not self.failures else 1

    def manage(self, *command: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *command],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def set_up(self) -> dict[str, Any]:
        """The database, migrated, and the cast made in it."""
        if self.args.database == "postgres":
            done = subprocess.run(
                ["createdb", *self.pg_args, self.name],
                env=self.pg_env,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode:
                raise SystemExit(f"createdb {self.name} failed: {done.stderr.strip()}")
            self.created = True
        shown = self.name if self.created else self.database_url
        log(f"database: {self.args.database} {shown}; work dir {self.workdir}")
        migrated = self.manage("manage.py", "migrate", "--noinput")
        if migrated.returncode:
            raise SystemExit(f"migrate failed:\n{migrated.stdout}\n{migrated.stderr}")
        made = self.manage("-m", "bench._soak_cast", "cast", timeout=120)
        if made.returncode:
            raise SystemExit(f"setting up the cast failed:\n{made.stderr}")
        return dict(json.loads(made.stdout.strip().splitlines()[-1]))

    def check_log(self, figures: dict[str, Any]) -> None:
        """``manage.py audit_verify``, and one ``gate.checked`` record per answered check."""
        verified = self.manage("manage.py", "audit_verify")
        line = (verified.stdout.strip().splitlines() or [verified.stderr.strip()])[-1]
        figures["audit_verify"] = {"ok": verified.returncode == 0, "output": line}
        log(f"manage.py audit_verify: {line}")
        if verified.returncode:
            self.failures.append("the audit log does not verify")
        counted = self.manage("-m", "bench._soak_cast", "counts", timeout=120)
        if counted.returncode:
            self.failures.append(f"counting the audit records failed: {counted.stderr[-300:]}")
            return
        records = json.loads(counted.stdout.strip().splitlines()[-1])
        figures["audit_records"] = records
        gates = figures["by_kind"].get("gate", {}).get("statuses", {}).get("200", 0)
        gates += figures["warm_up_gate_checks"]
        if records.get("gate.checked", 0) != gates:
            self.failures.append(
                f"{records.get('gate.checked', 0)} gate.checked records for {gates} answered checks"
            )

    def clean_up(self) -> None:
        if self.failures:
            for name in ("gunicorn.log", "celery.log"):
                path = self.workdir / name
                lines = path.read_text(errors="replace").splitlines() if path.exists() else []
                if lines:
                    log(f"--- the last {min(len(lines), 60)} lines of {name}:")
                    log("\n".join(lines[-60:]))
        if self.created and not self.args.keep:
            subprocess.run(
                ["dropdb", *self.pg_args, "--force", "--if-exists", self.name],
                env=self.pg_env,
                capture_output=True,
                check=False,
            )
        if self.args.keep:
            log(f"kept: {self.database_url} and {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def start_servers(self, port: int) -> tuple[subprocess.Popen[bytes], Any]:
        args = self.args
        # The flags below alone, not the production gunicorn.conf.py that gunicorn would read
        # from the working directory: its worker recycling would replace the processes whose
        # memory is watched.
        config = self.workdir / "gunicorn.conf.py"
        config.write_text('"""The soak gives gunicorn every setting on its command line."""\n')
        gunicorn = self.processes.start(
            "gunicorn",
            [
                str(BIN / "gunicorn"),
                f"--config={config}",
                "governance.wsgi:application",
                f"--workers={args.workers}",
                f"--bind=127.0.0.1:{port}",
                "--worker-class=sync",
                # A report request reads its upload in the web process; with --eager it also
                # computes and renders the report there.
                "--timeout=120",
                "--log-level=warning",
            ],
            self.env,
            self.workdir / "gunicorn.log",
        )
        celery = None
        if not args.eager:
            celery = self.processes.start(
                "celery",
                [
                    str(BIN / "celery"),
                    "--app=governance",
                    "worker",
                    "--queues=celery,reports",
                    f"--concurrency={args.celery_concurrency}",
                    "--loglevel=WARNING",
                    f"--hostname=soak-{os.getpid()}@%h",
                    "--without-gossip",
                    "--without-mingle",
                ],
                self.env,
                self.workdir / "celery.log",
            )
        wait_listening(port, gunicorn, time.monotonic() + 60)
        wait_workers(gunicorn, celery, args, time.monotonic() + 120)
        jobs = "jobs in the web processes" if celery is None else f"Celery worker on {args.redis}"
        log(
            f"gunicorn -w {args.workers} on 127.0.0.1:{port}; reports: {jobs}; "
            f"{args.clients} clients for {args.minutes:g} min, pause {args.pause} s; "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
        )
        return gunicorn, celery

    def soak(self, cast: dict[str, Any]) -> dict[str, Any]:
        args = self.args
        port = free_port()
        gunicorn, celery = self.start_servers(port)
        warmed, warm_gates = warm_up(port, cast, args)
        log(f"warm-up: {warmed:.1f} s until every worker had answered (not counted)")
        inputs = Inputs.load()
        began = time.monotonic()
        recorder = Recorder(began=began)
        stop_at = began + args.minutes * 60
        clients = [
            Pipeline(
                i,
                port=port,
                cast=cast,
                recorder=recorder,
                inputs=inputs,
                args=args,
                stop_at=stop_at,
            )
            for i in range(args.clients)
        ]
        for client in clients:
            client.start()
        samples = self.watch(clients, recorder, gunicorn, celery, began)
        end = time.monotonic()
        for label, process in (("gunicorn", gunicorn), ("celery", celery)):
            if process is not None and process.poll() is not None:
                self.failures.append(f"{label} exited with {process.returncode} during the run")
        seen = recorder.snapshot()
        traffic = min(end, stop_at) - began
        baseline_at, memory = memory_figures(samples, traffic)
        judged = traffic >= JUDGE_MEMORY_AFTER_SECONDS
        limit = MEMORY_GROWTH_LIMIT * 100
        over = [k for k, m in memory.items() if (m["growth_pct"] or 0) > limit]
        fivexx = sum(a.status >= 500 for a in seen)
        unexpected = sum(not a.expected for a in seen)
        if fivexx:
            self.failures.append(f"{fivexx} answers were 5xx")
        if unexpected:
            self.failures.append(f"{unexpected} answers were not the expected status")
        if recorder.checks_failed:
            self.failures.append(f"{recorder.checks_failed} checks of answers' content failed")
        if judged and over:
            self.failures.append(f"memory grew by more than {limit:.0f} %: {', '.join(over)}")
        return {
            "duration_s": round(end - began, 1),
            "traffic_s": round(traffic, 1),
            "clients": args.clients,
            "workers": args.workers,
            "database": args.database,
            "reports": "eager" if celery is None else f"celery, {args.celery_concurrency} process",
            "warm_up_s": round(warmed, 1),
            "warm_up_gate_checks": warm_gates,
            "cycles": sum(c.cycles for c in clients),
            "requests": len(seen),
            "by_kind": by_kind(seen),
            "5xx": fivexx,
            "unexpected": unexpected,
            "throttled_429": sum(a.status == 429 for a in seen),
            "problems": recorder.problems,
            "memory_baseline_at_s": round(baseline_at, 1),
            "memory": memory,
            "memory_judged": judged,
            "memory_within_target": not over,
            "samples": len(samples),
        }

    def watch(
        self,
        clients: list[Pipeline],
        recorder: Recorder,
        gunicorn: subprocess.Popen[bytes],
        celery: subprocess.Popen[bytes] | None,
        began: float,
    ) -> list[Sample]:
        """Sample memory every ``--sample-seconds`` and print a row a minute until every
        client is done; a process that appears or disappears is a failure."""
        first = watched(gunicorn, celery)
        labels = sorted(first)
        log("RSS in MB per process: " + ", ".join(f"[{i}] {k}" for i, k in enumerate(labels)))
        log(
            f"{'minute':>6} {'requests':>8} {'errors':>6} {'5xx':>4} {'p50 ms':>8} "
            f"{'p99 ms':>8}  " + " ".join(f"{f'[{i}] MB':>9}" for i in range(len(labels)))
        )
        samples: list[Sample] = []
        next_sample, next_minute, replaced = began, 1, False

        def sample() -> Sample:
            nonlocal replaced
            current = watched(gunicorn, celery)
            if set(current) != set(first) and not replaced:
                replaced = True
                self.failures.append(f"server processes changed: {first} -> {current}")
            rss = {k: kb for k, pid in current.items() if (kb := rss_kb(pid)) is not None}
            return Sample(time.monotonic() - began, rss)

        while any(client.is_alive() for client in clients):
            now = time.monotonic()
            if now >= next_sample:
                samples.append(sample())
                next_sample += self.args.sample_seconds
            if now - began >= next_minute * 60:
                log(minute_row(next_minute, recorder.snapshot(), samples[-1], labels))
                next_minute += 1
            time.sleep(min(1.0, max(0.05, next_sample - time.monotonic())))
        for client in clients:
            client.join()
        samples.append(sample())
        if samples[-1].at - (next_minute - 1) * 60 >= 5:
            row = minute_row(next_minute, recorder.snapshot(), samples[-1], labels)
            log(row + "  (last, partial)")
        return samples


def print_summary(figures: dict[str, Any]) -> None:
    log("")
    log(
        f"duration {figures['duration_s']:.0f} s ({figures['traffic_s']:.0f} s of traffic), "
        f"{figures['clients']} clients, {figures['cycles']} cycles, "
        f"{figures['requests']} requests; database {figures['database']}, "
        f"reports {figures['reports']}"
    )
    header = f"{'kind':<26} {'count':>7} {'errors':>7} {'p50 ms':>9} {'p99 ms':>9}  statuses"
    log(header)
    log("-" * len(header))
    for kind, row in figures["by_kind"].items():
        log(
            f"{kind:<26} {row['count']:>7} {row['errors']:>7} {row['p50_ms']:>9.1f} "
            f"{row['p99_ms']:>9.1f}  {row['statuses']}"
        )
    log(
        f"5xx answers: {figures['5xx']}; unexpected answers: {figures['unexpected']}; "
        f"429 (throttled): {figures['throttled_429']}"
    )
    for problem in figures["problems"][:20]:
        log(f"  problem: {problem}")
    log(
        f"resident memory (VmRSS) at {figures['memory_baseline_at_s'] / 60:.1f} min and at the end:"
    )
    for label, m in figures["memory"].items():
        base = f"{m['baseline_kb'] / 1024:.1f} MB" if m["baseline_kb"] else "-"
        end = f"{m['end_kb'] / 1024:.1f} MB" if m["end_kb"] else "-"
        growth = "-" if m["growth_pct"] is None else f"{m['growth_pct']:+.1f} %"
        log(f"  {label:<26} {base:>10} -> {end:>10}  {growth}")
    target = f"within {MEMORY_GROWTH_LIMIT:.0%} from minute 2 to the end"
    if figures["memory_judged"]:
        log(f"memory target ({target}): {'met' if figures['memory_within_target'] else 'MISSED'}")
    else:
        log(f"memory target ({target}): not judged, the run is shorter than 3 minutes")
    if "audit_verify" in figures:
        verified = figures["audit_verify"]
        log(f"audit_verify: {'OK' if verified['ok'] else 'FAILED'} ({verified['output']})")
    if "audit_records" in figures:
        log(f"audit records: {sum(figures['audit_records'].values())} ({figures['audit_records']})")
    log("result: " + ("OK" if figures["ok"] else "FAILED: " + "; ".join(figures["failures"])))


if __name__ == "__main__":
    sys.exit(main())

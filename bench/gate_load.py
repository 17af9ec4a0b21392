"""Benchmark: the CI gate over HTTP against MLflow's model-version lookup, driven by wrk.

In one run, on this machine, one server at a time, each with 2 worker processes:

- **MLflow** (``mlflow server --workers 2``, SQLite store), installed into a throwaway virtual
  environment of its own (never a dependency of Warden): a registered model with one version,
  then ``GET /api/2.0/mlflow/model-versions/get?name=...&version=1``.
- **Warden** under gunicorn with the production ``gunicorn.conf.py`` and the production
  settings (PostgreSQL with persistent connections, Redis cache): the recorded
  ``GET /api/v1/gate``, the unrecorded ``GET /api/v1/gate/status``, the trivial bearer-key
  endpoint ``GET /api/v1/audit/public-key`` (the floor: one key look-up) and an unknown path
  (404 through the whole middleware: the stack's ceiling).

Each endpoint gets a warm-up run, then a measured run of ``--seconds`` (10) at
``--connections`` (16) from Debian's ``wrk``, one connection per wrk thread, with a Lua script
that counts answers per HTTP status and times each request. Prints one table (answers per
second of the expected status, other statuses apart, p50/p99/max) and the ratios against the
targets; then the number of ``gate.checked`` records appended, which must equal the recorded
gate's 200 answers, and the audit chain's verification: exit 1 if either fails. Missed speed
targets are printed; ``--strict`` makes them fail too.

    PYTHONPATH=. .venv/bin/python bench/gate_load.py [--seconds 10] [--connections 16]
        [--workers 2] [--threads N] [--conn-max-age N] [--mlflow-version 3.17.2]
        [--mlflow-venv DIR] [--no-mlflow] [--strict] [--keep]

DATABASE_URL names the server and the database to create (default
postgres://postgres@127.0.0.1:5432/warden_bench_gate); it is dropped at the end unless --keep.
See bench/README.md for what the server runs with and how to read the figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from bench._database import prepare, recreate_database

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/warden_bench_gate"
MLFLOW_VERSION = "3.17.2"
# What each of MLflow 3's uvicorn workers logs once it serves.
UVICORN_READY = "Application startup complete."
REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WARMUP_SECONDS = 2.0
# After the measured seconds: long enough for every request sent before to be answered
# before wrk stops, the slowest included.
TAIL_SECONDS = 4.0
BENCHMARK_KEY_LIMIT = 1_000_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
GATE_OVER_MLFLOW = 1.2
GATE_OVER_FLOOR = 0.6
GATE_P99_MS = 100.0
STATUS_OVER_MLFLOW = 1.5

# wrk's Lua script. Each wrk thread drives one connection, so a thread's one request in flight
# pairs with its next answer. Requests sent in the first `warm-up` seconds (from the thread's
# first request) are warm-up requests, then for `measured` seconds measured ones, both to the
# main path; after that the tail path is asked until wrk stops. The recorded gate's tail is the
# unrecorded status: every recorded request is answered before wrk stops, so the audit log's
# count matches the answers seen exactly. done() merges the threads' counts (thread:get copies
# flat tables only: wrk 4.1 crashes on nested ones) into `warden-wrk` lines that run_wrk reads.
WRK_SCRIPT = r"""
local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } warden_bench_timespec;
int clock_gettime(int clock_id, warden_bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local clock = ffi.new("warden_bench_timespec")

local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) * 1e-9
end

local PHASES = { "warmup", "measured", "tail" }
local threads = {}
local main_request, tail_request, warmup_seconds, measured_seconds, started, sent_at

-- Globals: read from each thread's Lua state by done().
warmup_statuses = {}
measured_statuses = {}
tail_statuses = {}
measured_ms = {}
in_flight = "none"

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  main_request = wrk.format("GET", args[1])
  tail_request = wrk.format("GET", args[2])
  warmup_seconds = tonumber(args[3])
  measured_seconds = tonumber(args[4])
end

function request()
  local moment = now()
  started = started or moment
  local elapsed = moment - started
  if elapsed < warmup_seconds then
    in_flight = "warmup"
  elseif elapsed < warmup_seconds + measured_seconds then
    in_flight = "measured"
  else
    in_flight = "tail"
  end
  sent_at = moment
  if in_flight == "tail" then
    return tail_request
  end
  return main_request
end

function response(status, headers, body)
  local counts = _G[in_flight .. "_statuses"]
  if counts then
    counts[status] = (counts[status] or 0) + 1
    if in_flight == "measured" then
      measured_ms[#measured_ms + 1] = (now() - sent_at) * 1000
    end
  end
  in_flight = "none"
end

function done(summary, latency, requests)
  local merged = { warmup = {}, measured = {}, tail = {} }
  local unanswered = { warmup = 0, measured = 0, tail = 0 }
  local all_ms = {}
  for _, thread in ipairs(threads) do
    for _, phase in ipairs(PHASES) do
      for status, n in pairs(thread:get(phase .. "_statuses")) do
        merged[phase][status] = (merged[phase][status] or 0) + n
      end
    end
    for _, ms in ipairs(thread:get("measured_ms")) do
      all_ms[#all_ms + 1] = ms
    end
    local phase = thread:get("in_flight")
    if unanswered[phase] then
      unanswered[phase] = unanswered[phase] + 1
    end
  end
  for _, phase in ipairs(PHASES) do
    local parts = {}
    for status, n in pairs(merged[phase]) do
      parts[#parts + 1] = status .. ":" .. n
    end
    io.write(string.format("warden-wrk statuses %s %s\n", phase, table.concat(parts, ",")))
    io.write(string.format("warden-wrk unanswered %s %d\n", phase, unanswered[phase]))
  end
  table.sort(all_ms)
  local function rank(fraction)
    if #all_ms == 0 then
      return -1
    end
    return all_ms[math.max(1, math.ceil(#all_ms * fraction))]
  end
  io.write(string.format(
    "warden-wrk latency %d %.3f %.3f %.3f\n", #all_ms, rank(0.5), rank(0.99), rank(1)
  ))
  local e = summary.errors
  io.write(string.format(
    "warden-wrk errors connect:%d,read:%d,write:%d,timeout:%d\n",
    e.connect, e.read, e.write, e.timeout
  ))
end
"""


@dataclass
class Endpoint:
    """One row of the table: what is asked, with which headers, and which status is success."""

    label: str
    base_url: str
    path: str
    tail_path: str
    headers: dict[str, str] = field(default_factory=dict)
    expected: int = 200


@dataclass
class Load:
    """What wrk saw of one endpoint: answers per status in each phase, measured latencies."""

    endpoint: Endpoint
    seconds: float
    statuses: dict[str, Counter[int]]
    unanswered: dict[str, int]
    answered: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: str
    # CPU seconds spent during the run (warm-up, measured and tail) by each part of the stack.
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def answers(self) -> int:
        return sum(sum(counts.values()) for counts in self.statuses.values())

    @property
    def ok(self) -> int:
        return self.statuses["measured"][self.endpoint.expected]

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    def others(self) -> dict[int, int]:
        measured = self.statuses["measured"]
        return {s: n for s, n in sorted(measured.items()) if s != self.endpoint.expected}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def benchmark_key_limit() -> tuple[dict[str, str], str]:
    """The rate limit of the benchmark's keys, above any load this machine can offer: the
    server's environment it needs (none: each key carries its own limit, ``ApiKey.rate_limit``,
    set at creation) and how it is stated in the output."""
    return (
        {},
        f"{BENCHMARK_KEY_LIMIT:,} requests/min per key (the key's own rate_limit; "
        "shipped default API_KEY_RATE_LIMIT_PER_MINUTE=1200)",
    )


def set_up() -> tuple[dict[str, str], str]:
    """A low-risk model version approved for dev, and gate:read keys of service accounts
    (one per endpoint, so that no run inherits another's rate-limit history); everything
    through the services, so it is audited like production data. Returns the keys by
    endpoint and the gate's query string."""
    from django.contrib.auth.models import Group

    from core.accounts.callers import Caller
    from core.accounts.models import User
    from core.roles import Role
    from governance.accounts.roles import sync_role_permissions
    from governance.accounts.services import api_key_create
    from governance.approvals.services import deployment_request_submit
    from registry.services import model_create, model_version_register

    sync_role_permissions()
    team = Group.objects.create(name="bench-team")
    admin = User.objects.create_user(username="bench-admin", is_staff=True, is_superuser=True)
    admin.groups.add(Group.objects.get(name=Role.ADMIN))
    owner = User.objects.create_user(username="bench-owner", first_name="Bench")
    owner.groups.add(team, Group.objects.get(name=Role.DATA_SCIENTIST))
    model = model_create(caller=Caller(user=owner), name="bench-model", risk_tier="low", team=team)
    digest = "sha256:" + "ab" * 32
    version = model_version_register(
        caller=Caller(user=owner),
        model=model,
        artifact_uri="s3://bench/model",
        artifact_digest=digest,
    )
    request = deployment_request_submit(
        caller=Caller(user=owner), version=version, environment="dev", reason="benchmark"
    )
    assert request.state == "approved", request.state
    keys = {}
    for use in ("gate", "status", "floor"):
        ci = User.objects.create_user(username=f"bench-ci-{use}", kind=User.Kind.SERVICE)
        ci.groups.add(team)
        keys[use], _ = api_key_create(
            caller=Caller(user=admin, auth="cli"),
            user=ci,
            name=f"bench {use}",
            scopes=["gate:read"],
            rate_limit=BENCHMARK_KEY_LIMIT,
        )
    query = urlencode(
        {"model": "bench-model", "version": 1, "environment": "dev", "digest": digest}
    )
    return keys, query


def mlflow_environment(version: str, venv: Path | None) -> Path:
    """A virtual environment holding ``mlflow==version`` (``python3.11 -m venv``, then pip),
    under the user's cache unless ``venv`` names one; one already there with that version is
    reused. Never Warden's own environment."""
    if venv is None:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        venv = cache / "warden-bench" / f"mlflow-{version}"
    python = venv / "bin" / "python"
    if python.exists():
        probe = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('mlflow'))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            print(f"MLflow {version}: reusing {venv}")
            return venv
    interpreter = shutil.which("python3.11")
    if interpreter is None:
        raise SystemExit("python3.11 is needed to build MLflow's virtual environment")
    print(f"MLflow {version}: installing into {venv} (once)")
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([interpreter, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"mlflow=={version}"], check=True
    )
    return venv


def start(command: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A server in a process group of its own (so that ``stop`` reaches its children)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group started by ``start``; SIGKILL after 30 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def ask(
    port: int,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: Mapping[str, object] | None = None,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        sent = {**(headers or {}), **({"Content-Type": "application/json"} if payload else {})}
        conn.request(method, path, body=payload, headers=sent)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_answering(
    process: subprocess.Popen[bytes], port: int, path: str, headers: dict[str, str], within: float
) -> None:
    """Until ``path`` answers 200; only a refused connection is retried."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode} before answering")
        try:
            status, body = ask(port, "GET", path, headers=headers)
        except ConnectionRefusedError:
            time.sleep(0.25)
            continue
        if status != 200:
            raise SystemExit(f"{path} answered {status}: {body[:300]!r}")
        return
    raise SystemExit(f"the server did not answer {path} within {within:.0f} s")


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of ``pids`` so far (processes gone are left out)."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    found, pending = [pid], [pid]
    while pending:
        children = children_of(pending.pop())
        found += children
        pending += children
    return found


def postgres_processes() -> list[int]:
    """Every PostgreSQL server process on the machine (the backends serving the run)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def cpu_snapshot(watched: dict[str, Callable[[], list[int]]]) -> dict[str, float]:
    return {name: cpu_seconds(pids()) for name, pids in watched.items()}


def run_wrk(
    endpoint: Endpoint,
    *,
    script: Path,
    connections: int,
    warmup: float,
    seconds: float,
    watched: dict[str, Callable[[], list[int]]] | None = None,
) -> Load:
    """One wrk run: ``warmup`` seconds, then ``seconds`` measured, then the tail; with
    ``watched``, the CPU each watched part and wrk itself spent meanwhile."""
    total = math.ceil(warmup + seconds + TAIL_SECONDS)
    command = [
        shutil.which("wrk") or "/usr/bin/wrk",
        f"--threads={connections}",
        f"--connections={connections}",
        f"--duration={total}s",
        "--timeout=30s",
        f"--script={script}",
        *(f"--header={name}: {value}" for name, value in endpoint.headers.items()),
        endpoint.base_url,
        "--",
        endpoint.path,
        endpoint.tail_path,
        str(warmup),
        str(seconds),
    ]
    before = cpu_snapshot(watched or {})
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, timeout=total + 120, check=False)
    after = cpu_snapshot(watched or {})
    waited = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {name: after[name] - before[name] for name in before}
    cpu["wrk"] = (waited.ru_utime + waited.ru_stime) - (children.ru_utime + children.ru_stime)
    lines = [line.split() for line in done.stdout.splitlines() if line.startswith("warden-wrk ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    statuses: dict[str, Counter[int]] = {}
    unanswered: dict[str, int] = {}
    answered, p50, p99, most, errors = 0, math.nan, math.nan, math.nan, ""
    for _, kind, *values in lines:
        if kind == "statuses":
            phase, *counts = values
            statuses[phase] = Counter(
                {
                    int(s): int(n)
                    for s, n in (c.split(":") for c in ",".join(counts).split(",") if c)
                }
            )
        elif kind == "unanswered":
            unanswered[values[0]] = int(values[1])
        elif kind == "latency":
            answered = int(values[0])
            p50, p99, most = (float(v) for v in values[1:])
        elif kind == "errors":
            errors = values[0]
    return Load(endpoint, seconds, statuses, unanswered, answered, p50, p99, most, errors, cpu)


def measure(
    endpoint: Endpoint,
    *,
    script: Path,
    args: argparse.Namespace,
    watched: dict[str, Callable[[], list[int]]] | None = None,
) -> tuple[Load, Load]:
    """A warm-up run, then the measured run on fresh connections (by then every worker is
    up, so the connections are spread over all of them)."""
    warm = run_wrk(
        endpoint, script=script, connections=args.connections, warmup=WARMUP_SECONDS, seconds=0
    )
    load = run_wrk(
        endpoint,
        script=script,
        connections=args.connections,
        warmup=0,
        seconds=args.seconds,
        watched=watched,
    )
    return warm, load


def mlflow_load(args: argparse.Namespace, workdir: Path, script: Path) -> Load:
    """MLflow's server on a free port with a SQLite store; one registered model, version 1."""
    venv = mlflow_environment(args.mlflow_version, args.mlflow_venv)
    port = free_port()
    store = workdir / "mlflow"
    store.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DJANGO_"))}
    # Without its job runner: seven huey consumers polling the store for GenAI jobs, about a
    # core of this machine's two while idle, nothing to do with a registry look-up.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    server = start(
        [
            str(venv / "bin" / "mlflow"),
            "server",
            f"--workers={args.workers}",
            f"--backend-store-uri=sqlite:///{store}/mlflow.db",
            f"--default-artifact-root={store}/artifacts",
            "--host=127.0.0.1",
            f"--port={port}",
        ],
        env=env,
        log=workdir / "mlflow.log",
    )
    try:
        wait_answering(server, port, "/health", {}, within=300)
        # /health answers once the first worker is up; a worker still importing would take
        # CPU from the measurement.
        log = workdir / "mlflow.log"
        deadline = time.monotonic() + 300
        while log.read_text(errors="replace").count(UVICORN_READY) < args.workers:
            if time.monotonic() > deadline:
                raise SystemExit(f"MLflow's {args.workers} workers did not start within 300 s")
            time.sleep(0.5)
        for path, body in (
            ("/api/2.0/mlflow/registered-models/create", {"name": "bench-model"}),
            (
                "/api/2.0/mlflow/model-versions/create",
                {"name": "bench-model", "source": "s3://bench/model"},
            ),
        ):
            status, answer = ask(port, "POST", path, body=body)
            if status != 200:
                raise SystemExit(f"MLflow answered {status} to {path}: {answer[:300]!r}")
        lookup = "/api/2.0/mlflow/model-versions/get?name=bench-model&version=1"
        status, answer = ask(port, "GET", lookup)
        if status != 200 or json.loads(answer)["model_version"]["version"] != "1":
            raise SystemExit(f"MLflow answered {status} to {lookup}: {answer[:300]!r}")
        print(f"MLflow: mlflow server --workers {args.workers}, SQLite store, no job runner")
        endpoint = Endpoint(
            f"MLflow {args.mlflow_version} GET model-versions/get",
            f"http://127.0.0.1:{port}/",
            lookup,
            lookup,
        )
        watched = {"server": lambda: process_tree(server.pid)}
        return measure(endpoint, script=script, args=args, watched=watched)[1]
    finally:
        stop(server)


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(params)
    return parts._replace(query=urlencode(query)).geturl()


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A Redis of the benchmark's own (cache and broker of the production settings)."""
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server is needed (the production settings cache on Redis)")
    port = free_port()
    process = start(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        env=dict(os.environ),
        log=workdir / "redis.log",
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return process, port
        except OSError:
            time.sleep(0.1)
    stop(process)
    raise SystemExit("redis-server did not answer within 30 s")


def warden_environment(
    args: argparse.Namespace, url: str, port: int, redis_port: int, workdir: Path
) -> dict[str, str]:
    """The production settings, as far as one machine allows (see bench/README.md)."""
    from django.conf import settings

    from audit.notes import generate_signer

    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("DJANGO_", "WARDEN_", "AUDIT_", "CELERY_", "CACHE_", "DATABASE_", "REDIS_", "WEB_")
        )
    }
    database_url = (
        with_query(url, conn_max_age=str(args.conn_max_age))
        if args.conn_max_age is not None
        else url
    )
    env = {
        **inherited,
        "DJANGO_ENV": "prod",
        "DJANGO_SETTINGS_MODULE": "governance.settings.prod",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url,
        "MIGRATION_DATABASE_URL": url,
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "CACHE_URL": f"redis://127.0.0.1:{redis_port}/1",
        "AUDIT_LOG_ORIGIN": settings.AUDIT_LOG_ORIGIN,
        "AUDIT_VERIFICATION_KEYS": generate_signer("bench.localhost")[1],
        "WARDEN_VAR_DIR": str(workdir / "var"),
        "WARDEN_LOG_LEVEL": "WARNING",
        "WARDEN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(args.workers),
        # No worker recycling during the runs: a restart's CPU would be charged to whichever
        # endpoint happened to run (production recycles every 10,000 requests or so).
        "WEB_MAX_REQUESTS": "0",
        **benchmark_key_limit()[0],
    }
    if args.threads:
        env["WEB_THREADS"] = str(args.threads)
    return env


def gunicorn_shown(env: dict[str, str]) -> str:
    """The settings gunicorn will run with, as it reads them from gunicorn.conf.py."""
    printed = subprocess.run(
        [str(BIN / "gunicorn"), f"--config={REPO / 'gunicorn.conf.py'}", "--print-config"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    values = {
        name.strip(): value.strip()
        for name, _, value in (line.partition("=") for line in printed.splitlines())
    }
    shown = ("worker_class", "workers", "threads", "keepalive", "max_requests", "timeout")
    return ", ".join(f"{name}={values.get(name, '?')}" for name in shown)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def verdict(value: float, target: float, *, at_least: bool = True) -> str:
    met = value >= target if at_least else value <= target
    return "met" if met else "MISSED"


def print_table(loads: list[Load]) -> None:
    header = (
        f"{'endpoint':<52} {'status':>6} {'answers/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8}  other statuses (measured run)"
    )
    print(header)
    print("-" * len(header))
    for load in loads:
        others = ", ".join(f"{s}: {n}" for s, n in load.others().items()) or "none"
        if load.errors != "connect:0,read:0,write:0,timeout:0":
            others += f"; socket errors {load.errors}"
        print(
            f"{load.endpoint.label:<52} {load.endpoint.expected:>6} {load.rate:>10.1f} "
            f"{load.p50_ms:>8.2f} {load.p99_ms:>8.2f} {load.max_ms:>8.2f}  {others}"
        )


def print_cpu(loads: list[Load]) -> None:
    """Where each answer's CPU went: the server (gunicorn or MLflow's uvicorn workers),
    PostgreSQL's processes, Redis, and the load generator; against the machine's cores."""
    parts = ("server", "postgres", "redis", "wrk")
    header = f"{'CPU ms per answer (whole run)':<52} " + " ".join(f"{p:>9}" for p in parts)
    print(header + f" {'total':>9}")
    print("-" * (len(header) + 10))
    for load in loads:
        if not load.answers:
            continue
        each = {p: load.cpu.get(p, math.nan) * 1000 / load.answers for p in parts}
        known = sum(v for v in each.values() if not math.isnan(v))
        cells = " ".join(f"{'-' if math.isnan(v) else f'{v:.2f}':>9}" for v in each.values())
        print(f"{load.endpoint.label:<52} {cells} {known:>9.2f}")
    print(f"(this machine has {os.cpu_count()} CPUs: {os.cpu_count() or 1}000 CPU ms a second)")


def print_targets(loads: dict[str, Load]) -> bool:
    """The ratios against the issue's targets; True when every one is met."""
    gate, status, floor = loads["gate"], loads["status"], loads["floor"]
    mlflow = loads.get("mlflow")
    lines = []
    if mlflow and mlflow.rate:
        lines.append(("recorded gate / MLflow get", gate.rate / mlflow.rate, GATE_OVER_MLFLOW))
        lines.append(
            ("unrecorded status / MLflow get", status.rate / mlflow.rate, STATUS_OVER_MLFLOW)
        )
    lines.append(
        (
            "recorded gate / bearer-key floor",
            gate.rate / floor.rate if floor.rate else 0.0,
            GATE_OVER_FLOOR,
        )
    )
    met = True
    for label, ratio, target in lines:
        said = verdict(ratio, target)
        met = met and said == "met"
        print(f"{label}: {ratio:.2f}x (target >= {target}x): {said}")
    said = verdict(gate.p99_ms, GATE_P99_MS, at_least=False)
    met = met and said == "met"
    print(f"recorded gate p99: {gate.p99_ms:.1f} ms (target <= {GATE_P99_MS:.0f} ms): {said}")
    if mlflow is None:
        print("MLflow not measured (--no-mlflow): its ratios are not shown")
        met = False
    return met


def gate_checked_count() -> int:
    from audit.models import AuditRecord

    return AuditRecord.objects.filter(action="gate.checked").count()


def server_connections() -> int:
    """Connections to the benchmark's database other than this process's own."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


def check_endpoints(port: int, paths: dict[str, str], headers: dict[str, dict[str, str]]) -> None:
    """What the loads rely on: the version is allowed, the floor authenticates its key (a
    wrong one is refused), the unknown path is a 404."""
    status, body = ask(port, "GET", paths["status"], headers=headers["status"])
    if status != 200 or json.loads(body).get("allowed") is not True:
        raise SystemExit(f"the gate does not allow the benchmark's version: {status} {body!r}")
    wrong = {**headers["floor"], "Authorization": "Bearer not-a-key"}
    refused, _ = ask(port, "GET", paths["floor"], headers=wrong)
    accepted, body = ask(port, "GET", paths["floor"], headers=headers["floor"])
    if refused != 401 or accepted != 200:
        raise SystemExit(
            f"{paths['floor']} does not authenticate its key: {refused} to a wrong key, "
            f"{accepted} to the right one ({body[:200]!r})"
        )
    unknown, _ = ask(port, "GET", paths["ceiling"], headers=headers["ceiling"])
    if unknown != 404:
        raise SystemExit(f"{paths['ceiling']} answered {unknown}, not 404")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per endpoint")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of each server")
    parser.add_argument(
        "--threads", type=int, default=None, help="threads per gunicorn worker (gunicorn.conf.py's)"
    )
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=None,
        help="CONN_MAX_AGE of the server (default: the production settings'; 0: one connection "
        "per request)",
    )
    parser.add_argument("--mlflow-version", default=MLFLOW_VERSION, help="MLflow from PyPI")
    parser.add_argument(
        "--mlflow-venv", type=Path, default=None, help="MLflow's virtual environment (reused)"
    )
    parser.add_argument("--no-mlflow", action="store_true", help="measure Warden only")
    parser.add_argument("--strict", action="store_true", help="exit 1 on a missed speed target")
    parser.add_argument("--keep", action="store_true", help="keep the database and the logs")
    return parser.parse_args(argv)


@dataclass
class WardenRun:
    """Warden's loads, and what the database held around them."""

    loads: dict[str, Load]
    gate_warmup: Load
    checked_before: int
    checked_after_gate: int
    checked_at_end: int
    connections_held: int


LABELS = {
    "gate": "Warden GET /api/v1/gate (recorded)",
    "status": "Warden GET /api/v1/gate/status (unrecorded)",
    "floor": "Warden GET /api/v1/audit/public-key (bearer key)",
    "ceiling": "Warden unknown path (404, every middleware)",
}


def warden_run(
    args: argparse.Namespace,
    *,
    workdir: Path,
    script: Path,
    env: dict[str, str],
    keys: dict[str, str],
    query: str,
    redis_pid: int,
) -> WardenRun:
    """gunicorn with gunicorn.conf.py and the production settings; the recorded gate first,
    counted in the audit log around its runs, then the other endpoints."""
    from django.db import connection

    paths = {
        "gate": f"/api/v1/gate?{query}",
        "status": f"/api/v1/gate/status?{query}",
        "floor": "/api/v1/audit/public-key",
        "ceiling": "/api/v1/no-such-endpoint",
    }
    # As from the TLS-terminating proxy in front (SECURE_SSL_REDIRECT stays on).
    proxied = {"X-Forwarded-Proto": "https", "Accept": "application/json"}
    headers = {use: {**proxied, "Authorization": f"Bearer {keys[use]}"} for use in keys}
    headers["ceiling"] = proxied
    port = int(env["WARDEN_BIND"].rsplit(":", 1)[1])
    base = f"http://127.0.0.1:{port}/"
    server = start(
        [str(BIN / "gunicorn"), f"--config={REPO / 'gunicorn.conf.py'}"],
        env=env,
        log=workdir / "gunicorn.log",
    )
    try:
        wait_answering(server, port, paths["status"], headers["status"], within=120)
        deadline = time.monotonic() + 60
        while len(children_of(server.pid)) < args.workers and time.monotonic() < deadline:
            time.sleep(0.2)
        check_endpoints(port, paths, headers)
        checked_before = gate_checked_count()
        connection.close()
        gate = Endpoint(LABELS["gate"], base, paths["gate"], paths["status"], headers["gate"])
        loads: dict[str, Load] = {}
        watched = {
            "server": lambda: process_tree(server.pid),
            "postgres": postgres_processes,
            "redis": lambda: [redis_pid],
        }
        gate_warmup, loads["gate"] = measure(gate, script=script, args=args, watched=watched)
        checked_after_gate = gate_checked_count()
        held = server_connections()
        connection.close()
        for name in ("status", "floor", "ceiling"):
            expected = 404 if name == "ceiling" else 200
            endpoint = Endpoint(
                LABELS[name], base, paths[name], paths[name], headers[name], expected
            )
            loads[name] = measure(endpoint, script=script, args=args, watched=watched)[1]
        checked_at_end = gate_checked_count()
        connection.close()
    finally:
        stop(server)
    return WardenRun(loads, gate_warmup, checked_before, checked_after_gate, checked_at_end, held)


def check_records(run: WardenRun) -> bool:
    """Every recorded gate check answered 200 has exactly one ``gate.checked`` record, nothing
    else records one, and the chain verifies."""
    from audit.verification import verify_log

    gate = run.loads["gate"]
    answered_ok = run.gate_warmup.statuses["warmup"][200] + gate.statuses["measured"][200]
    recorded = run.checked_after_gate - run.checked_before
    unanswered = run.gate_warmup.unanswered["warmup"] + gate.unanswered["measured"]
    report = verify_log()
    print(
        f"gate.checked records during the gate's runs: {recorded} "
        f"(200 answers: {answered_ok}, warm-up included); afterwards: "
        f"{run.checked_at_end - run.checked_after_gate} (the other endpoints record nothing)"
    )
    print(
        f"verify_log() after the run: {'OK' if report.ok else 'FAILED'}, {report.records:,} records"
    )
    ok = report.ok
    if unanswered:
        print(f"FAILED: {unanswered} recorded requests were still unanswered when wrk stopped")
        ok = False
    if recorded != answered_ok or run.checked_at_end != run.checked_after_gate:
        print("FAILED: the audit log does not hold exactly one record per answered check")
        ok = False
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    if shutil.which("wrk") is None and not Path("/usr/bin/wrk").exists():
        raise SystemExit("wrk is needed (Debian: apt-get install -y wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="warden-bench-gate-"))
    script = workdir / "gate_load.lua"
    script.write_text(WRK_SCRIPT)
    print(f"logs and the wrk script: {workdir}")
    load_before = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    mlflow = None if args.no_mlflow else mlflow_load(args, workdir, script)

    url, shown = prepare(DEFAULT_URL)
    from django.db import connection

    keys, query = set_up()
    connection.close()
    redis, redis_port = start_redis(workdir)
    # Where collectstatic would put the files WhiteNoise serves (no page is asked for here).
    (workdir / "var" / "static").mkdir(parents=True)
    try:
        env = warden_environment(args, url, free_port(), redis_port, workdir)
        print(
            f"PostgreSQL {shown['server_version']} at {urlsplit(url).hostname}: "
            f"fsync={shown['fsync']} synchronous_commit={shown['synchronous_commit']} "
            f"wal_sync_method={shown['wal_sync_method']}; {os.cpu_count()} CPUs; "
            f"load average {load_before} before the run"
        )
        print(f"Warden: gunicorn.conf.py with {gunicorn_shown(env)}; DJANGO_ENV=prod")
        print(f"benchmark key limit: {benchmark_key_limit()[1]}")
        run = warden_run(
            args, workdir=workdir, script=script, env=env, keys=keys, query=query,
            redis_pid=redis.pid,
        )  # fmt: skip
    finally:
        stop(redis)
    load_after = ", ".join(f"{value:.2f}" for value in os.getloadavg())

    print(
        f"{args.connections} connections (one per wrk thread), {WARMUP_SECONDS:.0f} s warm-up "
        f"run, then {args.seconds:g} s measured per endpoint; load average {load_after} after"
    )
    loads = {**({"mlflow": mlflow} if mlflow else {}), **run.loads}
    print_table(list(loads.values()))
    print()
    print_cpu(list(loads.values()))
    print()
    print(f"PostgreSQL connections held by the web workers after the gate: {run.connections_held}")
    targets_met = print_targets(loads)
    failed = not check_records(run)
    if args.strict and not targets_met:
        print("FAILED: a speed target was missed (--strict)")
        failed = True
    connection.close()
    if args.keep:
        print(f"kept: {url} and {workdir}")
    else:
        recreate_database(url, drop_only=True)
        if not failed:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

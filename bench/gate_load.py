"""Benchmark: gate checks per second over HTTP against gunicorn (2 workers, PostgreSQL).

Creates a database of its own, migrates it, registers a model version approved for ``dev``
and a service account key with the scope ``gate:read``, starts
``gunicorn governance.wsgi -w 2`` on a free port of 127.0.0.1, and drives
``GET /api/v1/gate`` with ``--connections`` (16) client threads, each on its own keep-alive
``http.client`` connection, for ``--seconds`` (10). Prints checks/s and p50/p99 latency
against the target (at least 500 checks/s, p99 under 50 ms), beside the server's ``fsync`` and
``synchronous_commit`` (every check appends an audit record). Then counts the
``gate.checked`` records, which must equal the number of 200 answers, and re-verifies the
audit chain; exit 1 otherwise.

    PYTHONPATH=. .venv/bin/python bench/gate_load.py [--seconds 10] [--connections 16]
        [--workers 2] [--worker-class sync|gthread] [--threads 1] [--keep] [--baselines]

``--baselines`` then drives the same server with the unrecorded ``/api/v1/gate/status`` and
the database-free ``/api/v1/audit/public-key``: the ceiling of this machine and stack.

DATABASE_URL names the server and the database to create (default
postgres://postgres@127.0.0.1:5432/warden_bench_gate); it is dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from bench._database import prepare, recreate_database

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/warden_bench_gate"
TARGET_RATE = 500.0
TARGET_P99_MS = 50.0
REPO = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"


@dataclass
class Worker:
    """What one client thread saw."""

    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    connections: int = 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def set_up() -> tuple[str, str]:
    """A low-risk model version approved for dev, and a gate:read key of a service account;
    everything through the services, so it is audited like production data."""
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
    ci = User.objects.create_user(username="bench-ci", kind=User.Kind.SERVICE)
    ci.groups.add(team)
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
    key, _ = api_key_create(
        caller=Caller(user=admin, auth="cli"), user=ci, name="bench gate", scopes=["gate:read"]
    )
    query = urlencode(
        {"model": "bench-model", "version": 1, "environment": "dev", "digest": digest}
    )
    return key, f"/api/v1/gate?{query}"


def start_gunicorn(args: argparse.Namespace, url: str, port: int) -> subprocess.Popen[bytes]:
    # CONN_MAX_AGE=0 as shipped opens a PostgreSQL connection per request; --conn-max-age
    # keeps them (database_from_url reads it from the URL).
    server_url = f"{url}?conn_max_age={args.conn_max_age}" if args.conn_max_age else url
    env = {
        **os.environ,
        "DATABASE_URL": server_url,
        "DJANGO_ENV": "test",
        "DJANGO_SETTINGS_MODULE": os.environ["DJANGO_SETTINGS_MODULE"],
        "WARDEN_LOG_LEVEL": "WARNING",
    }
    command = [
        str(GUNICORN),
        "governance.wsgi",
        "-w",
        str(args.workers),
        "-b",
        f"127.0.0.1:{port}",
        "--worker-class",
        args.worker_class,
        "--threads",
        str(args.threads),
        "--keep-alive",
        "30",
        "--log-level",
        "warning",
    ]
    log = Path(tempfile.gettempdir()) / f"warden-bench-gunicorn-{port}.log"
    print(f"gunicorn log: {log}")
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_ready(port: int, key: str, path: str, deadline: float) -> None:
    """One check once gunicorn listens. Only a refused connection is retried: a timed-out
    request would still be served later and leave an extra record."""
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            conn.request("GET", path, headers={"Authorization": f"Bearer {key}"})
        except ConnectionRefusedError:
            time.sleep(0.2)
            continue
        response = conn.getresponse()
        response.read()
        conn.close()
        if response.status != 200:
            raise SystemExit(f"gunicorn answered {response.status} to the first check")
        return
    raise SystemExit("gunicorn did not listen within 30 s")


def drive(port: int, key: str, path: str, seconds: float, connections: int) -> list[Worker]:
    headers = {
        "Authorization": f"Bearer {key}",
        "Accept": "application/json",
        "User-Agent": "warden-bench-gate",
        "Connection": "keep-alive",
    }
    workers = [Worker() for _ in range(connections)]
    start = threading.Barrier(connections + 1)
    stop_at: list[float] = []

    def run(worker: Worker) -> None:
        conn: http.client.HTTPConnection | None = None
        start.wait()
        while time.perf_counter() < stop_at[0]:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                worker.connections += 1
            began = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                worker.errors[type(exc).__name__] += 1
                conn.close()
                conn = None
                continue
            worker.latencies_ms.append((time.perf_counter() - began) * 1000)
            worker.statuses[response.status] += 1
            if response.will_close:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    stop_at.append(time.perf_counter() + seconds)
    start.wait()
    for thread in threads:
        thread.join()
    return workers


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def print_figures(
    args: argparse.Namespace, workers: list[Worker], elapsed: float, shown: dict[str, str]
) -> tuple[int, dict[int, int], Counter[str]]:
    """Print the run's figures against the targets; the 200 count and what else came back."""
    latencies = sorted(ms for w in workers for ms in w.latencies_ms)
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    for w in workers:
        statuses.update(w.statuses)
        errors.update(w.errors)
    ok = statuses.get(200, 0)
    rate = ok / elapsed
    p50 = statistics.median(latencies) if latencies else float("nan")
    p99 = percentile(latencies, 0.99) if latencies else float("nan")
    opened = sum(w.connections for w in workers)
    print(
        f"gunicorn -w {args.workers} --worker-class {args.worker_class} --threads "
        f"{args.threads}; {args.connections} client connections for {elapsed:.1f} s "
        f"({opened} TCP connections opened)"
    )
    header = f"{'checks':>8} {'checks/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    print(header)
    print("-" * len(header))
    print(
        f"{ok:>8} {rate:>9.1f} {p50:>8.2f} {p99:>8.2f} "
        f"{(latencies[-1] if latencies else float('nan')):>8.2f}"
    )
    print(
        f"target >= {TARGET_RATE:.0f} checks/s: {'met' if rate >= TARGET_RATE else 'MISSED'}; "
        f"p99 < {TARGET_P99_MS:.0f} ms: {'met' if p99 < TARGET_P99_MS else 'MISSED'} "
        f"(with fsync={shown['fsync']}, synchronous_commit={shown['synchronous_commit']})"
    )
    others = {status: n for status, n in statuses.items() if status != 200}
    if others or errors:
        print(f"other answers: {dict(others)}; client errors: {dict(errors)}")

    return ok, others, errors


def drive_baselines(args: argparse.Namespace, port: int, key: str, path: str) -> list[str]:
    """The same load on the unrecorded status of the same question, then on an endpoint that
    reads no database: one line each."""
    lines = []
    status_path = path.replace("/api/v1/gate?", "/api/v1/gate/status?")
    for label, other in (
        ("GET /api/v1/gate/status (nothing recorded)", status_path),
        ("GET /api/v1/audit/public-key (no database)", "/api/v1/audit/public-key"),
    ):
        began = time.perf_counter()
        seen = drive(port, key, other, args.seconds, args.connections)
        took = time.perf_counter() - began
        answered = sorted(ms for w in seen for ms in w.latencies_ms)
        statuses: Counter[int] = Counter()
        for w in seen:
            statuses.update(w.statuses)
        lines.append(
            f"baseline {label}: {statuses.get(200, 0) / took:.1f} answers/s, "
            f"p50 {statistics.median(answered):.2f} ms, p99 {percentile(answered, 0.99):.2f} ms"
            + (f"; other answers {dict(statuses)}" if set(statuses) - {200} else "")
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the run")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker")
    parser.add_argument(
        "--conn-max-age", type=int, default=0, help="CONN_MAX_AGE of the server (0 as shipped)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--baselines",
        action="store_true",
        help="then drive the same server with GET /api/v1/gate/status (the same decision, "
        "nothing recorded) and GET /api/v1/audit/public-key (no database, no key): what this "
        "machine and stack serve at most",
    )
    args = parser.parse_args(argv)

    url, shown = prepare(DEFAULT_URL)
    from django.db import connection

    from audit.models import AuditRecord
    from audit.verification import verify_log

    key, path = set_up()
    load_before = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"PostgreSQL {shown['server_version']} at {urlsplit(url).hostname}: "
        f"fsync={shown['fsync']} synchronous_commit={shown['synchronous_commit']} "
        f"wal_sync_method={shown['wal_sync_method']}; {os.cpu_count()} CPUs; "
        f"load average {load_before} before the run"
    )
    connection.close()
    port = free_port()
    server = start_gunicorn(args, url, port)
    try:
        wait_ready(port, key, path, time.monotonic() + 30)
        checked_before = AuditRecord.objects.filter(action="gate.checked").count()
        connection.close()
        began = time.perf_counter()
        workers = drive(port, key, path, args.seconds, args.connections)
        elapsed = time.perf_counter() - began
        baselines = drive_baselines(args, port, key, path) if args.baselines else []
    finally:
        server.terminate()
        server.wait(timeout=30)
    load_after = ", ".join(f"{value:.2f}" for value in os.getloadavg())

    ok, others, errors = print_figures(args, workers, elapsed, shown)
    print(f"load average {load_after} after the run")
    for line in baselines:
        print(line)

    recorded = AuditRecord.objects.filter(action="gate.checked").count() - checked_before
    report = verify_log()
    print(f"gate.checked records during the run: {recorded} (200 answers: {ok})")
    print(
        f"verify_log() after the run: {'OK' if report.ok else 'FAILED'}, {report.records:,} records"
    )
    connection.close()
    if not args.keep:
        recreate_database(url, drop_only=True)
    failed = recorded != ok or not report.ok or bool(others) or bool(errors)
    if recorded != ok:
        print("FAILED: the audit log does not hold exactly one record per answered check")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

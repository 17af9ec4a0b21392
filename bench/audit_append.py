"""Benchmark: audited registry writes per second with concurrent writer processes.

A write is one ``registry.services.dataset_version_register`` call (permission check, lock
the dataset row, duplicate and version queries, insert, then the audit append: the log's head
read under its lock and one statement that inserts the record and advances the head; one
durable transaction). Each writer is a process of its own with its own connection and its own
dataset, so the only lock writers share is the audit log's. The same workload runs again with
``audit.services.audit_append`` replaced by a no-op, in the same run (and refused if it
appended anything), and the table shows the ratio. PostgreSQL's ``fsync`` and
``synchronous_commit`` are printed beside the figures: with the log's lock held until commit,
every audited write waits for its own WAL flush.

    PYTHONPATH=. .venv/bin/python bench/audit_append.py [--writers 1,8,32] [--seconds 5]
        [--rounds 3] [--keep]

DATABASE_URL names the server and the database to create (default
postgres://postgres@127.0.0.1:5432/warden_bench); it is dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bench._database import prepare, recreate_database

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/warden_bench"
TARGET_RATE_AT_8 = 2000
TARGET_RATIO = 0.7
SCHEMA = {"age": "integer", "income": "float", "region": "categorical", "default": "boolean"}


def setup_writers(count: int, label: str) -> list[tuple[int, int]]:
    """A data scientist and a dataset of their own per writer: ``[(user pk, dataset pk)]``."""
    from django.contrib.auth.models import Group

    from core.accounts.callers import Caller
    from core.accounts.models import User
    from core.roles import Role
    from governance.accounts.roles import sync_role_permissions
    from registry.services import dataset_create

    sync_role_permissions()
    scientists = Group.objects.get(name=Role.DATA_SCIENTIST)
    out = []
    for index in range(count):
        user, _ = User.objects.get_or_create(
            username=f"bench-{label}-{index}", defaults={"first_name": "Bench", "last_name": label}
        )
        user.groups.add(scientists)
        dataset = dataset_create(
            caller=Caller(user=user), name=f"bench-{label}-{index}", source_uri="s3://bench/data"
        )
        out.append((user.pk, dataset.pk))
    return out


@dataclass(frozen=True)
class WriterTask:
    user_pk: int
    dataset_pk: int
    audited: bool
    seconds: float


def _no_append(*, events: Any, using: str = "default") -> list[None]:
    """The unaudited writers' ``audit_append``: nothing is written, nothing is locked."""
    return [None] * len(events)


def writer(task: WriterTask, start: Any, results: Any) -> None:
    """One writer process: register dataset versions until the time is up."""
    from django.db import connections

    connections.close_all()  # a connection of its own, never one inherited from the parent
    import audit.services
    import registry.services
    from core.accounts.callers import Caller
    from core.accounts.models import User
    from registry.models import Dataset

    if not task.audited:
        # Replaced where every service's record goes through (``audit_record`` calls it), so
        # the baseline skips exactly the append; ``main`` checks that it appended nothing.
        audit.services.audit_append = _no_append  # type: ignore[assignment]
    caller = Caller(user=User.objects.get(pk=task.user_pk))
    dataset = Dataset.objects.get(pk=task.dataset_pk)
    caller.user.has_perm("registry.add_dataset")  # warm the permission cache, as a request would
    latencies: list[float] = []
    run_id = os.urandom(8).hex()  # digests never repeat across configurations
    start.wait()
    began = time.perf_counter()
    deadline = began + task.seconds
    n = 0
    while time.perf_counter() < deadline:
        digest = hashlib.sha256(f"{run_id}-{n}".encode()).hexdigest()
        t0 = time.perf_counter()
        registry.services.dataset_version_register(
            caller=caller,
            dataset=dataset,
            content_digest=f"sha256:{digest}",
            row_count=100_000 + n,
            schema=SCHEMA,
        )
        latencies.append(time.perf_counter() - t0)
        n += 1
    results.put((n, time.perf_counter() - began, latencies))


def _writer_process(task: WriterTask, start: Any, results: Any) -> None:
    from django.db import connections

    try:
        writer(task, start, results)
    except BaseException as exc:
        start.abort()  # release the others from the barrier
        results.put(exc)
        raise
    finally:
        connections.close_all()


def _run_once(
    writers: list[tuple[int, int]], *, audited: bool, seconds: float
) -> tuple[int, float, list[float]]:
    import multiprocessing

    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    start = context.Barrier(len(writers))
    results = context.Queue()
    processes = [
        context.Process(
            target=_writer_process,
            args=(WriterTask(user, dataset, audited, seconds), start, results),
            daemon=True,
        )
        for user, dataset in writers
    ]
    for process in processes:
        process.start()
    done = [results.get() for _ in processes]
    for process in processes:
        process.join()
    failures = [item for item in done if isinstance(item, BaseException)]
    if failures:
        raise SystemExit(f"{len(failures)} writer(s) failed: {failures[0]!r}")
    writes = sum(n for n, _, _ in done)
    elapsed = max(seconds for _, seconds, _ in done)
    return writes, elapsed, [value for _, _, values in done for value in values]


def _figures(slices: list[tuple[int, float, list[float]]]) -> dict[str, float]:
    writes = sum(n for n, _, _ in slices)
    elapsed = sum(seconds for _, seconds, _ in slices)
    latencies = sorted(value for _, _, values in slices for value in values)
    return {
        "writes": writes,
        "rate": writes / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def run_pair(
    audited_writers: list[tuple[int, int]],
    plain_writers: list[tuple[int, int]],
    *,
    seconds: float,
    rounds: int,
) -> tuple[dict[str, float], dict[str, float]]:
    """Audited and unaudited figures, from ``rounds`` alternating slices of each (so that a
    change in the machine's load during the run weighs on both alike); refuses a baseline
    that appended a record."""
    from audit.models import AuditRecord

    audited, plain = [], []
    for _ in range(rounds):
        audited.append(_run_once(audited_writers, audited=True, seconds=seconds / rounds))
        records_before = AuditRecord.objects.count()
        plain.append(_run_once(plain_writers, audited=False, seconds=seconds / rounds))
        if AuditRecord.objects.count() != records_before:
            raise SystemExit("the unaudited run appended records: it is no baseline")
    return _figures(audited), _figures(plain)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", default="1,8,32", help="writer process counts")
    parser.add_argument("--seconds", type=float, default=5.0, help="per configuration")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating audited/unaudited slices per config"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    counts = [int(count) for count in args.writers.split(",")]

    url, settings_shown = prepare(DEFAULT_URL)
    from django.db import connection

    from audit.models import AuditRecord
    from audit.verification import verify_log

    most = max(counts)
    audited_writers = setup_writers(most, "audited")
    plain_writers = setup_writers(most, "plain")

    shown = settings_shown
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"PostgreSQL {shown['server_version']} at {urlsplit(url).hostname}: "
        f"fsync={shown['fsync']}, synchronous_commit={shown['synchronous_commit']}, "
        f"wal_sync_method={shown['wal_sync_method']}"
    )
    print(
        f"{os.cpu_count()} CPUs, load average {load} before the run; "
        f"{args.seconds:g} s per configuration, audited and unaudited alternating in "
        f"{args.rounds} rounds"
    )
    print("write = registry.services.dataset_version_register, one durable transaction\n")
    header = (
        f"{'writers':>7} {'audited w/s':>12} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'unaudited w/s':>14} {'p50 ms':>7} {'p99 ms':>7} {'ratio':>6}  targets"
    )
    print(header)
    print("-" * len(header))
    audited_total = 0
    for count in counts:
        audited, plain = run_pair(
            audited_writers[:count], plain_writers[:count], seconds=args.seconds, rounds=args.rounds
        )
        audited_total += int(audited["writes"])
        ratio = audited["rate"] / plain["rate"]
        targets = f"ratio >= {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'MISSED'}"
        if count == 8:
            met = "met" if audited["rate"] >= TARGET_RATE_AT_8 else "MISSED"
            targets = f">= {TARGET_RATE_AT_8} audited w/s: {met}; {targets}"
        print(
            f"{count:>7} {audited['rate']:>12,.0f} {audited['p50']:>7.1f} {audited['p99']:>7.1f} "
            f"{plain['rate']:>14,.0f} {plain['p50']:>7.1f} {plain['p99']:>7.1f} {ratio:>6.2f}  "
            f"{targets}"
        )

    report = verify_log()
    versions = AuditRecord.objects.filter(action="dataset_version.registered").count()
    print(
        f"\nverify_log() after the run: {'OK' if report.ok else 'FAILED'}, "
        f"{report.records:,} records; {versions:,} dataset_version.registered records for "
        f"{audited_total:,} audited writes"
    )
    connection.close()
    if not args.keep:
        recreate_database(url, drop_only=True)
    return 0 if report.ok and versions == audited_total else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: in-service verification of the audit log (``audit.verification.verify_log``).

Builds a log of 100,000 and then 1,000,000 records in a PostgreSQL database of its own
(created and dropped here), times ``verify_log()`` with every check on, and prints records/s
against the target of 200,000/s. The records are made the way ``audit_append`` makes them
(its event builder, canonical bytes, a correct chain, the head row) but loaded with COPY,
bypassing the service for speed.

    PYTHONPATH=. .venv/bin/python bench/audit_verify.py [--sizes 100000,1000000] [--workers N]
                                                        [--keep]

Each size is verified twice: in one process, and with the body checks spread over --workers
processes (default: one per CPU; the chain checks stay in order in the main process).

DATABASE_URL names the server and the database to create (default
postgres://postgres@127.0.0.1:5432/warden_bench_verify); it is dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from bench._database import prepare, recreate_database

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/warden_bench_verify"
TARGET = 200_000
COLUMNS = (
    "log, seq, prev, leaf, body, ts, action, actor_type, actor_id, object_type, object_id, "
    "scope_model"
)


def templates(count: int) -> list[dict[str, Any]]:
    """Event fields exactly as ``audit_append`` builds them, for a mix of registry events."""
    from audit.canonical import pairs
    from audit.services import AuditEvent, Subject, _event_fields
    from core.actors import Actor

    people = [Actor(type="user", id=str(i), name=f"Person {i}", auth="session") for i in range(20)]
    ci = Actor(type="service", id="99", name="ci-credit", auth="api_key:1a2b3c4d")
    out = []
    for i in range(count):
        model = f"model-{i % 40}"
        if i % 3 == 0:
            event = AuditEvent(
                action="dataset_version.registered",
                actor=people[i % 20],
                object=Subject(type="dataset_version", id=str(i), label=f"loans-{i % 7} v{i}"),
                data={
                    "dataset": f"loans-{i % 7}",
                    "version": i,
                    "source_uri": f"s3://data/loans/{i}.parquet",
                    "content_digest": "sha256:" + hashlib.sha256(str(i).encode()).hexdigest(),
                    "row_count": 100_000 + i,
                    "schema": pairs({"age": "integer", "income": "float", "region": "string"}),
                    "pii": bool(i % 2),
                },
            )
        elif i % 3 == 1:
            event = AuditEvent(
                action="model_version.registered",
                actor=ci,
                object=Subject(type="model_version", id=str(i), label=f"{model} v{i}"),
                scope={"model": model, "version": i},
                data={
                    "model": model,
                    "version": i,
                    "artifact_uri": f"s3://models/{model}/{i}",
                    "artifact_digest": "sha256:" + hashlib.sha256(b"m%d" % i).hexdigest(),
                    "framework": "xgboost",
                    "parameters": pairs({"max_depth": 6, "eta": 0.1, "subsample": 0.8}),
                    "metrics": pairs({"auc": 0.8123, "ks": 0.41}),
                    "source_commit": hashlib.sha1(b"%d" % i).hexdigest(),  # noqa: S324
                    "author": str(i % 20),
                    "status": "registered",
                    "datasets": [{"dataset": "loans-1", "version": 3, "role": "training"}],
                },
            )
        else:
            event = AuditEvent(
                action="registered_model.updated",
                actor=people[(i + 3) % 20],
                object=Subject(type="registered_model", id=str(i % 40), label=model),
                scope={"model": model},
                data={"before": {"description": "Old text"}, "after": {"description": "Café ☕"}},
                reason="clarified the intended use",
                context={"request_id": f"req-{i}"},
            )
        out.append(_event_fields(event))
    return out


def load(start: int, count: int, prev: str, last_ts: str) -> tuple[str, str, float]:
    """Append ``count`` records after ``start`` with COPY; returns (tip, last_ts, seconds)."""
    from django.conf import settings
    from django.db import connection

    from audit.canonical import TIMESTAMP_FORMAT, dumps
    from audit.services import leaf_hash

    origin = settings.AUDIT_LOG_ORIGIN
    fields_cycle = templates(997)
    epoch = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    began = time.perf_counter()
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor  # the psycopg cursor underneath
        with cursor.copy(f"COPY audit_auditrecord ({COLUMNS}) FROM STDIN") as copy:
            for seq in range(start, start + count):
                fields = fields_cycle[seq % len(fields_cycle)]
                moment = epoch + dt.timedelta(milliseconds=seq)
                stamp = moment.strftime(TIMESTAMP_FORMAT)
                body = dumps({**fields, "log": origin, "seq": seq, "ts": stamp, "prev": prev})
                leaf = leaf_hash(body)
                copy.write_row(
                    (
                        origin,
                        seq,
                        prev,
                        leaf,
                        body.decode("utf-8"),
                        moment,
                        fields["action"],
                        fields["actor"]["type"],
                        fields["actor"]["id"],
                        fields["object"]["type"],
                        fields["object"]["id"],
                        str(fields["scope"].get("model", "")),
                    )
                )
                prev, last_ts = leaf, stamp
        cursor.execute(
            "INSERT INTO audit_loghead (log, size, tip, last_ts) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (log) DO UPDATE SET size = EXCLUDED.size, tip = EXCLUDED.tip, "
            "last_ts = EXCLUDED.last_ts",
            [origin, start + count, prev, last_ts],
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE audit_auditrecord")
    return prev, last_ts, time.perf_counter() - began


def fetch_only() -> float:
    """Seconds to read every (seq, leaf, body) the way verify_log does, with no checks."""
    from django.conf import settings
    from django.db import connection

    from audit.verification import CHUNK

    began = time.perf_counter()
    last = -1
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT seq, leaf, body FROM audit_auditrecord WHERE log = %s AND seq > %s "
                "ORDER BY seq LIMIT %s",
                [settings.AUDIT_LOG_ORIGIN, last, CHUNK],
            )
            rows = cursor.fetchall()
            if not rows:
                break
            last = rows[-1][0]
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="log sizes to verify")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="also time verify_log(workers=N) (default: the number of CPUs)",
    )
    args = parser.parse_args(argv)
    sizes = sorted(int(size) for size in args.sizes.split(","))

    url, shown = prepare(DEFAULT_URL)
    from django.db import connection

    from audit.verification import verify_log

    fsync, sync, version = shown["fsync"], shown["synchronous_commit"], shown["server_version"]
    print(
        f"PostgreSQL {version} at {urlsplit(url).hostname}; fsync={fsync}, "
        f"synchronous_commit={sync}; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}"
    )
    load_average = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average {load_average} before the run")
    print("verify_log(): canonical bytes, profile, fields, seq, prev chain, times, signature")
    print("records, stored leaf column, log head; every check on.")
    print("fetch s: reading (seq, leaf, body) alone, as verify_log does, for comparison.\n")
    header = (
        f"{'records':>10} {'load s':>7} {'fetch s':>8} {'workers':>7} {'verify s':>9} "
        f"{'records/s':>10} {'target':>8}  result"
    )
    print(header)
    print("-" * len(header))

    built, prev, last_ts = 0, "0" * 64, ""
    failed = False
    for size in sizes:
        prev, last_ts, load_seconds = load(built, size - built, prev, last_ts)
        built = size
        fetch_seconds = fetch_only()
        for workers in sorted({1, args.workers}):
            began = time.perf_counter()
            report = verify_log(workers=workers)
            seconds = time.perf_counter() - began
            rate = report.records / seconds
            ok = report.ok and report.records == size
            failed |= not ok
            verdict = "OK" if ok else f"FAILED {report.findings[:3]}"
            met = "met" if rate >= TARGET else "MISSED"
            print(
                f"{size:>10,} {load_seconds:>7.1f} {fetch_seconds:>8.2f} {workers:>7} "
                f"{seconds:>9.2f} {rate:>10,.0f} {TARGET:>8,}  {met}; chain {verdict}"
            )
    connection.close()
    if not args.keep:
        recreate_database(url, drop_only=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

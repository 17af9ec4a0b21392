"""Concurrent audit writers for the concurrency tests, run as a program of its own:

    DJANGO_SETTINGS_MODULE=governance.settings.test DATABASE_URL=... \\
        python -m tests.audit.writers --writers 8 --transactions 200 [--rollback 0.3] [--unlocked]

Django is set up once, then each writer is a forked process that opens its own database
connection. They start together behind a barrier and append through ``audit_append`` inside
``transaction.atomic`` (or, with ``--unlocked``, through a deliberately unlocked appender that
reads the tip and inserts without holding the log's lock). The report on stdout is JSON: what
each writer committed, rolled back or had refused, and ``verify_log()`` of the result.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sys
import traceback
from multiprocessing.synchronize import Barrier
from typing import Any


class Abort(Exception):
    """Raised by a writer to roll back a transaction after it appended."""


def _event(writer: int, n: int, part: int = 0) -> Any:
    from audit.services import AuditEvent, Subject
    from core.actors import SYSTEM_ACTOR

    return AuditEvent(
        action="test.concurrent_append",
        actor=SYSTEM_ACTOR,
        object=Subject(type="writer", id=str(writer), label=f"writer {writer}"),
        data={"writer": writer, "n": n, "part": part},
    )


def locked_writer(writer: int, args: argparse.Namespace, barrier: Barrier) -> dict[str, Any]:
    """Append through the service; roll back a share of the transactions after appending."""
    from django.db import transaction

    from audit.services import audit_append

    rng = random.Random(args.seed * 1000 + writer)
    committed: list[int] = []
    rolled_back: list[int] = []
    barrier.wait()
    for n in range(args.transactions):
        events = [_event(writer, n, part) for part in range(args.events)]
        try:
            with transaction.atomic(durable=True):
                records = audit_append(events=events)
                assert len(records) == args.events
                if rng.random() < args.rollback:
                    raise Abort
        except Abort:
            rolled_back.append(n)
        else:
            committed.append(n)
    return {"writer": writer, "committed": committed, "rolled_back": rolled_back, "refused": 0}


def unlocked_writer(writer: int, args: argparse.Namespace, barrier: Barrier) -> dict[str, Any]:
    """The negative control: read the tip without the lock, then insert at the seq after it.

    Each round, every writer reads the same tip (nobody inserts before the barrier), so every
    writer builds a record for the same seq with the same prev. Only the constraints
    ``UNIQUE(log, seq)`` and ``UNIQUE(log, prev)`` stand between them and a fork.
    """
    import datetime as dt

    from django.conf import settings
    from django.db import IntegrityError, transaction

    from audit.canonical import TIMESTAMP_FORMAT, dumps, format_timestamp
    from audit.models import AuditRecord, LogHead
    from audit.services import GENESIS_PREV, _event_fields, leaf_hash

    origin = settings.AUDIT_LOG_ORIGIN
    committed: list[int] = []
    refused = 0
    for n in range(args.transactions):
        tip = (
            AuditRecord.objects.filter(log=origin)
            .order_by("-seq")
            .values_list("seq", "leaf", "body")
            .first()
        )
        seq, prev = (tip[0] + 1, tip[1]) if tip else (0, GENESIS_PREV)
        last_ts = json.loads(tip[2])["ts"] if tip else ""
        barrier.wait()  # everyone has read the same tip
        fields = _event_fields(_event(writer, n))
        stamp = max(format_timestamp(dt.datetime.now(dt.UTC)), last_ts)
        body = dumps({**fields, "log": origin, "seq": seq, "ts": stamp, "prev": prev})
        try:
            with transaction.atomic(durable=True):
                AuditRecord.objects.create(
                    log=origin,
                    seq=seq,
                    prev=prev,
                    leaf=leaf_hash(body),
                    body=body.decode("utf-8"),
                    ts=dt.datetime.strptime(stamp, TIMESTAMP_FORMAT).replace(tzinfo=dt.UTC),
                    action=fields["action"],
                    actor_type="system",
                    actor_id="warden",
                    object_type="writer",
                    object_id=str(writer),
                )
                LogHead.objects.update_or_create(
                    log=origin, defaults={"size": seq + 1, "tip": leaf_hash(body), "last_ts": stamp}
                )
        except IntegrityError:
            refused += 1
        else:
            committed.append(n)
        barrier.wait()  # every insert of this round has committed or failed
    return {"writer": writer, "committed": committed, "rolled_back": [], "refused": refused}


def _run(writer: int, args: argparse.Namespace, barrier: Barrier, results: Any) -> None:
    from django.db import connections

    connections.close_all()  # never share the parent's connection (it should have none)
    try:
        work = unlocked_writer if args.unlocked else locked_writer
        results.put(work(writer, args, barrier))
    except BaseException:
        barrier.abort()
        results.put({"writer": writer, "error": traceback.format_exc()})
    finally:
        connections.close_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--transactions", type=int, default=200, help="per writer")
    parser.add_argument("--events", type=int, default=1, help="events per transaction")
    parser.add_argument("--rollback", type=float, default=0.0, help="share rolled back")
    parser.add_argument("--unlocked", action="store_true", help="the negative control")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings.test")
    import django

    django.setup()
    from django.db import connections

    from audit.verification import verify_log

    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(args.writers)
    results = context.Queue()
    processes = [
        context.Process(target=_run, args=(writer, args, barrier, results))
        for writer in range(args.writers)
    ]
    for process in processes:
        process.start()
    reports = [results.get() for _ in processes]
    for process in processes:
        process.join()
    errors = [r["error"] for r in reports if "error" in r]
    report = verify_log()
    connections.close_all()
    print(
        json.dumps(
            {
                "writers": sorted(reports, key=lambda r: r["writer"]),
                "errors": errors,
                "verify": report.as_dict(),
            }
        )
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

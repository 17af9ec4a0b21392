"""Checkpointers and writers in processes of their own, for the checkpoint tests:

    DJANGO_SETTINGS_MODULE=governance.settings.test DATABASE_URL=... \\
    AUDIT_SIGNING_KEY_FILE=... AUDIT_CHECKPOINT_PUBLISH_DIR=... \\
        python -m tests.audit.checkpointers COMMAND [options]

Commands (each prints one JSON line on stdout):

- ``append N``: append N records, one transaction each;
- ``checkpoint [--append N] [--kill-after-publish]``: append N records, then one
  ``checkpoint_create``; with the flag the process kills itself (SIGKILL) right after the note
  is published and before the database commits, as a crash would;
- ``race --checkpointers C [--writers W --transactions T] [--rounds R]``: C checkpointer
  processes (each with its own connection) sign at once. With writers, they run while W
  writers append T records each, then sign once more; without, each of R rounds appends one
  record and releases every checkpointer at the same instant (a barrier) on the same size;
- ``report``: the stored leaves, checkpoints and published notes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import sys
import traceback
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any


def _append(count: int, label: str = "x") -> None:
    from django.db import transaction

    from audit.services import AuditEvent, Subject, audit_append
    from core.actors import SYSTEM_ACTOR

    for n in range(count):
        with transaction.atomic(durable=True):
            audit_append(
                events=[
                    AuditEvent(
                        action="test.appended",
                        actor=SYSTEM_ACTOR,
                        object=Subject(type="test_object", id=f"{label}-{n}", label=label),
                        data={"n": n, "by": label},
                    )
                ]
            )


def _signed(result: Any) -> dict[str, Any]:
    checkpoint = result.checkpoint
    return {
        "created": result.created,
        "size": checkpoint.size if checkpoint else None,
        "root": checkpoint.root if checkpoint else None,
    }


def _checkpointer(index: int, args: argparse.Namespace, barrier: Barrier, done: Event) -> Any:
    from audit.checkpoints import checkpoint_create

    results = []
    if args.writers:
        barrier.wait()
        while not done.is_set():
            results.append(_signed(checkpoint_create()))
        results.append(_signed(checkpoint_create()))
        return results
    for _ in range(args.rounds):
        barrier.wait()
        if index == 0:
            _append(1, label="round")
        barrier.wait()  # everyone signs the same new size at once
        results.append(_signed(checkpoint_create()))
    return results


def _writer(index: int, args: argparse.Namespace, barrier: Barrier, done: Event) -> Any:
    barrier.wait()
    _append(args.transactions, label=f"writer-{index}")
    return args.transactions


def _run(work: Any, index: int, args: Any, sync: tuple[Barrier, Event], out: Any) -> None:
    barrier, done = sync
    from django.db import connections

    connections.close_all()
    try:
        out.put({"role": work.__name__, "index": index, "result": work(index, args, barrier, done)})
    except BaseException:
        barrier.abort()
        out.put({"role": work.__name__, "index": index, "error": traceback.format_exc()})
    finally:
        connections.close_all()


def race(args: argparse.Namespace) -> dict[str, Any]:
    from django.db import connections

    connections.close_all()  # the children must not share the parent's connection
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(args.checkpointers + args.writers)
    done = context.Event()
    out = context.Queue()
    checkpointers = [
        context.Process(target=_run, args=(_checkpointer, i, args, (barrier, done), out))
        for i in range(args.checkpointers)
    ]
    writers = [
        context.Process(target=_run, args=(_writer, i, args, (barrier, done), out))
        for i in range(args.writers)
    ]
    for process in checkpointers + writers:
        process.start()
    reports = []
    for _ in writers:
        reports.append(out.get())
    done.set()
    for _ in checkpointers:
        reports.append(out.get())
    for process in checkpointers + writers:
        process.join()
    return {
        "errors": [r["error"] for r in reports if "error" in r],
        "checkpointers": [r.get("result") for r in reports if r["role"] == "_checkpointer"],
    }


def checkpoint(args: argparse.Namespace) -> dict[str, Any]:
    from audit.checkpoints import checkpoint_create
    from audit.publication import PublishDir

    _append(args.append)
    if args.kill_after_publish:
        publish = PublishDir.publish

        def publish_then_die(self: PublishDir, size: int, note: bytes) -> None:
            publish(self, size, note)
            os.kill(os.getpid(), signal.SIGKILL)

        PublishDir.publish = publish_then_die  # type: ignore[method-assign]
    return _signed(checkpoint_create())


def report(args: argparse.Namespace) -> dict[str, Any]:
    from django.conf import settings

    from audit.models import AuditRecord, Checkpoint

    origin = settings.AUDIT_LOG_ORIGIN
    directory = Path(settings.AUDIT_CHECKPOINT_PUBLISH_DIR)
    return {
        "leaves": list(
            AuditRecord.objects.filter(log=origin).order_by("seq").values_list("leaf", flat=True)
        ),
        "checkpoints": list(
            Checkpoint.objects.filter(log=origin)
            .order_by("size")
            .values("size", "root", "note", "key_names")
        ),
        "published": {
            path.name: path.read_text(encoding="utf-8") for path in sorted(directory.glob("*.note"))
        }
        if directory.is_dir()
        else {},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("append").add_argument("count", type=int)
    signing = commands.add_parser("checkpoint")
    signing.add_argument("--append", type=int, default=0, help="records to append first")
    signing.add_argument("--kill-after-publish", action="store_true")
    racing = commands.add_parser("race")
    racing.add_argument("--checkpointers", type=int, default=2)
    racing.add_argument("--writers", type=int, default=0)
    racing.add_argument("--transactions", type=int, default=100, help="per writer")
    racing.add_argument("--rounds", type=int, default=5, help="without writers")
    commands.add_parser("report")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings.test")
    import django

    django.setup()
    if args.command == "append":
        _append(args.count)
        output: dict[str, Any] = {"appended": args.count}
    else:
        output = {"checkpoint": checkpoint, "race": race, "report": report}[args.command](args)
    print(json.dumps(output))
    return 1 if output.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())

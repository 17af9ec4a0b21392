"""Registry writers that crash, for the crash tests, run as a program of their own:

    DJANGO_SETTINGS_MODULE=governance.settings.test DATABASE_URL=... \\
        python -m tests.audit.crashers COMMAND [options]

Every write goes through a real registry service acted by a data scientist, so the governed
rows and their audit record are written in one durable transaction, as in production.
Commands (each prints one JSON line on stdout):

- ``seed``: the data scientist, a model she owns and a dataset with one version;
- ``register LABEL [--pause-at-commit FILE]``: register the next version of the seeded model
  (artifact digest from LABEL, the dataset version as training data). With the flag the
  process stops after ``audit_append`` returned and before the transaction commits: it writes
  what its open transaction holds to FILE (atomically) and sleeps there until it is killed;
- ``load --writers N --acks DIR``: N forked processes, each with its own connection, create
  datasets one transaction at a time until the database goes away. After each commit returned,
  a writer appends ``<seq of the audit record> <dataset name>`` to ``DIR/<writer>.acks`` and
  fsyncs it, so the file lists only commits the database acknowledged. With ``--until FILE``
  a writer that meets a database error reconnects and goes on (the database restarted) until
  FILE exists;
- ``report``: the log head, the records, the model versions, lineage rows and datasets, and
  ``verify_log()``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

MODEL = "credit-scoring"
DATASET = "loan-applications"
AUTHOR = "dana"
# Longer than any test waits for the signal: a paused process is always killed first.
PAUSE_SECONDS = 120


def _author() -> Any:
    """The data scientist who acts, created with her role on first use."""
    from django.contrib.auth.models import Group

    from core.accounts.callers import Caller
    from core.accounts.models import User
    from core.roles import Role
    from governance.accounts.roles import sync_role_permissions
    from governance.accounts.services import user_create

    user = User.objects.filter(username=AUTHOR).first()
    if user is None:
        sync_role_permissions()
        user = user_create(
            caller=None,
            username=AUTHOR,
            first_name="Dana",
            last_name="Scully",
            groups=[Group.objects.get(name=Role.DATA_SCIENTIST)],
            reason="crash test author",
        )
    return Caller(user=user, auth="cli")


def _digest(label: str) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


def seed(args: argparse.Namespace) -> dict[str, Any]:
    from registry import services

    caller = _author()
    model = services.model_create(caller=caller, name=MODEL, risk_tier="high")
    dataset = services.dataset_create(caller=caller, name=DATASET)
    services.dataset_version_register(
        caller=caller,
        dataset=dataset,
        content_digest=_digest("applications-2025"),
        row_count=5000,
        schema={"income": "integer", "label": "integer"},
    )
    return {"model": model.name, "dataset": dataset.name}


def _write_atomically(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(data))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _pause_after_append(signal_file: Path) -> None:
    """Make ``audit_append`` (which the registry's services reach through ``audit_record``)
    hang after it appended, inside the transaction."""
    from django.db import connection

    from audit import services
    from registry.models import DatasetUsage, ModelVersion

    append = services.audit_append

    def append_then_hang(**kwargs: Any) -> Any:
        records = append(**kwargs)
        _write_atomically(
            signal_file,
            {
                "in_transaction": connection.in_atomic_block,
                "seqs": [record.seq for record in records],
                "versions": list(
                    ModelVersion.objects.filter(model__name=MODEL)
                    .order_by("version")
                    .values_list("version", flat=True)
                ),
                "usages": DatasetUsage.objects.count(),
            },
        )
        time.sleep(PAUSE_SECONDS)
        os._exit(3)  # never commit: the test was meant to kill this process long ago

    services.audit_append = append_then_hang  # type: ignore[assignment]


def register(args: argparse.Namespace) -> dict[str, Any]:
    from registry import services
    from registry.models import RegisteredModel
    from registry.services import DatasetRef

    caller = _author()
    model = RegisteredModel.objects.get(name=MODEL)
    if args.pause_at_commit:
        _pause_after_append(Path(args.pause_at_commit))
    captured = _capture_appends()
    version = services.model_version_register(
        caller=caller,
        model=model,
        artifact_uri=f"s3://models/{MODEL}/{args.label}.pkl",
        artifact_digest=_digest(args.label),
        datasets=[DatasetRef(dataset=DATASET, version=1, role="training")],
    )
    return {"version": version.version, "seqs": [record.seq for record in captured]}


def _capture_appends() -> list[Any]:
    """Keep the records ``audit_append`` returns (the last call's): the registry's services
    reach it through ``audit_record``."""
    from audit import services

    append = services.audit_append
    captured: list[Any] = []

    def append_and_keep(**kwargs: Any) -> Any:
        records = append(**kwargs)
        captured[:] = records
        return records

    services.audit_append = append_and_keep  # type: ignore[assignment]
    return captured


def _load_writer(writer: int, acks: Path, results: Any, until: Path | None) -> None:
    from django.db import Error, connections

    from registry import services

    connections.close_all()  # never share the parent's connection
    acked = errors = acked_after_error = 0
    outcome: dict[str, Any] = {"writer": writer}
    try:
        caller = _author()
        captured = _capture_appends()
        with (acks / f"{writer}.acks").open("a", encoding="utf-8") as log:
            for n in itertools.count():
                if until is not None and until.exists():
                    break
                name = f"load-{writer}-{n}"
                try:
                    services.dataset_create(caller=caller, name=name)
                except Error as exc:
                    first: BaseException = exc  # Django may reconnect while cleaning up
                    while first.__context__ is not None:
                        first = first.__context__
                    outcome.update(database_error=True, error=f"{type(first).__name__}: {first}")
                    errors += 1
                    if until is None:
                        break
                    # As a web process would on its next request: a new connection, and on.
                    connections.close_all()
                    time.sleep(0.2)
                    continue
                # The service's transaction committed: the database acknowledged it.
                log.write(f"{captured[0].seq} {name}\n")
                log.flush()
                os.fsync(log.fileno())
                acked += 1
                acked_after_error += 1 if errors else 0
    except BaseException:
        outcome.update(database_error=False, error=traceback.format_exc())
    finally:
        outcome.setdefault("database_error", False)
        results.put(
            {**outcome, "acked": acked, "errors": errors, "acked_after_error": acked_after_error}
        )


def load(args: argparse.Namespace) -> dict[str, Any]:
    from django.db import connections

    _author()  # created once, before the writers race for it
    connections.close_all()
    acks = Path(args.acks)
    until = Path(args.until) if args.until else None
    acks.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    writers = [
        context.Process(target=_load_writer, args=(writer, acks, results, until))
        for writer in range(args.writers)
    ]
    for process in writers:
        process.start()
    reports = [results.get() for _ in writers]
    for process in writers:
        process.join()
    return {"writers": sorted(reports, key=lambda r: r["writer"])}


def report(args: argparse.Namespace) -> dict[str, Any]:
    from django.conf import settings

    from audit.models import AuditRecord, LogHead
    from audit.verification import verify_log
    from registry.models import Dataset, DatasetUsage, ModelVersion

    origin = settings.AUDIT_LOG_ORIGIN
    head = LogHead.objects.filter(log=origin).first()
    return {
        "head": [head.size, head.tip] if head else None,
        "records": [
            {"seq": seq, "action": body["action"], "object": body["object"]}
            for seq, body in (
                (seq, json.loads(body))
                for seq, body in AuditRecord.objects.filter(log=origin)
                .order_by("seq")
                .values_list("seq", "body")
            )
        ],
        "versions": list(
            ModelVersion.objects.order_by("model__name", "version").values_list(
                "model__name", "version"
            )
        ),
        "usages": DatasetUsage.objects.count(),
        "datasets": sorted(Dataset.objects.values_list("name", flat=True)),
        "verify": verify_log().as_dict(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("seed")
    registering = commands.add_parser("register")
    registering.add_argument("label")
    registering.add_argument("--pause-at-commit", help="signal file, then hang until killed")
    loading = commands.add_parser("load")
    loading.add_argument("--writers", type=int, default=4)
    loading.add_argument("--acks", required=True, help="directory of the acknowledgement logs")
    loading.add_argument(
        "--until", help="retry after a database error, and stop once this file exists"
    )
    commands.add_parser("report")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings.test")
    import django

    django.setup()
    command = {"seed": seed, "register": register, "load": load, "report": report}
    output = command[args.command](args)
    print(json.dumps(output))
    return 0


if __name__ == "__main__":
    sys.exit(main())

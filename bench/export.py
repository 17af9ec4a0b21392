"""Benchmark: the regulator's package of a model with 10,000 audit records (target: under
20 s and under 500 MB peak memory).

Registers a model with two versions (through the registry's services, so their records are
real), then appends 10,000 more records about it (gate checks and deployments) and 5,000
about another model through ``audit_record`` in batches of 1,000, as the services append
them, and signs a checkpoint, as the checkpointer's cadence would have. Then times
``governance.reports.package.package_export`` (sign a checkpoint, export the partial bundle
with an inclusion proof per record, verify it with the offline verifier, collect the
inventory, render the PDF/A-3b with the bundle embedded, record it) phase by phase, and
prints the wall time, the process's peak RSS (``ru_maxrss``), the Python heap's peak during
a second run under ``tracemalloc``, the page count (``pdfinfo``) and the PDF's size.

    PYTHONPATH=. .venv/bin/python bench/export.py [--records 10000] [--out package.pdf]

DATABASE_URL names the server and the database to create (default
postgres://postgres@127.0.0.1:5432/warden_package_bench); it is dropped at the end unless
--keep.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench._database import prepare, recreate_database

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/warden_package_bench"
TARGET_SECONDS = 20.0
TARGET_MB = 500.0
BATCH = 1000


def rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_now_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def build(records: int) -> None:
    """The model, its versions, and ``records`` more records about it (plus noise)."""
    from django.contrib.auth.models import Group
    from django.db import transaction

    from audit.actions import AuditAction
    from audit.services import Subject, audit_record
    from core.accounts.callers import Caller
    from core.actors import Actor
    from core.roles import Role
    from governance.accounts.roles import sync_role_permissions
    from governance.accounts.services import user_create
    from registry import services

    sync_role_permissions()
    team = Group.objects.get_or_create(name="credit-risk")[0]
    owner = user_create(
        caller=None, username="alice", first_name="Alice", last_name="Archer",
        groups=[Group.objects.get(name=Role.DATA_SCIENTIST), team], reason="benchmark cast",
    )  # fmt: skip
    caller = Caller(user=owner)
    model = services.model_create(caller=caller, name="credit-limit", risk_tier="high", team=team)
    for number in (1, 2):
        services.model_version_register(
            caller=caller, model=model, artifact_uri=f"s3://models/credit/{number}.pkl",
            artifact_digest="sha256:" + f"{number:02d}" * 32,
        )  # fmt: skip
    ci = Actor(type="service", id="99", name="ci-credit", auth="api_key:1a2b3c4d")
    environments = ("dev", "test", "prod")

    def append(count: int, model_name: str) -> None:
        for start in range(0, count, BATCH):
            with transaction.atomic():
                for i in range(start, min(start + BATCH, count)):
                    environment = environments[i % 3]
                    if i % 10 == 9:
                        action, kind = AuditAction.DEPLOYMENT_DEPLOYED, "deployment"
                        data: dict[str, Any] = {"event": "deployed", "pipeline_run": f"run-{i}"}
                    else:
                        action, kind = AuditAction.GATE_CHECKED, "gate_check"
                        data = {
                            "allowed": i % 4 != 0,
                            "status": "approved" if i % 4 else "pending",
                            "reasons": [] if i % 4 else ["pending_step:validation"],
                            "digest": "sha256:" + "01" * 32,
                            "pipeline_run": f"https://ci.example.org/runs/{i}",
                        }
                    audit_record(
                        action=action,
                        actor=ci,
                        object=Subject(type=kind, id=str(i), label=f"{kind} {i}"),
                        scope={
                            "model": model_name,
                            "version": 1 + i % 2,
                            "environment": environment,
                        },
                        data=data,
                    )

    append(records, "credit-limit")
    append(records // 2, "churn")


def export(out: Path, phases: list[tuple[str, float]] | None = None) -> tuple[Any, Any]:
    from audit.exports import operator_actor
    from governance.reports.package import package_export, package_scope

    def step(stage: str) -> None:
        if phases is not None:
            phases.append((stage, time.perf_counter()))

    scope = package_scope(model="credit-limit", full=False)
    return package_export(out=out, scope=scope, actor=operator_actor(), progress=step)


def pages(pdf: Path) -> str:
    try:
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return next(
        (line.split()[-1] for line in info.stdout.splitlines() if line.startswith("Pages:")), "?"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=None, help="keep the package here")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    url, shown = prepare(DEFAULT_URL)
    try:
        from django.conf import settings

        with tempfile.TemporaryDirectory() as directory:
            settings.AUDIT_CHECKPOINT_PUBLISH_DIR = os.path.join(directory, "published")
            started = time.perf_counter()
            build(args.records)
            print(f"database: {url} ({', '.join(f'{k} {v}' for k, v in shown.items())})")
            built_in = time.perf_counter() - started
            print(f"built {args.records:,} records of the model in {built_in:.1f} s")
            # The checkpointer signs every 60 s or 1,000 records (Celery beat): by the time
            # someone asks for a package, the log is checkpointed up to its last minute.
            from audit.checkpoints import checkpoint_create

            started = time.perf_counter()
            checkpoint_create()
            print(f"checkpoint of the log as beat signs it: {time.perf_counter() - started:.2f} s")
            out = args.out or Path(directory) / "package.pdf"
            rss_before = rss_now_mb()
            peak_before = rss_peak_mb()
            phases: list[tuple[str, float]] = []
            started = time.perf_counter()
            built, record = export(out, phases)
            seconds = time.perf_counter() - started
            marks = [*phases, ("recorded", started + seconds)]
            for (stage, at), (_, end) in itertools.pairwise(marks):
                print(f"  {stage}: {end - at:.2f} s")
            peak = rss_peak_mb()
            print(
                f"package: {seconds:.2f} s, {built.records:,} records, {pages(out)} pages, "
                f"PDF {built.size_bytes / 1e6:.2f} MB, verified {built.verified}, recorded as seq "
                f"{record.seq}"
            )
            print(
                f"peak RSS {peak:.0f} MB (before the export {rss_before:.0f} MB, peak until then "
                f"{peak_before:.0f} MB)"
            )
            second = Path(directory) / "again.pdf"
            tracemalloc.start()
            export(second)
            _, heap_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(
                f"Python heap peak during a second export (tracemalloc): {heap_peak / 1e6:.0f} MB"
            )
            ok = seconds < TARGET_SECONDS and peak < TARGET_MB
            print(
                f"target: under {TARGET_SECONDS:.0f} s and {TARGET_MB:.0f} MB: "
                f"{'met' if ok else 'NOT met'}"
            )
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            recreate_database(url, drop_only=True)


if __name__ == "__main__":
    main()

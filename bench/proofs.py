"""Benchmark: serving inclusion and consistency proofs from a 1,000,000-record log.

Builds the log in a PostgreSQL database of its own (records made the way ``audit_append``
makes them, loaded with COPY by ``bench/audit_verify.py``'s loader), signs checkpoints at
500,000 and 1,000,000 records with the real checkpointer (which re-verifies and fills the
tree cache), then times ``inclusion_proof_get`` for random records and
``consistency_proof_get`` between the two checkpoints, as the API serves them (each proof is
also verified against the signed roots before it is returned). Target: under 50 ms each.

    PYTHONPATH=. .venv/bin/python bench/proofs.py [--size 1000000] [--samples 200] [--keep]

DATABASE_URL names the server and the database to create (default
postgres://postgres@127.0.0.1:5432/warden_bench_proofs); it is dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from bench._database import prepare, recreate_database
from bench.audit_verify import load

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/warden_bench_proofs"
TARGET_MS = 50.0


def timings(samples: int, call: Callable[[int], object], pick: Callable[[], int]) -> list[float]:
    out = []
    for _ in range(samples):
        argument = pick()
        began = time.perf_counter()
        call(argument)
        out.append((time.perf_counter() - began) * 1000)
    return out


def row(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    verdict = "met" if p99 < TARGET_MS else "MISSED"
    return (
        f"{name:<34} {len(values):>7} {statistics.median(values):>8.2f} {p99:>8.2f} "
        f"{ordered[-1]:>8.2f}  p99 < {TARGET_MS:.0f} ms: {verdict}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="records in the log")
    parser.add_argument("--samples", type=int, default=200, help="proofs timed per kind")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)

    workdir = tempfile.mkdtemp(prefix="warden-bench-proofs-")
    os.environ["AUDIT_CHECKPOINT_PUBLISH_DIR"] = os.path.join(workdir, "checkpoints")
    url, shown = prepare(DEFAULT_URL)
    from django.db import connection

    from audit.checkpoints import checkpoint_create
    from audit.proofs import consistency_proof_get, inclusion_proof_get

    version = shown["server_version"]
    load_average = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"PostgreSQL {version} at {urlsplit(url).hostname}; {os.cpu_count()} CPUs; "
        f"load average {load_average} before the run"
    )
    half = args.size // 2
    prev, last_ts, load_first = load(0, half, "0" * 64, "")
    began = time.perf_counter()
    checkpoint_create()
    sign_first = time.perf_counter() - began
    _, _, load_second = load(half, args.size - half, prev, last_ts)
    began = time.perf_counter()
    checkpoint_create()
    sign_second = time.perf_counter() - began
    print(
        f"loaded {half:,} records in {load_first:.1f} s, checkpoint signed in {sign_first:.1f} s; "
        f"{args.size - half:,} more in {load_second:.1f} s, checkpoint in {sign_second:.1f} s\n"
    )
    header = f"{'proof':<34} {'samples':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    print(header)
    print("-" * len(header))
    rng = random.Random(20261122)
    inclusion = timings(
        args.samples,
        lambda seq: inclusion_proof_get(seq=seq, size=args.size),
        lambda: rng.randrange(args.size),
    )
    print(row(f"inclusion in {args.size:,}", inclusion))
    consistency = timings(
        args.samples,
        lambda old: consistency_proof_get(old_size=old, new_size=args.size),
        lambda: half,
    )
    print(row(f"consistency {half:,} -> {args.size:,}", consistency))
    connection.close()
    if not args.keep:
        recreate_database(url, drop_only=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

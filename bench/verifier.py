"""Benchmark: the offline verifier (``audit.verifier.verify_bundle``) on a 1M-record bundle.

Builds a log of --records records (default 1,000,000) in a PostgreSQL database of its own
(loaded with COPY exactly as ``bench/audit_verify.py`` does: ``audit_append``'s event builder,
canonical bytes, a correct chain), signs a checkpoint over it with ``checkpoint_create`` and
exports it with ``audit.exports.bundle_export``, the code behind ``manage.py audit_export``.
Then times ``verify_bundle`` with every check on (every note's signature, every body's
canonical bytes and fields, seq, chain, times, signature records, the Merkle root at every
checkpoint size, the manifest), in one process and with the body checks in --workers
processes, and prints records/s against the target of 150,000/s.

    PYTHONPATH=. .venv/bin/python bench/verifier.py [--records N] [--workers N] [--keep]
    PYTHONPATH=. .venv/bin/python bench/verifier.py --bundle FILE.zip --key VKEY

DATABASE_URL names the server and the database to create (default
postgres://postgres@127.0.0.1:5432/warden_bench_bundle); it is dropped at the end unless
--keep, and so is the bundle (kept under --keep in test-output/bench/).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench._database import prepare, recreate_database

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/warden_bench_bundle"
TARGET = 150_000


def build(records: int, directory: Path) -> tuple[Path, str]:
    """A full export bundle of a ``records``-record log; returns it and the verification key."""
    from django.conf import settings
    from django.db import connection

    from audit import keys
    from audit.checkpoints import checkpoint_create
    from audit.exports import bundle_export, operator_actor
    from bench.audit_verify import load

    key_file = directory / "bench-signing.key"
    verification_key = keys.generate_key_file(key_file, "warden.bench")
    settings.AUDIT_SIGNING_KEY_FILE = [str(key_file)]
    settings.AUDIT_SIGNING_KEY_AUTOGENERATE = False
    settings.AUDIT_VERIFICATION_KEYS = []
    settings.AUDIT_CHECKPOINT_PUBLISH_DIR = str(directory / "published")

    _, _, load_seconds = load(0, records, "0" * 64, "")
    began = time.perf_counter()
    checkpoint_create()
    sign_seconds = time.perf_counter() - began
    out = directory / "bundle.zip"
    began = time.perf_counter()
    bundle, _ = bundle_export(out=out, actor=operator_actor())
    export_seconds = time.perf_counter() - began
    connection.close()
    size_mb = out.stat().st_size / 2**20
    print(
        f"built: {records:,} records loaded in {load_seconds:.1f} s, checkpoint signed in "
        f"{sign_seconds:.1f} s, exported in {export_seconds:.1f} s "
        f"({bundle.records:,} records, {size_mb:.0f} MiB zip)"
    )
    return out, verification_key


def measure(bundle: Path, key: str, workers: list[int]) -> bool:
    from audit.verifier import verify_bundle

    header = (
        f"{'workers':>7} {'records':>10} {'seconds':>8} {'records/s':>10} {'target':>8}  result"
    )
    print(header)
    print("-" * len(header))
    failed = False
    for count in workers:
        began = time.perf_counter()
        report = verify_bundle(bundle, [key], workers=count)
        seconds = time.perf_counter() - began
        rate = report.records / seconds
        failed |= not report.ok
        verdict = "OK" if report.ok else f"FAILED {[f.code for f in report.findings[:3]]}"
        met = "met" if rate >= TARGET else "MISSED"
        print(
            f"{count:>7} {report.records:>10,} {seconds:>8.2f} {rate:>10,.0f} {TARGET:>8,}  "
            f"{met}; bundle {verdict}"
        )
    return not failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--keep", action="store_true", help="keep the database and the bundle")
    parser.add_argument("--bundle", type=Path, help="verify this bundle instead of building one")
    parser.add_argument("--key", help="its verification key (with --bundle)")
    args = parser.parse_args(argv)
    workers = sorted({1, args.workers})
    load_average = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}; load {load_average}")
    print("every check on: notes, bodies, seq, chain, times, e-signatures, roots, manifest\n")
    if args.bundle:
        if not args.key:
            parser.error("--bundle needs --key")
        return 0 if measure(args.bundle, args.key, workers) else 1

    url, _ = prepare(DEFAULT_URL)
    keep_dir = Path("test-output/bench")
    if args.keep:
        keep_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=keep_dir if args.keep else None) as name:
        directory = Path(name)
        bundle, key = build(args.records, directory)
        ok = measure(bundle, key, workers)
        if args.keep:
            kept = keep_dir / "verifier-bundle.zip"
            bundle.replace(kept)
            print(f"\nkept {kept}; key {key}")
    if not args.keep:
        recreate_database(url, drop_only=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

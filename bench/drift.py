"""Drift engine on 1M reference and 1M current rows, 15 numerical and 5 categorical columns.

Prints the compute time (``compute_drift`` on in-memory DataFrames), the time to read the
same tables back from Parquet with ``read_table``, and the peak memory traced by
``tracemalloc`` during the computation (numpy and pandas report their buffers to it),
against the targets: under 4 s, peak under twice the input's in-memory size.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

from governance.reports.engine import DriftOptions, compute_drift, read_table


def tables(rows: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {
        f"num_{i}": rng.normal(shift * (i % 3), 1 + 0.01 * i, rows) for i in range(15)
    }
    for i in range(5):
        data[f"cat_{i}"] = pd.Categorical(rng.choice([f"c{k}" for k in range(8 + i)], rows))
    return pd.DataFrame(data)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    reference, current = tables(args.rows, 1, 0.0), tables(args.rows, 2, 0.02)
    types = {c: ("numerical" if c.startswith("num") else "categorical") for c in reference.columns}
    options = DriftOptions(column_types=types)
    size = int(reference.memory_usage(deep=True).sum() + current.memory_usage(deep=True).sum())
    compute_drift(reference.head(5000), current.head(5000), options)  # imports, warm-up
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    result = compute_drift(reference, current, options)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    print(f"drift: {args.rows:,} + {args.rows:,} rows, 20 columns, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"  methods: {sorted({str(c.method) for c in result.columns})}, drifted "
          f"{len(result.drifted_columns)} of {len(result.columns)}")  # fmt: skip
    print(f"  compute: {elapsed:.2f} s (target < 4 s) {'OK' if elapsed < 4 else 'MISSED'}")
    print(f"  input in memory: {size / 2**20:.0f} MiB; extra peak during compute (tracemalloc): "
          f"{peak / 2**20:.0f} MiB; input + peak = {(size + peak) / size:.2f}x the input "
          f"(target < 2x) {'OK' if size + peak < 2 * size else 'MISSED'}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        for name, frame in (("reference", reference), ("current", current)):
            frame.to_parquet(Path(folder) / f"{name}.parquet")
        started = time.perf_counter()
        for name in ("reference", "current"):
            read_table(Path(folder) / f"{name}.parquet", list(types), label=name)
        print(f"  read both tables back from Parquet: {time.perf_counter() - started:.2f} s")
    print(
        "  process max RSS (getrusage): "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()

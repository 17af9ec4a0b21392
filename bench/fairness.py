"""Fairness engine on 1M rows with two sensitive columns.

Prints the compute time of ``compute_fairness`` on an in-memory DataFrame and the peak
memory ``tracemalloc`` traces during it, against the targets: under 0.5 s, peak under twice
the input's in-memory size.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

import numpy as np
import pandas as pd

from governance.reports.engine import FairnessOptions, compute_fairness


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(5)
    n = args.rows
    frame = pd.DataFrame(
        {
            "label": rng.integers(0, 2, n),
            "prediction": rng.integers(0, 2, n),
            "score": rng.random(n),
            "race": pd.Categorical(rng.choice(["a", "b", "c", "d", "e", "f"], n)),
            "sex": pd.Categorical(rng.choice(["female", "male"], n)),
        }
    )
    options = FairnessOptions(
        label="label", prediction="prediction", sensitive=["race", "sex"],
        privileged={"race": "a"}, score="score",
    )  # fmt: skip
    size = int(frame.memory_usage(deep=True).sum())
    compute_fairness(frame.head(1000), options)  # imports, warm-up
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        compute_fairness(frame, options)
        timings.append(time.perf_counter() - started)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    result = compute_fairness(frame, options)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    best = min(timings)
    print(f"fairness: {n:,} rows, 2 sensitive columns ({len(result.groups)} groups), "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"  compute: best {best:.3f} s, median {sorted(timings)[2]:.3f} s of 5 "
          f"(target < 0.5 s) {'OK' if best < 0.5 else 'MISSED'}")  # fmt: skip
    print(f"  input in memory: {size / 2**20:.0f} MiB; extra peak during compute (tracemalloc): "
          f"{peak / 2**20:.0f} MiB; input + peak = {(size + peak) / size:.2f}x the input "
          f"(target < 2x) {'OK' if size + peak < 2 * size else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()

"""The drift methods of large samples are computed without scipy, as scipy computes them:
the Jensen-Shannon distance bit for bit, and a drift report on more than 1,000 rows per
side loads no ``scipy`` (whose ``stats`` module costs more to import than the report)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import distance
from scipy.special import rel_entr

from governance.reports.engine.drift import _rel_entr, jensenshannon_counts

pytestmark = pytest.mark.database_free

REPO = Path(__file__).resolve().parents[2]


def test_jensen_shannon_is_scipys_bit_for_bit():
    rng = np.random.default_rng(11)
    for _ in range(3000):
        size = int(rng.integers(1, 60))
        high = int(rng.choice([3, 50, 100_000]))
        ref = rng.integers(0, high, size)
        cur = rng.integers(0, high, size)
        ref[rng.integers(0, size)] = 0
        if ref.sum() == 0 or cur.sum() == 0:
            continue
        expected = float(distance.jensenshannon(ref / ref.sum(), cur / cur.sum()))
        assert jensenshannon_counts(ref, cur) == expected


def test_relative_entropy_is_scipys_bit_for_bit_including_extremes():
    rng = np.random.default_rng(12)
    x, y = rng.random(5000) ** 3, rng.random(5000) ** 3
    x[:8] = [1e-300, 1e300, 1e-310, 0.0, 5.0, 2.0, 1.0, 0.0]
    y[:8] = [1e300, 1e-300, 1.0, 0.0, 0.0, 1.0, 0.5, -1.0]
    assert np.array_equal(_rel_entr(x, y), rel_entr(x, y))


CHILD = r"""
import json, sys
import numpy as np, pandas as pd
from governance.reports.engine import DriftOptions, compute_drift

rng = np.random.default_rng(3)
def side(shift):
    return pd.DataFrame({"x": rng.normal(shift, 1, 5000), "c": rng.choice(list("abcd"), 5000)})
result = compute_drift(side(0.0), side(0.3), DriftOptions()).to_dict()
print(json.dumps({"methods": [c["method"] for c in result["columns"]],
                  "scipy": sorted(m for m in sys.modules if m.split(".")[0] == "scipy")}))
"""


def test_a_large_sample_drift_report_loads_no_scipy():
    done = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=REPO, capture_output=True, text=True, check=True
    )
    child = json.loads(done.stdout)
    assert child["methods"] == ["wasserstein", "jensenshannon"]
    assert child["scipy"] == []

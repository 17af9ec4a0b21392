"""Binned distributions for drift charts, computed from the two tables the engine compared.

The engine's result carries statistics only; whoever renders the PDF with the data at hand
(the ``report`` command, the report task) calls :func:`column_distributions` and passes the
outcome in :attr:`ReportContext.distributions`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from governance.reports.pdf.context import ColumnDistribution

MAX_HISTOGRAM_BINS = 40


def _finite(series: pd.Series) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    return values[np.isfinite(values)]


def column_distributions(
    reference: pd.DataFrame, current: pd.DataFrame, result: Mapping[str, Any]
) -> dict[str, ColumnDistribution]:
    """One distribution per evaluated column of a drift result: a histogram over shared
    edges (the engine's Sturges edges when it reports them) for a numerical column, counts
    per category (sorted union, as strings) for a categorical one."""
    distributions: dict[str, ColumnDistribution] = {}
    for column in result["columns"]:
        name = column["name"]
        if column.get("status", "ok") != "ok" or name not in reference or name not in current:
            continue
        if column.get("type") == "numerical":
            ref, cur = _finite(reference[name]), _finite(current[name])
            bins = column.get("bins") or {}
            if bins.get("kind") == "histogram" and len(bins.get("edges") or []) <= 201:
                edges = np.asarray(bins["edges"], dtype=float)
            else:
                both = np.concatenate([ref, cur])
                edges = np.histogram_bin_edges(both, bins="sturges")
                if edges.size - 1 > MAX_HISTOGRAM_BINS:
                    edges = np.linspace(edges[0], edges[-1], MAX_HISTOGRAM_BINS + 1)
            distributions[name] = ColumnDistribution(
                reference=np.histogram(ref, edges)[0].tolist(),
                current=np.histogram(cur, edges)[0].tolist(),
                edges=edges.tolist(),
            )
        else:
            ref_counts = reference[name].dropna().astype(str).value_counts()
            cur_counts = current[name].dropna().astype(str).value_counts()
            categories = sorted(set(ref_counts.index) | set(cur_counts.index))
            distributions[name] = ColumnDistribution(
                reference=[int(ref_counts.get(c, 0)) for c in categories],
                current=[int(cur_counts.get(c, 0)) for c in categories],
                categories=categories,
            )
    return distributions

"""Data drift between a reference and a current table (METRICS_SPEC.md section 1).

Each column is cleaned (+-inf -> NaN, NaN dropped), given a method by Evidently's rule unless
overridden, and tested; the dataset drifts when the share of drifted columns among those
that could be evaluated reaches ``drift_share``. Numerical columns are sorted once per side;
KS, the normed Wasserstein distance, Jensen-Shannon histograms and PSI deciles all work on
the sorted arrays with ``searchsorted``, which gives scipy's and numpy's results exactly
(the same arrays, the same operations) at a fraction of the cost. Categorical columns are
counted with hash-based ``value_counts`` over the sorted union of categories.

scipy is imported by the tests that need it (KS, chi-square, the z-test, the AUC's ranks),
which the default rule chooses only for small samples: importing ``scipy.stats`` costs more
than computing drift on 200k rows x 20 columns, and the methods of large samples (the normed
Wasserstein distance and Jensen-Shannon) are computed here, as scipy computes them.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from governance.reports.engine.common import (
    ENGINE_VERSION,
    finite,
    is_date,
    is_nested,
    library_versions,
    native,
    sort_key,
    to_record,
)
from governance.reports.engine.errors import InputError
from governance.reports.engine.options import (
    DEFAULT_THRESHOLDS,
    ColumnType,
    DriftOptions,
    Method,
    MethodChoice,
)

PSI_QUANTILES = tuple(i / 10 for i in range(1, 10))
PSI_FLOOR = 1e-4
SMALL_SD = 0.001
SMALL_SAMPLE = 30
MAX_LISTED_BINS = 1000
MAX_LISTED_CATEGORIES = 50
INFERENCE_MAX_INT_VALUES = 10

P_VALUE_METHODS = frozenset({Method.KS, Method.CHISQUARE, Method.Z})
NUMERICAL_ONLY = frozenset({Method.KS, Method.WASSERSTEIN})


class Status(StrEnum):
    OK = "ok"
    NOT_EVALUABLE = "not_evaluable"


class Exclusion(StrEnum):
    """Why a column shared by both tables is not compared."""

    DATE = "date"
    IDENTIFIER = "identifier"
    DECLARED_IGNORE = "declared ignore"
    UNSUPPORTED = "unsupported type"
    REQUESTED = "requested"


@dataclass
class Side:
    """One side of one column after cleaning."""

    rows: int
    missing: int
    inf: int

    @property
    def n(self) -> int:
        return self.rows - self.missing - self.inf

    @property
    def missing_share(self) -> float | None:
        return self.missing / self.rows if self.rows else None


@dataclass
class DriftColumn:
    """The result for one column: the output contract of METRICS_SPEC section 5, plus the
    cleaning figures, the bins, PSI, an effect size and any warnings."""

    name: str
    type: ColumnType
    status: Status
    reference: Side
    current: Side
    role: str = "feature"
    method: Method | None = None
    statistic: float | None = None
    p_value: float | None = None
    p_value_bh: float | None = None
    threshold: float | None = None
    threshold_source: str = "default"
    drifted: bool = False
    effect_size: dict[str, Any] | None = None
    psi: float | None = None
    psi_bins: int | None = None
    psi_edges: list[float] | None = None
    n_unique: int | None = None
    bins: dict[str, Any] | None = None
    new_categories: list[Any] | None = None
    new_category_share: float | None = None
    vanished_categories: list[Any] | None = None
    warnings: list[str] = field(default_factory=list)
    reason: str | None = None

    @property
    def psi_level(self) -> str | None:
        if self.psi is None:
            return None
        if self.psi < 0.1:
            return "stable"
        return "moderate" if self.psi <= 0.25 else "significant"

    def to_dict(self) -> dict[str, Any]:
        ref_share, cur_share = self.reference.missing_share, self.current.missing_share
        return {
            "name": self.name,
            "type": str(self.type),
            "role": self.role,
            "method": None if self.method is None else str(self.method),
            "statistic": finite(self.statistic),
            "p_value": finite(self.p_value),
            "p_value_bh": finite(self.p_value_bh),
            "threshold": finite(self.threshold),
            "threshold_source": self.threshold_source,
            "drifted": self.drifted,
            "effect_size": self.effect_size,
            "psi": finite(self.psi),
            "psi_level": self.psi_level,
            "psi_bins": self.psi_bins,
            "psi_edges": self.psi_edges,
            "psi_definition": "reference deciles, right-closed, floor 1e-4 (not Evidently's PSI)",
            "n_reference": self.reference.n,
            "n_current": self.current.n,
            "missing_share_reference": finite(ref_share),
            "missing_share_current": finite(cur_share),
            "missing_share_change": (
                None if ref_share is None or cur_share is None else finite(cur_share - ref_share)
            ),
            "inf_count_reference": self.reference.inf,
            "inf_count_current": self.current.inf,
            "n_unique": self.n_unique,
            "bins": self.bins,
            "new_categories": self.new_categories,
            "new_category_share": finite(self.new_category_share),
            "vanished_categories": self.vanished_categories,
            "status": str(self.status),
            "reason": self.reason,
            "warnings": list(self.warnings),
        }


@dataclass
class DriftResult:
    """The dataset verdict and every column (evaluated, not evaluable), and the columns not
    compared with the reason why (``excluded``; ``ignored`` names those excluded for what they
    hold rather than by request)."""

    columns: list[DriftColumn]
    drift_share: float
    ignored: list[str]
    concept: dict[str, Any] | None = None
    excluded: list[tuple[str, Exclusion]] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    thresholds_source: str = "default"

    @property
    def evaluated(self) -> list[DriftColumn]:
        return [c for c in self.columns if c.status is Status.OK]

    @property
    def drifted_columns(self) -> list[str]:
        return [c.name for c in self.evaluated if c.drifted]

    @property
    def share(self) -> float | None:
        evaluated = len(self.evaluated)
        return len(self.drifted_columns) / evaluated if evaluated else None

    @property
    def dataset_drift(self) -> bool:
        share = self.share
        return share is not None and share >= self.drift_share

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``manage.py report drift --json`` (numbers as JSON numbers)."""
        return {
            "kind": "drift",
            "columns": [c.to_dict() for c in self.columns],
            "drifted_count": len(self.drifted_columns),
            "evaluated_count": len(self.evaluated),
            "share": finite(self.share),
            "drift_share": self.drift_share,
            "dataset_drift": self.dataset_drift,
            "drifted_columns": self.drifted_columns,
            "not_evaluable": [c.name for c in self.columns if c.status is Status.NOT_EVALUABLE],
            "ignored": list(self.ignored),
            "excluded": [{"name": name, "reason": str(reason)} for name, reason in self.excluded],
            "concept_drift": self.concept,
            "thresholds_source": self.thresholds_source,
            "inputs": list(self.inputs),
            "engine": ENGINE_VERSION,
            "libraries": library_versions(),
        }

    def to_record(self) -> Any:
        """The same document for an audit record: floats as decimal strings."""
        return to_record(self.to_dict())


def _is_textual(series: pd.Series) -> bool:
    dtype = series.dtype
    return not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))


def days_since_epoch(series: pd.Series) -> pd.Series:
    """A date or datetime column as float days since 1970-01-01 (UTC for aware times; a
    time of day is a fraction of a day); missing values stay missing."""
    stamps = pd.to_datetime(series, utc=True)
    days = (stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(days=1)
    return days.astype(np.float64).rename(series.name)


def _is_text(series: pd.Series) -> bool:
    if isinstance(series.dtype, pd.StringDtype):
        return True
    return series.dtype == np.dtype(object) and (
        pd.api.types.infer_dtype(series, skipna=True) == "string"
    )


def is_identifier(reference: pd.Series, current: pd.Series) -> bool:
    """An integer or text column whose values never repeat within either table (more than
    ``INFERENCE_MAX_INT_VALUES`` of them on each side, missing values aside): a row key, not
    a feature. A float column never is one."""
    for series in (reference, current):
        if not (pd.api.types.is_integer_dtype(series.dtype) or _is_text(series)):
            return False
        values = series.dropna()
        if len(values) <= INFERENCE_MAX_INT_VALUES or not values.is_unique:
            return False
    return True


def prepare_frames(
    reference: pd.DataFrame, current: pd.DataFrame, options: DriftOptions
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tables as the drift engine compares them: every date column declared numerical
    replaced by :func:`days_since_epoch` (the frames given are not changed)."""
    declared = [
        name
        for name, kind in options.column_types.items()
        if str(kind) == ColumnType.NUMERICAL
        and name in reference.columns
        and name in current.columns
    ]
    frames = []
    for frame in (reference, current):
        dates = {name: days_since_epoch(frame[name]) for name in declared if is_date(frame[name])}
        frames.append(frame.assign(**dates) if dates else frame)
    return frames[0], frames[1]


def infer_type(reference: pd.Series, current: pd.Series) -> ColumnType:
    """The fallback rule: float -> numerical; int with <= 10 distinct values -> categorical
    (more -> numerical); strings, booleans and categories -> categorical; anything else
    (dates, ...) is ignored."""
    dtype = reference.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return ColumnType.CATEGORICAL
    if pd.api.types.is_float_dtype(dtype):
        return ColumnType.NUMERICAL
    if pd.api.types.is_integer_dtype(dtype):
        distinct = set(pd.unique(reference.dropna())) | set(pd.unique(current.dropna()))
        if len(distinct) <= INFERENCE_MAX_INT_VALUES:
            return ColumnType.CATEGORICAL
        return ColumnType.NUMERICAL
    if pd.api.types.is_string_dtype(dtype) or dtype is np.dtype(object):
        return ColumnType.CATEGORICAL
    return ColumnType.IGNORE


def _numeric_array(series: pd.Series, name: str, label: str) -> tuple[np.ndarray, Side]:
    """Float64 values with +-inf and NaN removed, and the cleaning figures."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype) or _is_textual(series):
        sample = series.dropna()
        example = f" (e.g. {native(sample.iloc[0])!r})" if len(sample) else ""
        raise InputError(
            f"declared numerical but holds {dtype} values{example}", source=label, column=name
        )
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    rows = values.size
    nan_mask = np.isnan(values)
    missing = int(np.count_nonzero(nan_mask))
    inf_mask = np.isinf(values)
    inf = int(np.count_nonzero(inf_mask))
    if missing or inf:
        values = values[~(nan_mask | inf_mask)]
    return values, Side(rows=rows, missing=missing, inf=inf)


def _category_counts(series: pd.Series) -> tuple[dict[Any, int], Side]:
    """Counts per category (non-zero only) with +-inf and NaN removed."""
    rows = len(series)
    inf = 0
    if pd.api.types.is_float_dtype(series.dtype):
        inf_mask = np.isinf(series.to_numpy(dtype=np.float64, na_value=np.nan))
        inf = int(np.count_nonzero(inf_mask))
        if inf:
            series = series[~inf_mask]
    missing = int(series.isna().sum())
    counts = series.value_counts(dropna=True, sort=False)
    table = {native(k): int(v) for k, v in counts.items() if v > 0}
    return table, Side(rows=rows, missing=missing, inf=inf)


def default_method(n_reference: int, column_type: ColumnType, n_unique: int) -> Method:
    """Evidently's rule (METRICS_SPEC section 1 table)."""
    if n_reference <= 1000:
        if column_type is ColumnType.NUMERICAL and n_unique > 5:
            return Method.KS
        return Method.CHISQUARE if n_unique > 2 else Method.Z
    if column_type is ColumnType.NUMERICAL and n_unique > 5:
        return Method.WASSERSTEIN
    return Method.JENSENSHANNON


def is_drifted(method: Method, value: float, threshold: float) -> bool:
    """KS drifts at p <= threshold, chi-square and z at p < threshold, distances at >= it."""
    if method is Method.KS:
        return value <= threshold
    if method in P_VALUE_METHODS:
        return value < threshold
    return value >= threshold


def merge_sorted(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sorted samples merged (a stable merge, so a tie puts reference values first) and,
    for each merged position, whether the value came from the reference."""
    both = np.concatenate((ref_sorted, cur_sorted))
    order = np.argsort(both, kind="stable")
    merged = both[order]
    del both
    return merged, order < ref_sorted.size


def wasserstein_merged(
    merged: np.ndarray, from_reference: np.ndarray, n_ref: int, n_cur: int
) -> float:
    """``scipy.stats.wasserstein_distance`` (scipy's ``_cdf_distance`` with p = 1) from the merge.

    scipy evaluates both empirical CDFs at every merged point but the last with
    ``searchsorted(..., "right")``. Where the next point is larger, that count is the number
    of reference (current) values among the merged points so far, a cumulative sum; where it
    is equal, the interval has zero width and adds an exact 0. The terms are therefore the
    same floats in the same order, and the sum (``np.vecdot``, as scipy) is bit for bit
    scipy's, without two binary searches over the merged array.
    """
    deltas = np.diff(merged)
    ref_count = np.cumsum(from_reference[:-1])
    cur_cdf = np.arange(1, merged.size, dtype=np.int64)
    cur_cdf -= ref_count
    ref_cdf = ref_count / n_ref
    del ref_count
    cur = cur_cdf / n_cur
    del cur_cdf
    np.subtract(ref_cdf, cur, out=ref_cdf)
    np.abs(ref_cdf, out=ref_cdf)
    return float(np.vecdot(ref_cdf, deltas))


def quantiles_sorted(sorted_values: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    """``np.quantile(values, quantiles)`` (method "linear") for sorted values, without the
    partition numpy does: numpy's virtual index ``(n - 1) q`` and its ``_lerp``."""
    n = sorted_values.size
    q = np.asarray(quantiles, dtype=np.float64)
    virtual = (n - 1) * q
    previous = np.floor(virtual)
    gamma = virtual - previous
    lower = sorted_values[np.minimum(previous.astype(np.intp), n - 1)]
    upper = sorted_values[np.minimum(previous.astype(np.intp) + 1, n - 1)]
    above = virtual >= n - 1
    lower[above] = sorted_values[-1]
    upper[above] = sorted_values[-1]
    diff = upper - lower
    out = lower + diff * gamma
    np.subtract(upper, diff * (1 - gamma), out=out, where=gamma >= 0.5)
    return out


def _counts_at(sorted_values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    return sorted_values.searchsorted(keys, "right") - sorted_values.searchsorted(keys, "left")


def histogram_sorted(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``np.histogram(values, edges)[0]`` for sorted values: bins [e_i, e_i+1), the last closed."""
    below = sorted_values.searchsorted(edges, "left")
    below[-1] = sorted_values.searchsorted(edges[-1], "right")
    return np.diff(below)


def _rel_entr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``scipy.special.rel_entr`` element by element, as scipy's C++ computes it: ``x log(x /
    y)`` (through ``log1p`` when x and y are within a factor of 2, through two logarithms when
    the ratio over- or underflows), 0 where x = 0 <= y, infinite otherwise."""
    out = np.empty(x.shape, dtype=np.float64)
    for index, (a, b) in enumerate(zip(x.tolist(), y.tolist(), strict=True)):
        if a > 0 and b > 0:
            ratio = a / b
            if 0.5 < ratio < 2:
                out[index] = a * math.log1p((a - b) / b)
            elif sys.float_info.min < ratio < math.inf:
                out[index] = a * math.log(ratio)
            else:
                out[index] = a * (math.log(a) - math.log(b))
        elif a == 0 and b >= 0:
            out[index] = 0.0
        else:
            out[index] = math.inf
    return out


def jensenshannon_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Evidently's JS distance: proportions over the same bins, natural log.

    ``scipy.spatial.distance.jensenshannon(ref_p, cur_p)`` operation for operation (it
    normalises its inputs again, takes the mean distribution, sums ``rel_entr`` with
    ``np.sum`` and halves), so the result is scipy's bit for bit; there are as many terms as
    bins, a few dozen at most."""
    ref_p = ref_counts / ref_counts.sum()
    cur_p = cur_counts / cur_counts.sum()
    p = ref_p / np.sum(ref_p, axis=0, keepdims=True)
    q = cur_p / np.sum(cur_p, axis=0, keepdims=True)
    m = (p + q) / 2.0
    js = np.sum(_rel_entr(p, m), axis=0) + np.sum(_rel_entr(q, m), axis=0)
    return float(np.sqrt(js / 2.0))


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """PSI over given bins, proportions clipped below at 1e-4 without renormalising."""
    ref_p = np.clip(ref_counts / ref_counts.sum(), PSI_FLOOR, None)
    cur_p = np.clip(cur_counts / cur_counts.sum(), PSI_FLOOR, None)
    return float(np.sum((cur_p - ref_p) * np.log(cur_p / ref_p)))


def chisquare_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """Chi-square test of homogeneity (no continuity correction); one category gives p = 1."""
    if ref_counts.size < 2:
        return 0.0, 1.0
    from scipy import stats

    result = stats.chi2_contingency(np.vstack([ref_counts, cur_counts]), correction=False)
    return float(result.statistic), float(result.pvalue)


def z_test_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """Pooled two-proportion z-test; the sorted union's first value is 0, the others 1.

    Written as Evidently writes it (``2 * (1 - Phi(|z|))``) so the p-values agree exactly.
    """
    n1, n2 = int(ref_counts.sum()), int(cur_counts.sum())
    if ref_counts.size < 2 or (
        np.count_nonzero(ref_counts) == 1
        and np.count_nonzero(cur_counts) == 1
        and int(np.argmax(ref_counts)) == int(np.argmax(cur_counts))
    ):
        return 0.0, 1.0
    p1 = float(n1 - int(ref_counts[0])) / n1
    p2 = float(n2 - int(cur_counts[0])) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    from scipy import stats

    return float(z), float(2 * (1 - stats.norm.cdf(np.abs(z))))


def cohens_h(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    p1 = 1 - ref_counts[0] / ref_counts.sum()
    p2 = 1 - cur_counts[0] / cur_counts.sum()
    return float(abs(2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2))))


def cramers_v(statistic: float, total: int, categories: int) -> float | None:
    if categories < 2 or total == 0:
        return None
    return math.sqrt(statistic / total)


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (step-up, monotone, capped at 1)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return [float(v) for v in out]


def _listed(values: Sequence[Any], limit: int) -> dict[str, Any]:
    return {"values": list(values[:limit]), "count": len(values), "truncated": len(values) > limit}


def _resolve(
    name: str, column_type: ColumnType, options: DriftOptions
) -> tuple[Method | None, float | None, str]:
    column = options.per_column.get(name, MethodChoice())
    by_type = options.per_type.get(str(column_type), MethodChoice())
    chosen = column.method or by_type.method or options.method.method
    try:
        method = None if chosen is None else Method(chosen)
    except ValueError:
        raise InputError(
            f"unknown method {chosen!r} ({', '.join(m.value for m in Method)})", column=name
        ) from None
    if column.threshold is not None:
        return method, column.threshold, "column override"
    if by_type.threshold is not None:
        return method, by_type.threshold, "type override"
    if options.method.threshold is not None:
        return method, options.method.threshold, "global override"
    return method, None, options.thresholds_source


def _finish(column: DriftColumn, method: Method, threshold: float | None, value: float) -> None:
    column.method = method
    column.threshold = DEFAULT_THRESHOLDS[method] if threshold is None else threshold
    column.drifted = bool(is_drifted(method, value, column.threshold))


def _numerical_column(
    name: str,
    reference: pd.Series,
    current: pd.Series,
    options: DriftOptions,
    labels: tuple[str, str],
) -> DriftColumn:
    ref, ref_side = _numeric_array(reference, name, labels[0])
    cur, cur_side = _numeric_array(current, name, labels[1])
    column = DriftColumn(
        name=name, type=ColumnType.NUMERICAL, status=Status.OK, reference=ref_side, current=cur_side
    )
    if ref.size == 0 or cur.size == 0:
        return _not_evaluable(column)
    ref_sorted = np.sort(ref)
    cur_sorted = np.sort(cur)
    merged, from_reference = merge_sorted(ref_sorted, cur_sorted)
    n_unique = 1 + int(np.count_nonzero(merged[1:] != merged[:-1]))
    column.n_unique = n_unique
    method, threshold, source = _resolve(name, ColumnType.NUMERICAL, options)
    method = method or default_method(ref.size, ColumnType.NUMERICAL, n_unique)
    column.threshold_source = source
    if ref.size < SMALL_SAMPLE or cur.size < SMALL_SAMPLE:
        column.warnings.append(f"small sample (n_reference={ref.size}, n_current={cur.size})")
    sd = float(np.std(ref))
    if method is Method.KS or method is Method.WASSERSTEIN:
        normed = wasserstein_merged(merged, from_reference, ref.size, cur.size) / max(sd, SMALL_SD)
        if sd < SMALL_SD:
            column.warnings.append(
                f"reference SD {sd!r} below {SMALL_SD}: Wasserstein distance normed by {SMALL_SD}"
            )
        if method is Method.KS:
            from scipy import stats

            result = stats.ks_2samp(ref, cur)
            column.statistic, column.p_value = float(result.statistic), float(result.pvalue)
            column.effect_size = {"name": "wasserstein_normed", "value": finite(normed)}
            _finish(column, method, threshold, column.p_value)
        else:
            column.statistic = normed
            _finish(column, method, threshold, normed)
    else:
        if method is Method.JENSENSHANNON and _distinct_sorted(ref_sorted) > 20:
            edges = np.histogram_bin_edges(merged, bins="sturges")
            ref_counts = histogram_sorted(ref_sorted, edges)
            cur_counts = histogram_sorted(cur_sorted, edges)
            column.bins = {"kind": "histogram", "rule": "sturges", "edges": edges.tolist()}
        else:
            keys = np.unique(merged)
            ref_counts = _counts_at(ref_sorted, keys)
            cur_counts = _counts_at(cur_sorted, keys)
            column.bins = {"kind": "values", **_listed(keys.tolist(), MAX_LISTED_BINS)}
        _categorical_statistic(column, method, threshold, ref_counts, cur_counts)
    edges = np.unique(quantiles_sorted(ref_sorted, PSI_QUANTILES))
    ref_bins = np.diff(np.concatenate(([0], ref_sorted.searchsorted(edges, "right"), [ref.size])))
    cur_bins = np.diff(np.concatenate(([0], cur_sorted.searchsorted(edges, "right"), [cur.size])))
    column.psi = psi(ref_bins, cur_bins)
    column.psi_bins = int(ref_bins.size)
    column.psi_edges = edges.tolist()
    return column


def _distinct_sorted(values: np.ndarray) -> int:
    return 1 + int(np.count_nonzero(values[1:] != values[:-1])) if values.size else 0


def _categorical_statistic(
    column: DriftColumn,
    method: Method,
    threshold: float | None,
    ref_counts: np.ndarray,
    cur_counts: np.ndarray,
) -> None:
    if method is Method.JENSENSHANNON:
        column.statistic = jensenshannon_counts(ref_counts, cur_counts)
        _finish(column, method, threshold, column.statistic)
    elif method is Method.CHISQUARE:
        column.statistic, column.p_value = chisquare_counts(ref_counts, cur_counts)
        total = int(ref_counts.sum() + cur_counts.sum())
        column.effect_size = {
            "name": "cramers_v",
            "value": finite(cramers_v(column.statistic, total, ref_counts.size)),
        }
        _finish(column, method, threshold, column.p_value)
    elif method is Method.Z:
        if ref_counts.size > 2:
            raise InputError(
                f"the z-test needs at most 2 values, the column has {ref_counts.size}",
                column=column.name,
            )
        column.statistic, column.p_value = z_test_counts(ref_counts, cur_counts)
        column.effect_size = {"name": "cohens_h", "value": finite(cohens_h(ref_counts, cur_counts))}
        _finish(column, method, threshold, column.p_value)
    else:
        raise InputError(f"method {method} does not apply to this column", column=column.name)


def _categorical_column(
    name: str, reference: pd.Series, current: pd.Series, options: DriftOptions
) -> DriftColumn:
    ref_table, ref_side = _category_counts(reference)
    cur_table, cur_side = _category_counts(current)
    column = DriftColumn(
        name=name,
        type=ColumnType.CATEGORICAL,
        status=Status.OK,
        reference=ref_side,
        current=cur_side,
    )
    if not ref_table or not cur_table:
        return _not_evaluable(column)
    keys = sorted(set(ref_table) | set(cur_table), key=sort_key)
    ref_counts = np.array([ref_table.get(k, 0) for k in keys], dtype=np.int64)
    cur_counts = np.array([cur_table.get(k, 0) for k in keys], dtype=np.int64)
    column.n_unique = len(keys)
    method, threshold, source = _resolve(name, ColumnType.CATEGORICAL, options)
    if method in NUMERICAL_ONLY:
        raise InputError(f"method {method} applies only to numerical columns", column=name)
    method = method or default_method(ref_side.n, ColumnType.CATEGORICAL, len(keys))
    column.threshold_source = source
    if ref_side.n < SMALL_SAMPLE or cur_side.n < SMALL_SAMPLE:
        column.warnings.append(f"small sample (n_reference={ref_side.n}, n_current={cur_side.n})")
    shown = [_json_value(k) for k in keys]
    column.bins = {"kind": "categories", **_listed(shown, MAX_LISTED_BINS)}
    _categorical_statistic(column, method, threshold, ref_counts, cur_counts)
    column.psi = psi(ref_counts, cur_counts)
    column.psi_bins = len(keys)
    new = [k for k in keys if k not in ref_table]
    column.new_categories = [_json_value(k) for k in new[:MAX_LISTED_CATEGORIES]]
    column.new_category_share = sum(cur_table[k] for k in new) / cur_side.n
    vanished = [k for k in keys if k not in cur_table][:MAX_LISTED_CATEGORIES]
    column.vanished_categories = [_json_value(k) for k in vanished]
    return column


def _json_value(value: Any) -> Any:
    """A category as JSON holds it: text for anything not a JSON scalar (a ``Decimal``, a
    time of day, bytes from a Parquet file), so the result always serialises."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _not_evaluable(column: DriftColumn) -> DriftColumn:
    column.status = Status.NOT_EVALUABLE
    empty = [
        side
        for side, figures in (("reference", column.reference), ("current", column.current))
        if figures.n == 0
    ]
    column.reason = f"no values left after cleaning in the {' and '.join(empty)} data"
    return column


def _accuracy(frame: pd.DataFrame, prediction: str, target: str) -> float | None:
    both = frame[[prediction, target]].dropna()
    if both.empty:
        return None
    return float((both[prediction] == both[target]).mean())


def _auc(frame: pd.DataFrame, prediction: str, target: str) -> float | None:
    both = frame[[prediction, target]].dropna()
    if both.empty or not pd.api.types.is_numeric_dtype(both[prediction].dtype):
        return None
    labels = both[target]
    if not set(pd.unique(labels)) <= {0, 1}:
        return None
    positive = labels.to_numpy(dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    from scipy import stats

    ranks = stats.rankdata(both[prediction].to_numpy(dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _concept(
    reference: pd.DataFrame, current: pd.DataFrame, prediction: str, target: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for metric, function in (("accuracy", _accuracy), ("auc", _auc)):
        ref_value = function(reference, prediction, target)
        cur_value = function(current, prediction, target)
        out[f"{metric}_reference"] = ref_value
        out[f"{metric}_current"] = cur_value
        out[f"{metric}_change"] = (
            None if ref_value is None or cur_value is None else cur_value - ref_value
        )
    return out


def _coerce_type(value: ColumnType | str, name: str) -> ColumnType:
    try:
        return ColumnType(value)
    except ValueError:
        raise InputError(
            f"unknown column type {value!r} (numerical, categorical or ignore)", column=name
        ) from None


def _exclusion(
    reference: pd.Series, current: pd.Series, column_type: ColumnType, declared: bool
) -> Exclusion | None:
    """Why a column is not compared, or None: a date (a declared numerical one arrives here
    as days since the epoch), nested values, a declared or inferred ``ignore``, an inferred
    identifier."""
    if is_date(reference) or is_date(current):
        return Exclusion.DATE
    if is_nested(reference) or is_nested(current):
        return Exclusion.UNSUPPORTED
    if column_type is ColumnType.IGNORE:
        return Exclusion.DECLARED_IGNORE if declared else Exclusion.UNSUPPORTED
    if not declared and is_identifier(reference, current):
        return Exclusion.IDENTIFIER
    return None


def drift_columns(
    reference_columns: Sequence[str], current_columns: Sequence[str], options: DriftOptions
) -> list[str]:
    """The columns a drift report reads: those named (``options.columns`` and the type map)
    or else every column both tables share, minus the excluded ones. A named column missing
    from either table is an error."""
    excluded = set(options.exclude)
    named = list(options.columns or []) + [
        c for c in options.column_types if c not in (options.columns or [])
    ]
    if named:
        for name in named:
            for label, present in (("reference", reference_columns), ("current", current_columns)):
                if name not in present:
                    raise InputError(f"not found in the {label} data", column=name)
        if options.columns:
            return [c for c in options.columns if c not in excluded]
    current_set = set(current_columns)
    return [c for c in reference_columns if c in current_set and c not in excluded]


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    options: DriftOptions | None = None,
    *,
    labels: tuple[str, str] = ("reference data", "current data"),
    inputs: Sequence[Mapping[str, Any]] = (),
) -> DriftResult:
    """Drift of every selected column of ``current`` against ``reference`` (METRICS_SPEC 1).

    Pure: reads nothing, writes nothing. Raises ``InputError`` for a wrong type (a column
    declared numerical that holds text, a method that does not apply, an unknown type).
    """
    options = options or DriftOptions()
    if not 0 < options.drift_share <= 1:
        raise InputError(f"drift_share must be in (0, 1], got {options.drift_share!r}")
    reference, current = prepare_frames(reference, current, options)
    names = drift_columns(list(reference.columns), list(current.columns), options)
    columns: list[DriftColumn] = []
    excluded: list[tuple[str, Exclusion]] = []
    for name in names:
        ref, cur = reference[name], current[name]
        declared = options.column_types.get(name)
        column_type = _coerce_type(declared, name) if declared is not None else infer_type(ref, cur)
        reason = _exclusion(ref, cur, column_type, declared is not None)
        if reason is not None:
            excluded.append((name, reason))
            continue
        if column_type is ColumnType.NUMERICAL:
            column = _numerical_column(name, ref, cur, options, labels)
        else:
            column = _categorical_column(name, ref, cur, options)
        if name == options.prediction:
            column.role = "prediction"
        elif name == options.target:
            column.role = "target"
        columns.append(column)
    with_p = [c for c in columns if c.p_value is not None]
    adjusted = benjamini_hochberg([float(c.p_value or 0.0) for c in with_p])
    for column, value in zip(with_p, adjusted, strict=True):
        column.p_value_bh = value
    concept = None
    if options.prediction and options.target:
        present = all(
            col in frame.columns
            for col in (options.prediction, options.target)
            for frame in (reference, current)
        )
        if present:
            concept = _concept(reference, current, options.prediction, options.target)
    shared = set(current.columns)
    requested = [
        (name, Exclusion.REQUESTED)
        for name in dict.fromkeys(options.exclude)
        if name in reference.columns and name in shared
    ]
    return DriftResult(
        columns=columns,
        drift_share=options.drift_share,
        ignored=[name for name, _ in excluded],
        excluded=excluded + requested,
        concept=concept,
        inputs=[dict(i) for i in inputs],
        thresholds_source=options.thresholds_source,
    )

"""Group fairness of a binary classifier (METRICS_SPEC.md section 2).

Groups are the intersections of the sensitive columns (a missing value is its own
``(missing)`` group; declared categories that never occur are listed with n = 0). One pass
does all the counting: every row gets the key ``4 * group + 2 * label + prediction`` and a
single ``np.bincount`` (weighted when there are sample weights) gives TN, FP, FN and TP per
group, from which every rate follows. ``overall`` sums the same cells over all rows.

Rates whose denominator is 0 are ``None`` (not estimable) and the group is left out of that
metric's aggregates and named; Fairlearn reports 0 there, the one place we differ.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

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
from governance.reports.engine.options import FairnessOptions
from governance.reports.summary import group_text

MISSING = "(missing)"
RATES = ("selection_rate", "base_rate", "tpr", "fpr", "fnr", "precision", "accuracy")
MAX_GROUPS = 100_000
WILSON_Z = 1.959963984540054


@dataclass
class FairnessResult:
    """Group rates, Fairlearn's aggregates, AIF360's signed metrics, the four-fifths rule and
    the verdict; ``to_dict`` is the output contract of METRICS_SPEC section 5."""

    overall: dict[str, Any]
    groups: list[dict[str, Any]]
    metrics: dict[str, Any]
    aggregates: dict[str, Any]
    four_fifths: list[dict[str, Any]]
    aif360: dict[str, Any] | None
    verdict: str
    verdict_reasons: list[str]
    settings: dict[str, Any]
    inputs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "fairness",
            "overall": self.overall,
            "groups": self.groups,
            "metrics": self.metrics,
            "aggregates": self.aggregates,
            "four_fifths": self.four_fifths,
            "aif360": self.aif360,
            "verdict": self.verdict,
            "verdict_reasons": list(self.verdict_reasons),
            "settings": self.settings,
            "inputs": list(self.inputs),
            "engine": ENGINE_VERSION,
            "libraries": library_versions(),
        }

    def to_record(self) -> Any:
        """For an audit record: floats as decimal strings, group attributes as sorted
        ``[column, value]`` pairs (user-chosen keys never become JSON object keys)."""
        data = self.to_dict()
        for section in ("groups", "four_fifths"):
            for entry in data[section]:
                entry["attributes"] = [
                    [k, entry["attributes"][k]] for k in sorted(entry["attributes"])
                ]
        for names in data["aggregates"].values():
            names["excluded"] = [sorted(a.items()) for a in names["excluded"]]
        return to_record(data)


_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def match(series: pd.Series, values: Sequence[Any], *, column: str, what: str) -> np.ndarray:
    """Rows of ``series`` equal to one of ``values``; string values given on a command line
    are compared with numeric and boolean columns as numbers and booleans."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = dtype.categories
        hits = [i for i, c in enumerate(categories) if _equal(native(c), values)]
        return np.isin(series.cat.codes.to_numpy(), hits)
    if pd.api.types.is_bool_dtype(dtype):
        wanted = [_as_bool(v) for v in values]
        if any(w is None for w in wanted):
            raise InputError(f"{what} {values!r} is not true/false", column=column)
        return series.isin(wanted).to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(dtype):
        numbers = [_as_number(v) for v in values]
        if any(n is None for n in numbers):
            raise InputError(
                f"{what} {values!r} is not a number, the column is numeric", column=column
            )
        return series.isin(numbers).to_numpy(dtype=bool, na_value=False)
    texts = list(values) + [str(v) for v in values]
    return series.isin(texts).to_numpy(dtype=bool, na_value=False)


def _equal(candidate: Any, values: Sequence[Any]) -> bool:
    return any(candidate == v or str(candidate) == str(v) for v in values)


def _check_complete(series: pd.Series, column: str) -> None:
    missing = int(series.isna().sum())
    if missing:
        raise InputError(f"has {missing} missing values (every row needs one)", column=column)


def _binary_default(series: pd.Series, column: str, what: str, hint: str) -> np.ndarray:
    """The positive rows of a 0/1 or boolean column; anything else needs an explicit value."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return series.to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        values = series.to_numpy()
        ones = values == 1
        if (ones | (values == 0)).all():
            return ones
        shown = sorted(set(pd.unique(series)), key=sort_key)[:5]
        raise InputError(f"{what} values {shown} are not 0/1: give {hint}", column=column)
    shown = sorted(map(str, pd.unique(series.dropna())))[:5]
    raise InputError(
        f"{what} holds text values {shown}: give {hint} (never guessed)", column=column
    )


def _codes(series: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """Group codes (0..k-1) and the value of each code; missing values get their own code."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        values = [native(c) for c in series.cat.categories]
        if (codes < 0).any():
            codes = codes.astype(np.int64)
    else:
        raw_codes, uniques = pd.factorize(series, sort=False, use_na_sentinel=True)
        values = [native(u) for u in uniques]
        order = sorted(range(len(values)), key=lambda i: sort_key(values[i]))
        remap = np.empty(len(values) + 1, dtype=np.int64)
        remap[np.asarray(order, dtype=np.int64)] = np.arange(len(values))
        remap[-1] = -1
        codes = remap[raw_codes]
        values = [values[i] for i in order]
    missing = codes < 0
    if missing.any():
        codes[missing] = len(values)
        values.append(MISSING)
    return codes, values


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _rates(cells: np.ndarray) -> dict[str, np.ndarray]:
    """Every rate from cells [..., (TN, FP, FN, TP)]; NaN where the denominator is 0."""
    tn, fp, fn, tp = cells[..., 0], cells[..., 1], cells[..., 2], cells[..., 3]
    total = tn + fp + fn + tp
    return {
        "selection_rate": _divide(fp + tp, total),
        "base_rate": _divide(fn + tp, total),
        "tpr": _divide(tp, tp + fn),
        "fpr": _divide(fp, fp + tn),
        "fnr": _divide(fn, tp + fn),
        "precision": _divide(tp, tp + fp),
        "accuracy": _divide(tp + tn, total),
    }


def _aggregate(values: np.ndarray, overall: float, names: list[dict[str, Any]]) -> dict[str, Any]:
    """Fairlearn's difference and ratio, between groups and to overall, over the groups where
    the metric is estimable (the others are named in ``excluded``)."""
    estimable = ~np.isnan(values)
    present = values[estimable]
    excluded = [names[i] for i in np.flatnonzero(~estimable)]
    if present.size == 0:
        return {
            "difference_between_groups": None,
            "difference_to_overall": None,
            "ratio_between_groups": None,
            "ratio_to_overall": None,
            "excluded": excluded,
        }
    high, low = float(present.max()), float(present.min())
    ratio_between = low / high if high != 0 else None
    to_overall: float | None = None
    if math.isfinite(overall) and overall != 0:
        ratios = present / overall
        over = ratios > 1
        ratios[over] = 1 / ratios[over]
        to_overall = float(ratios.min())
    return {
        "difference_between_groups": high - low,
        "difference_to_overall": (
            float(np.abs(present - overall).max()) if math.isfinite(overall) else None
        ),
        "ratio_between_groups": ratio_between,
        "ratio_to_overall": to_overall,
        "excluded": excluded,
    }


def _worst(first: float | None, second: float | None, pick: Any) -> float | None:
    if first is None or second is None:
        return None
    return float(pick(first, second))


def _wilson(successes: float, n: float) -> list[float] | None:
    if n == 0:
        return None
    p = successes / n
    z2 = WILSON_Z * WILSON_Z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = WILSON_Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def _aif360(
    frame: pd.DataFrame,
    options: FairnessOptions,
    label_fav: np.ndarray,
    pred_fav: np.ndarray,
    weights: np.ndarray | None,
) -> dict[str, Any]:
    """AIF360's signed metrics for the privileged rows (every ``privileged`` column equal to
    its value) against the unprivileged ones (the other rows with those columns present), in
    the favourable frame: "positive" means favourable, for the label and the prediction."""
    privileged = np.ones(len(frame), dtype=bool)
    known = np.ones(len(frame), dtype=bool)
    for column, value in options.privileged.items():
        if column not in options.sensitive:
            raise InputError(
                "privileged value given for a column that is not sensitive", column=column
            )
        hits = match(frame[column], [value], column=column, what="privileged value")
        if not hits.any():
            raise InputError(f"privileged value {value!r} does not occur", column=column)
        privileged &= hits
        known &= frame[column].notna().to_numpy()
    unprivileged = known & ~privileged

    def total(mask: np.ndarray) -> float:
        # Counting needs no weight array: at 1M rows that would be 8 MB per mask.
        return float(np.count_nonzero(mask)) if weights is None else float(weights[mask].sum())

    sides: dict[str, dict[str, float | None]] = {}
    for name, rows in (("privileged", privileged), ("unprivileged", unprivileged)):
        size = total(rows)
        fav_pred = total(rows & pred_fav)
        positives = total(rows & label_fav)
        negatives = total(rows & ~label_fav)
        sides[name] = {
            "n": int(rows.sum()),
            "selection_rate": fav_pred / size if size else None,
            "tpr": total(rows & label_fav & pred_fav) / positives if positives else None,
            "fpr": total(rows & ~label_fav & pred_fav) / negatives if negatives else None,
        }
    p, u = sides["privileged"], sides["unprivileged"]

    def diff(key: str) -> float | None:
        a, b = u[key], p[key]
        return None if a is None or b is None else a - b

    tpr_diff, fpr_diff = diff("tpr"), diff("fpr")
    sr_u, sr_p = u["selection_rate"], p["selection_rate"]
    # Theil index over all rows (unweighted, as AIF360): b = prediction - label + 1.
    rows_total = len(frame)
    counts = {
        0: np.count_nonzero(label_fav & ~pred_fav),
        2: np.count_nonzero(pred_fav & ~label_fav),
    }
    counts[1] = rows_total - counts[0] - counts[2]
    mu = (counts[1] + 2 * counts[2]) / rows_total
    theil = 0.0
    for value in (1, 2):
        if counts[value] and mu:
            theil += counts[value] * (value / mu) * math.log(value / mu)
    theil /= rows_total
    return {
        "privileged": {k: native(v) for k, v in options.privileged.items()},
        "groups": sides,
        "disparate_impact": sr_u / sr_p if sr_u is not None and sr_p else None,
        "statistical_parity_difference": diff("selection_rate"),
        "average_odds_difference": (
            None if tpr_diff is None or fpr_diff is None else 0.5 * (fpr_diff + tpr_diff)
        ),
        "average_abs_odds_difference": (
            None if tpr_diff is None or fpr_diff is None else 0.5 * (abs(fpr_diff) + abs(tpr_diff))
        ),
        "equal_opportunity_difference": tpr_diff,
        "theil_index": theil,
    }


def _outcomes(frame: pd.DataFrame, options: FairnessOptions) -> tuple[np.ndarray, np.ndarray, bool]:
    """Positive label rows, positive prediction rows, and whether favourable = positive."""
    label, prediction = frame[options.label], frame[options.prediction]
    _check_complete(label, options.label)
    _check_complete(prediction, options.prediction)
    if options.positive_label is not None:
        y = match(label, [options.positive_label], column=options.label, what="positive label")
        if not y.any():
            raise InputError(
                f"positive label {options.positive_label!r} does not occur", column=options.label
            )
    else:
        y = _binary_default(label, options.label, "label", "positive_label (--positive-label)")
    if options.prediction_positive:
        p = match(
            prediction,
            list(options.prediction_positive),
            column=options.prediction,
            what="positive prediction values",
        )
        if not p.any():
            raise InputError(
                f"none of the positive prediction values {list(options.prediction_positive)!r}"
                " occur",
                column=options.prediction,
            )
    elif options.positive_label is not None:
        p = match(
            prediction, [options.positive_label], column=options.prediction, what="positive label"
        )
    else:
        p = _binary_default(
            prediction,
            options.prediction,
            "prediction",
            "prediction_positive (--prediction-positive)",
        )
    favourable_positive = True
    if options.favorable_label is not None:
        fav = match(
            prediction, [options.favorable_label], column=options.prediction, what="favorable label"
        )
        if not fav.any():
            raise InputError(
                f"favorable label {options.favorable_label!r} does not occur",
                column=options.prediction,
            )
        if not (fav & ~p).any():
            favourable_positive = True
        elif not (fav & p).any():
            favourable_positive = False
        else:  # pragma: no cover - a value is either counted positive or not
            raise InputError("favorable label is on both sides", column=options.prediction)
    return y, p, favourable_positive


def _weights(frame: pd.DataFrame, column: str | None) -> np.ndarray | None:
    if not column:
        return None
    series = frame[column]
    if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        raise InputError(f"sample weights must be numbers, got {series.dtype}", column=column)
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isfinite(values).all() or (values < 0).any():
        raise InputError("sample weights must be finite and non-negative", column=column)
    return values


def compute_fairness(  # noqa: PLR0915 - one pass, then every section of the result
    frame: pd.DataFrame,
    options: FairnessOptions,
    *,
    inputs: Sequence[Mapping[str, Any]] = (),
) -> FairnessResult:
    """Fairness of ``options.prediction`` against ``options.label`` across the intersections
    of ``options.sensitive`` (METRICS_SPEC section 2). Pure; ``InputError`` for bad input."""
    if not options.sensitive:
        raise InputError("at least one sensitive column is required")
    for column in options.columns():
        if column not in frame.columns:
            raise InputError("not found in the data", column=column)
    if len(frame) == 0:
        raise InputError("the data has no rows")
    for column in dict.fromkeys([options.label, options.prediction, *options.sensitive]):
        # A date is neither an outcome nor a group: refused, never grouped day by day.
        if is_date(frame[column]):
            raise InputError(
                "is a date column: a label, prediction or sensitive attribute must be categorical",
                column=column,
            )
        if is_nested(frame[column]):
            raise InputError("holds nested values (lists or maps), not categories", column=column)
    y, p, favourable_positive = _outcomes(frame, options)
    weights = _weights(frame, options.sample_weight)
    if options.score:
        score = frame[options.score]
        if not pd.api.types.is_numeric_dtype(score.dtype):
            raise InputError(f"scores must be numbers, got {score.dtype}", column=options.score)

    key = np.zeros(len(frame), dtype=np.int64)
    levels: list[list[Any]] = []
    groups_total = 1
    for column in options.sensitive:
        codes, values = _codes(frame[column])
        groups_total *= len(values)
        if groups_total > MAX_GROUPS:
            raise InputError(
                f"more than {MAX_GROUPS} groups: not a sensitive attribute?", column=column
            )
        key *= len(values)
        key += codes
        levels.append(values)
    key *= 2
    key += y
    key *= 2
    key += p
    counts = np.bincount(key, minlength=groups_total * 4).reshape(groups_total, 4)
    cells = (
        counts.astype(np.float64)
        if weights is None
        else np.bincount(key, weights=weights, minlength=groups_total * 4).reshape(groups_total, 4)
    )
    del key

    grid = np.indices([len(v) for v in levels]).reshape(len(levels), -1).T
    names = [
        {
            col: levels[i][idx]
            for i, (col, idx) in enumerate(zip(options.sensitive, row, strict=True))
        }
        for row in grid
    ]
    rates = _rates(cells)
    overall_cells = cells.sum(axis=0)
    overall_rates = _rates(overall_cells)
    fav_cells = cells[:, 1] + cells[:, 3] if favourable_positive else cells[:, 0] + cells[:, 2]
    totals = cells.sum(axis=1)
    favourable_rate = _divide(fav_cells, totals)
    n = counts.sum(axis=1)
    positives = counts[:, 2] + counts[:, 3]
    negatives = counts[:, 0] + counts[:, 1]
    unstable = n < options.min_group_size
    unstable_error_rates = (positives < options.min_outcomes) | (negatives < options.min_outcomes)
    fav_counts = counts[:, 1] + counts[:, 3] if favourable_positive else counts[:, 0] + counts[:, 2]

    groups = []
    for g, attributes in enumerate(names):
        entry: dict[str, Any] = {"attributes": attributes, "n": int(n[g])}
        if weights is not None:
            entry["weight"] = float(totals[g])
        entry.update(
            {
                "positives": int(positives[g]),
                "negatives": int(negatives[g]),
                "predicted_positives": int(counts[g, 1] + counts[g, 3]),
            }
        )
        for rate in RATES:
            entry[rate] = finite(rates[rate][g])
        entry["favorable_rate"] = finite(favourable_rate[g])
        entry["selection_rate_interval"] = _wilson(float(counts[g, 1] + counts[g, 3]), float(n[g]))
        entry["favorable_rate_interval"] = _wilson(float(fav_counts[g]), float(n[g]))
        entry["unstable"] = bool(unstable[g])
        entry["unstable_error_rates"] = bool(unstable_error_rates[g])
        groups.append(entry)

    overall: dict[str, Any] = {"n": int(n.sum())}
    overall.update({rate: finite(overall_rates[rate]) for rate in RATES})
    overall["favorable_rate"] = finite(_divide(fav_cells.sum(), totals.sum()))
    aggregates = {
        rate: _aggregate(rates[rate], float(overall_rates[rate]), names)
        for rate in ("selection_rate", "tpr", "fpr")
    }
    sr, tpr, fpr = aggregates["selection_rate"], aggregates["tpr"], aggregates["fpr"]
    metrics = {
        "demographic_parity_difference": sr["difference_between_groups"],
        "demographic_parity_ratio": sr["ratio_between_groups"],
        "equalized_odds_difference": _worst(
            tpr["difference_between_groups"], fpr["difference_between_groups"], max
        ),
        "equalized_odds_ratio": _worst(
            tpr["ratio_between_groups"], fpr["ratio_between_groups"], min
        ),
        "equal_opportunity_difference": tpr["difference_between_groups"],
        "equal_opportunity_ratio": tpr["ratio_between_groups"],
        "demographic_parity_difference_to_overall": sr["difference_to_overall"],
        "demographic_parity_ratio_to_overall": sr["ratio_to_overall"],
        "equalized_odds_difference_to_overall": _worst(
            tpr["difference_to_overall"], fpr["difference_to_overall"], max
        ),
        "equalized_odds_ratio_to_overall": _worst(
            tpr["ratio_to_overall"], fpr["ratio_to_overall"], min
        ),
    }

    stable_rates = [
        favourable_rate[g]
        for g in range(len(names))
        if not unstable[g] and not np.isnan(favourable_rate[g])
    ]
    reference = max(stable_rates) if stable_rates else None
    four_fifths = []
    for g, attributes in enumerate(names):
        ratio = (
            float(favourable_rate[g] / reference)
            if reference and not np.isnan(favourable_rate[g])
            else None
        )
        four_fifths.append(
            {
                "attributes": attributes,
                "favorable_rate": finite(favourable_rate[g]),
                "impact_ratio": ratio,
                "flagged": ratio is not None and ratio < options.min_impact_ratio,
                "unstable": bool(unstable[g]),
            }
        )

    reasons = []
    failing = [f for f in four_fifths if f["flagged"] and not f["unstable"]]
    if reference is None:
        reasons.append("no stable group: the four-fifths rule cannot be applied")
    for entry in failing:
        group = group_text(cast("dict[str, Any]", entry["attributes"]))
        reasons.append(
            f"impact ratio {entry['impact_ratio']:.4f} < {options.min_impact_ratio} for {group}"
        )
    eod = metrics["equalized_odds_difference"]
    if eod is None:
        reasons.append("equalized odds difference not estimable")
    elif eod > options.max_equalized_odds_difference:
        reasons.append(
            f"equalized odds difference {eod:.4f} > {options.max_equalized_odds_difference}"
        )

    aif = None
    if options.privileged:
        label_fav = y if favourable_positive else ~y
        pred_fav = p if favourable_positive else ~p
        aif = _aif360(frame, options, label_fav, pred_fav, weights)
        aif["favorable"] = "positive" if favourable_positive else "negative"

    settings = {
        "label": options.label,
        "prediction": options.prediction,
        "sensitive": list(options.sensitive),
        "positive_label": native(options.positive_label),
        "prediction_positive": None
        if options.prediction_positive is None
        else [native(v) for v in options.prediction_positive],
        "favorable_label": native(options.favorable_label),
        "favorable_outcome": "positive prediction"
        if favourable_positive
        else "negative prediction",
        "sample_weight": options.sample_weight,
        "min_group_size": options.min_group_size,
        "min_outcomes": options.min_outcomes,
        "min_impact_ratio": options.min_impact_ratio,
        "max_equalized_odds_difference": options.max_equalized_odds_difference,
        "thresholds_source": options.thresholds_source,
    }
    return FairnessResult(
        overall=overall,
        groups=groups,
        metrics={k: finite(v) for k, v in metrics.items()},
        aggregates=aggregates,
        four_fifths=four_fifths,
        aif360=aif,
        verdict="fail" if reasons else "pass",
        verdict_reasons=reasons,
        settings=settings,
        inputs=[dict(i) for i in inputs],
    )

"""The options and thresholds of the engine's reports, free of numpy and pandas.

What a request names (the columns, the declared column types, the methods and their
thresholds) is checked and recorded by the API, the services and the ``report`` command long
before, and often without, any computation; importing this module costs no numerical library.
The engine (``drift``, ``fairness``) computes with these; they are re-exported there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ColumnType(StrEnum):
    NUMERICAL = "numerical"
    CATEGORICAL = "categorical"
    IGNORE = "ignore"


class Method(StrEnum):
    KS = "ks"
    CHISQUARE = "chisquare"
    Z = "z"
    WASSERSTEIN = "wasserstein"
    JENSENSHANNON = "jensenshannon"


DEFAULT_THRESHOLDS = {
    Method.KS: 0.05,
    Method.CHISQUARE: 0.05,
    Method.Z: 0.05,
    Method.WASSERSTEIN: 0.1,
    Method.JENSENSHANNON: 0.1,
}


@dataclass(frozen=True)
class MethodChoice:
    """An override of the method and/or the threshold (``None`` keeps the default)."""

    method: Method | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class DriftOptions:
    """What to compare and how. ``column_types`` maps names to ``numerical|categorical|ignore``
    (columns not named are inferred); overrides apply per column, then per type, then globally.
    """

    column_types: Mapping[str, ColumnType | str] = field(default_factory=dict)
    columns: Sequence[str] | None = None
    exclude: Sequence[str] = ()
    method: MethodChoice = MethodChoice()
    per_type: Mapping[str, MethodChoice] = field(default_factory=dict)
    per_column: Mapping[str, MethodChoice] = field(default_factory=dict)
    drift_share: float = 0.5
    prediction: str | None = None
    target: str | None = None
    thresholds_source: str = "default"


@dataclass(frozen=True)
class FairnessOptions:
    """The columns and values of a fairness report, and the thresholds of its verdict.

    ``positive_label`` is required unless the label is 0/1 or boolean; the prediction is
    positive when it is one of ``prediction_positive`` (when given) or equals the positive
    label. ``favorable_label`` is a prediction value naming the favourable side (default:
    the positive prediction). ``privileged`` maps sensitive columns to their privileged value
    for AIF360's signed metrics.
    """

    label: str
    prediction: str
    sensitive: Sequence[str]
    positive_label: Any = None
    prediction_positive: Sequence[Any] | None = None
    favorable_label: Any = None
    privileged: Mapping[str, Any] = field(default_factory=dict)
    sample_weight: str | None = None
    score: str | None = None
    min_group_size: int = 30
    min_outcomes: int = 5
    min_impact_ratio: float = 0.8
    max_equalized_odds_difference: float = 0.1
    thresholds_source: str = "default"

    def columns(self) -> list[str]:
        """Every column the report reads."""
        names = [self.label, self.prediction, *self.sensitive]
        names += [c for c in (self.sample_weight, self.score) if c]
        return list(dict.fromkeys(names))

"""The report engine: pure functions on DataFrames (METRICS_SPEC.md) and the file readers."""

from governance.reports.engine.drift import DriftOptions, DriftResult, MethodChoice, compute_drift
from governance.reports.engine.errors import InputError
from governance.reports.engine.fairness import FairnessOptions, FairnessResult, compute_fairness
from governance.reports.engine.readers import InputTable, read_table, table_columns

__all__ = [
    "DriftOptions",
    "DriftResult",
    "FairnessOptions",
    "FairnessResult",
    "InputError",
    "InputTable",
    "MethodChoice",
    "compute_drift",
    "compute_fairness",
    "read_table",
    "table_columns",
]

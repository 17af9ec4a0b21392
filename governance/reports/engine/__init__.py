"""The report engine: pure functions on DataFrames (METRICS_SPEC.md) and the file readers.

The options and the error are light and imported with the package; the computing names
(``compute_drift``, ``compute_fairness``, ``read_table``, ...) load their modules, and with
them numpy, pandas, scipy and pyarrow, on first access, so that a process which only checks or
records a request (the API, ``manage.py check``, a Celery worker at start) never pays for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_attributes
from governance.reports.engine.errors import InputError
from governance.reports.engine.options import DriftOptions, FairnessOptions, MethodChoice

if TYPE_CHECKING:
    from governance.reports.engine.drift import DriftResult, compute_drift
    from governance.reports.engine.fairness import FairnessResult, compute_fairness
    from governance.reports.engine.readers import InputTable, read_table, table_columns

# Name -> the module that defines it, imported when the name is first looked up.
_LAZY = {
    "DriftResult": "drift",
    "compute_drift": "drift",
    "FairnessResult": "fairness",
    "compute_fairness": "fairness",
    "InputTable": "readers",
    "read_table": "readers",
    "table_columns": "readers",
}

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


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)

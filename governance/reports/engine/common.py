"""Helpers shared by the drift and fairness engines: numbers for JSON and audit records,
library versions, value ordering, recognising dates."""

from __future__ import annotations

import math
from collections.abc import Hashable
from decimal import Decimal
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from audit.canonical import to_profile

ENGINE_VERSION = "warden-reports-engine/1"
_LIBRARIES = ("numpy", "pandas", "scipy", "pyarrow")


def library_versions() -> dict[str, str]:
    """The versions of the libraries every computed number depends on."""
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover - all four are dependencies
            versions[name] = "missing"
    return versions


def finite(value: Any) -> float | None:
    """A float for JSON output; NaN, infinities and None become None (``null``)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def native(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (for JSON keys and attribute values)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def sort_key(value: Any) -> tuple[int, Any]:
    """Categories sort numbers first (by value), then everything else by its text, so a
    column holding both never fails to sort and results are reproducible bit for bit."""
    value = native(value)
    if isinstance(value, bool | int | float | Decimal):
        return (0, float(value))
    return (1, str(value))


def to_record(value: Any) -> Any:
    """JSON output converted for an audit record: every float becomes a decimal string (the
    shortest repr that round-trips), as ``audit.canonical`` requires."""
    return to_profile(value)


def is_date(series: pd.Series) -> bool:
    """Dates and datetimes: ``datetime64`` (with or without a time zone) and the
    ``datetime.date``/``datetime.datetime`` objects pyarrow gives for ``date32`` columns."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return True
    if series.dtype != np.dtype(object):
        return False
    return pd.api.types.infer_dtype(series, skipna=True) in ("date", "datetime", "datetime64")


def is_nested(series: pd.Series) -> bool:
    """Lists, maps and structs (Parquet's nested types): values that cannot be counted as
    categories nor read as numbers."""
    if series.dtype != np.dtype(object):
        return False
    return not all(isinstance(value, Hashable) for value in series.dropna())

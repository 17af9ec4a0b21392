"""Helpers shared by the drift and fairness engines: numbers for JSON and audit records,
library versions, value ordering."""

from __future__ import annotations

import math
from decimal import Decimal
from importlib import metadata
from typing import Any

import numpy as np

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

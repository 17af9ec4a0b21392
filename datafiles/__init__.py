"""Reading tabular data files (CSV and Parquet): one reader for every part of Warden.

Dataset registration (``registry.datafiles``: digest, row count, schema) and the report
engine (``governance.reports.engine.readers``: the columns a report computes on) read files
the same way, through this package. It knows nothing of Django or of Warden's apps, so any
layer may import it; pyarrow is loaded with :mod:`datafiles.tables`, on first use of a
reading name, never by importing the package.

Every file is read once: it is memory-mapped, its SHA-256 computed over the mapped bytes, and
pyarrow parses the columns asked for from that same mapping, so the digest costs no second
read of the file and the columns not asked for are never converted.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from datafiles.errors import DataFileError

if TYPE_CHECKING:
    from datafiles.tables import (
        NULL_VALUES,
        PARQUET_MAGIC,
        DataFile,
        FileSummary,
        read_columns,
        summarise,
        table_columns,
    )

_LAZY = {
    "NULL_VALUES": "tables",
    "PARQUET_MAGIC": "tables",
    "DataFile": "tables",
    "FileSummary": "tables",
    "read_columns": "tables",
    "summarise": "tables",
    "table_columns": "tables",
}

__all__ = [
    "NULL_VALUES",
    "PARQUET_MAGIC",
    "DataFile",
    "DataFileError",
    "FileSummary",
    "read_columns",
    "summarise",
    "table_columns",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""Reading report inputs: the columns a report needs of a CSV or Parquet file, as pandas.

The file is read by the shared reader (:mod:`datafiles`): mapped once, hashed over the same
bytes pyarrow parses, only the needed columns converted (a Parquet column projection, a CSV
reader restricted with ``include_columns``). The Arrow table is then converted to pandas one
column at a time, each Arrow column released as soon as its pandas copy exists, so the peak
is the needed columns plus one column, never the whole file twice. Integer columns with
missing values become pandas' nullable ``Int64`` rather than floats, so type inference still
sees integers.

Every failure is an ``InputError`` naming the file and, where there is one, the column.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from datafiles import DataFileError
from datafiles import tables as _tables
from datafiles.tables import NULL_VALUES as _NULL_VALUES
from datafiles.tables import PARQUET_MAGIC, PARSE_OPTIONS
from governance.reports.engine.errors import InputError

__all__ = [
    "PARQUET_MAGIC",
    "PARSE_OPTIONS",
    "_NULL_VALUES",
    "InputTable",
    "read_table",
    "table_columns",
]


@dataclass(frozen=True)
class InputTable:
    """A table read for a report: the frame, where it came from and its digest."""

    frame: pd.DataFrame
    path: str
    sha256: str
    file_format: str
    rows: int

    def describe(self) -> dict[str, object]:
        """The input as recorded in a report (file name, format, rows, SHA-256)."""
        return {
            "file": Path(self.path).name,
            "format": self.file_format,
            "rows": self.rows,
            "sha256": self.sha256,
        }


@contextmanager
def _as_input_error() -> Iterator[None]:
    """The shared reader's refusal as the engine's own error, word for word."""
    try:
        yield
    except DataFileError as exc:
        raise InputError(exc.reason, source=exc.source, column=exc.column) from exc


def table_columns(path: str | Path, *, label: str) -> list[str]:
    """The column names of a CSV or Parquet file (reads only the header or the schema).

    A name that appears more than once is refused, whether or not a report reads it: no
    column of such a table can be named unambiguously."""
    with _as_input_error():
        return _tables.table_columns(path, label=label)


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    data: dict[str, pd.Series] = {}
    names = list(table.column_names)
    for name in names:
        column = table.column(0)
        table = table.remove_column(0)
        if pa.types.is_integer(column.type) and column.null_count:
            series = column.to_pandas(types_mapper={column.type: pd.Int64Dtype()}.get)
        else:
            series = column.to_pandas()
        data[name] = series
        del column
    return pd.DataFrame(data, copy=False)


def read_table(path: str | Path, columns: Sequence[str], *, label: str) -> InputTable:
    """Read ``columns`` of a CSV or Parquet file (``label`` names the file in errors).

    Refuses a missing file, an empty or non-tabular file, a missing column, a column name
    that appears more than once in the header and a table without data rows.
    """
    with _as_input_error():
        read = _tables.read_columns(path, columns, label=label)
    rows = read.rows
    return InputTable(
        frame=_to_pandas(read.table),
        path=str(Path(path)),
        sha256=read.sha256,
        file_format=read.file_format,
        rows=rows,
    )

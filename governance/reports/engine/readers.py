"""Reading report inputs: CSV or Parquet, only the columns needed, column by column.

Memory stays bounded for inputs of millions of rows: Parquet is read with a column
projection (``pyarrow.parquet.read_table(columns=...)``), CSV with pyarrow's multi-threaded
reader restricted to the needed columns (``ConvertOptions(include_columns=...)``); the Arrow
table is then converted to pandas one column at a time, each Arrow column released as soon
as its pandas copy exists, so the peak is the needed columns plus one column, never the
whole file twice. Integer columns with missing values become pandas' nullable ``Int64``
rather than floats, so type inference still sees integers.

Every failure is an ``InputError`` naming the file and, where there is one, the column.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from governance.reports.engine.errors import InputError

PARQUET_MAGIC = b"PAR1"
_SNIFF_BYTES = 8192
_CONVERSION_ERROR = re.compile(r"In CSV column #(\d+): CSV conversion error to \w+")
# A quoted value may hold a line break (RFC 4180); pyarrow only allows it when told, at some
# cost to its multi-threaded reading.
PARSE_OPTIONS = pa_csv.ParseOptions(newlines_in_values=True)
_NULL_VALUES = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "#N/A", "-NaN", "-nan"]


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


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sniff(path: Path, label: str) -> str:
    """``"parquet"`` or ``"csv"``; refuses missing, empty and binary non-Parquet files."""
    if not path.exists():
        raise InputError("file does not exist", source=label)
    if not path.is_file():
        raise InputError("is not a regular file", source=label)
    with open(path, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if not head.strip():
        raise InputError("file is empty", source=label)
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if b"\x00" in head:
        raise InputError("is not a CSV or Parquet table (binary content)", source=label)
    return "csv"


def _csv_header(path: Path, label: str) -> list[str]:
    try:
        reader = pa_csv.open_csv(
            path,
            parse_options=PARSE_OPTIONS,
            convert_options=pa_csv.ConvertOptions(column_types={}, strings_can_be_null=True),
        )
        names = list(reader.schema.names)
        reader.close()
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise InputError(f"is not a readable CSV table ({_first_line(exc)})", source=label) from exc
    return names


def table_columns(path: str | Path, *, label: str) -> list[str]:
    """The column names of a CSV or Parquet file (reads only the header or the schema).

    A name that appears more than once is refused, whether or not a report reads it: no
    column of such a table can be named unambiguously."""
    source = Path(path)
    kind = _sniff(source, label)
    if kind == "parquet":
        try:
            names = list(pq.read_schema(source).names)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(
                f"is not a readable Parquet file ({_first_line(exc)})", source=label
            ) from exc
    else:
        names = _csv_header(source, label)
    _refuse_duplicates(names, label)
    return names


def _refuse_duplicates(names: list[str], label: str) -> None:
    counts = Counter(names)
    duplicates = [name for name in dict.fromkeys(names) if counts[name] > 1]
    if len(duplicates) == 1:
        raise InputError("appears more than once in the header", source=label, column=duplicates[0])
    if duplicates:
        shown = ", ".join(repr(name) for name in duplicates)
        raise InputError(f"columns {shown} appear more than once in the header", source=label)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _read_csv(path: Path, columns: list[str], label: str, header: list[str]) -> pa.Table:
    column_types: dict[str, pa.DataType] = {}
    # pyarrow infers a column's type from the first block; a later value of another type
    # (an int column that turns float, or text) is retried with the wider type.
    for _ in range(2 * len(columns) + 1):
        options = pa_csv.ConvertOptions(
            include_columns=columns,
            column_types=column_types,
            null_values=_NULL_VALUES,
            strings_can_be_null=True,
        )
        try:
            return pa_csv.read_csv(path, parse_options=PARSE_OPTIONS, convert_options=options)
        except pa.ArrowInvalid as exc:
            match = _CONVERSION_ERROR.search(str(exc))
            if not match:
                raise InputError(
                    f"is not a readable CSV table ({_first_line(exc)})", source=label
                ) from exc
            name = header[int(match.group(1))]
            widened = pa.float64() if "to int" in str(exc) else pa.string()
            if column_types.get(name) == widened:
                raise InputError(
                    f"values cannot be read ({_first_line(exc)})", source=label, column=name
                ) from exc
            column_types[name] = widened
        except UnicodeDecodeError as exc:
            raise InputError("is not UTF-8 text", source=label) from exc
    raise InputError("column types could not be determined", source=label)


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
    source = Path(path)
    kind = _sniff(source, label)
    wanted = list(dict.fromkeys(columns))
    header = table_columns(source, label=label)
    for name in wanted:
        if name not in header:
            shown = ", ".join(repr(h) for h in header[:12]) + (", ..." if len(header) > 12 else "")
            raise InputError(f"not found (the file has {shown})", source=label, column=name)
    if kind == "parquet":
        try:
            table = pq.read_table(source, columns=wanted)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(
                f"is not a readable Parquet file ({_first_line(exc)})", source=label
            ) from exc
    else:
        table = _read_csv(source, wanted, label, header)
    if table.num_rows == 0:
        raise InputError("has no data rows", source=label)
    rows = table.num_rows
    frame = _to_pandas(table.select(wanted))
    return InputTable(
        frame=frame,
        path=str(source),
        sha256=file_sha256(source),
        file_format=kind,
        rows=rows,
    )

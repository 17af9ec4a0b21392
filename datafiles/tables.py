"""The reader: a CSV or Parquet file memory-mapped once, hashed and parsed from the mapping.

Two uses share it. :func:`read_columns` gives a report the Arrow table of the columns it
names: Parquet with a column projection, CSV with pyarrow's reader restricted to those
columns (``ConvertOptions(include_columns=...)``), so columns not asked for are never
converted. :func:`summarise` gives dataset registration the digest, row count and column
kinds of a whole file. In both the SHA-256 is computed over the same mapped bytes pyarrow
parses: the file is read from disk once.

Every refusal is a :class:`~datafiles.errors.DataFileError` naming the file and, where there
is one, the column.
"""

from __future__ import annotations

import csv
import hashlib
import io
import mmap
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from datafiles.errors import DataFileError

PARQUET_MAGIC = b"PAR1"
SNIFF_BYTES = 8192
# A quoted value may hold a line break (RFC 4180); pyarrow only allows it when told, at some
# cost to its multi-threaded reading.
PARSE_OPTIONS = pa_csv.ParseOptions(newlines_in_values=True)
NULL_VALUES = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "#N/A", "-NaN", "-nan"]
_CONVERSION_ERROR = re.compile(r"In CSV column #(\d+): CSV conversion error to \w+")


@dataclass(frozen=True)
class DataFile:
    """The columns read from a file, with its header, format and the SHA-256 of its bytes."""

    table: pa.Table
    header: list[str]
    sha256: str
    file_format: str

    @property
    def rows(self) -> int:
        return int(self.table.num_rows)


@dataclass(frozen=True)
class FileSummary:
    """What registering a file records: the SHA-256 of its bytes, its size, its format, its
    data row count and the kind of each column (``integer``, ``float`` or ``string``)."""

    sha256: str
    size: int
    file_format: str
    rows: int
    schema: dict[str, str]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _open(path: Path, label: str) -> mmap.mmap | bytes:
    """The file's bytes, memory-mapped: pages are read from disk once, as the digest and the
    parser use them, and belong to the page cache rather than to the process."""
    if not path.exists():
        raise DataFileError("file does not exist", source=label)
    if not path.is_file():
        raise DataFileError("is not a regular file", source=label)
    with path.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return b""
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)


def _map(path: Path, label: str) -> pa.Buffer:
    """The file's bytes as an Arrow buffer over the mapping (which it keeps alive: the file
    is unmapped when the last Arrow object holding it is released)."""
    return pa.py_buffer(_open(path, label))


def _head(data: pa.Buffer, size: int) -> bytes:
    return memoryview(data)[:size].tobytes()


def _sniff(data: pa.Buffer, label: str) -> str:
    """``"parquet"`` or ``"csv"``; refuses empty and binary non-Parquet content."""
    head = _head(data, SNIFF_BYTES)
    if not head.strip():
        raise DataFileError("file is empty", source=label)
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if b"\x00" in head:
        raise DataFileError("is not a CSV or Parquet table (binary content)", source=label)
    return "csv"


def _sha256(data: pa.Buffer) -> str:
    return hashlib.sha256(memoryview(data)).hexdigest()


def _refuse_duplicates(names: list[str], label: str) -> None:
    counts = Counter(names)
    duplicates = [name for name in dict.fromkeys(names) if counts[name] > 1]
    if len(duplicates) == 1:
        raise DataFileError(
            "appears more than once in the header", source=label, column=duplicates[0]
        )
    if duplicates:
        shown = ", ".join(repr(name) for name in duplicates)
        raise DataFileError(f"columns {shown} appear more than once in the header", source=label)


def _csv_header(data: pa.Buffer, label: str) -> list[str]:
    try:
        reader = pa_csv.open_csv(
            pa.BufferReader(data),
            parse_options=PARSE_OPTIONS,
            convert_options=pa_csv.ConvertOptions(column_types={}, strings_can_be_null=True),
        )
        names = list(reader.schema.names)
        reader.close()
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise DataFileError(
            f"is not a readable CSV table ({_first_line(exc)})", source=label
        ) from exc
    return names


def _parquet_file(data: pa.Buffer, label: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise DataFileError(
            f"is not a readable Parquet file ({_first_line(exc)})", source=label
        ) from exc


def _header(data: pa.Buffer, kind: str, label: str) -> list[str]:
    if kind == "parquet":
        names = list(_parquet_file(data, label).schema_arrow.names)
    else:
        names = _csv_header(data, label)
    _refuse_duplicates(names, label)
    return names


def table_columns(path: str | Path, *, label: str) -> list[str]:
    """The column names of a CSV or Parquet file (parses only the header or the schema).

    A name that appears more than once is refused, whether or not a report reads it: no
    column of such a table can be named unambiguously."""
    data = _map(Path(path), label)
    return _header(data, _sniff(data, label), label)


def _read_csv(data: pa.Buffer, columns: list[str], label: str, header: list[str]) -> pa.Table:
    column_types: dict[str, pa.DataType] = {}
    # pyarrow infers a column's type from the first block; a later value of another type
    # (an int column that turns float, or text) is retried with the wider type.
    for _ in range(2 * len(columns) + 1):
        options = pa_csv.ConvertOptions(
            include_columns=columns,
            column_types=column_types,
            null_values=NULL_VALUES,
            strings_can_be_null=True,
        )
        try:
            return pa_csv.read_csv(
                pa.BufferReader(data), parse_options=PARSE_OPTIONS, convert_options=options
            )
        except pa.ArrowInvalid as exc:
            match = _CONVERSION_ERROR.search(str(exc))
            if not match:
                raise DataFileError(
                    f"is not a readable CSV table ({_first_line(exc)})", source=label
                ) from exc
            name = header[int(match.group(1))]
            widened = pa.float64() if "to int" in str(exc) else pa.string()
            if column_types.get(name) == widened:
                raise DataFileError(
                    f"values cannot be read ({_first_line(exc)})", source=label, column=name
                ) from exc
            column_types[name] = widened
        except UnicodeDecodeError as exc:
            raise DataFileError("is not UTF-8 text", source=label) from exc
    raise DataFileError("column types could not be determined", source=label)


def read_columns(path: str | Path, columns: Sequence[str], *, label: str) -> DataFile:
    """Read ``columns`` (in that order, each once) of a CSV or Parquet file; ``label`` names
    the file in errors.

    Refuses a missing file, an empty or non-tabular file, a missing column, a column name
    that appears more than once in the header and a table without data rows.
    """
    data = _map(Path(path), label)
    kind = _sniff(data, label)
    wanted = list(dict.fromkeys(columns))
    header = _header(data, kind, label)
    for name in wanted:
        if name not in header:
            shown = ", ".join(repr(h) for h in header[:12]) + (", ..." if len(header) > 12 else "")
            raise DataFileError(f"not found (the file has {shown})", source=label, column=name)
    if kind == "parquet":
        try:
            table = pq.read_table(pa.BufferReader(data), columns=wanted)
        except (pa.ArrowException, OSError) as exc:
            raise DataFileError(
                f"is not a readable Parquet file ({_first_line(exc)})", source=label
            ) from exc
    else:
        table = _read_csv(data, wanted, label, header)
    if table.num_rows == 0:
        raise DataFileError("has no data rows", source=label)
    return DataFile(
        table=table.select(wanted), header=header, sha256=_sha256(data), file_format=kind
    )


def text_kind(values: Sequence[str]) -> str:
    """The kind of a CSV column from its text: ``integer`` when every non-empty value is one
    (as Python's ``int`` reads it), else ``float`` when every one is a float, else (or with
    no value at all) ``string``."""
    present = [v for v in values if v != ""]
    if not present:
        return "string"
    for convert, kind in ((int, "integer"), (float, "float")):
        try:
            for value in present:
                convert(value)
        except ValueError:
            continue
        return kind
    return "string"


def arrow_kind(data_type: pa.DataType) -> str:
    """The kind of a Parquet column from its Arrow type, in the words of :func:`text_kind`."""
    if pa.types.is_integer(data_type):
        return "integer"
    if pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        return "float"
    return "string"


def _field_count_error(data: pa.Buffer, label: str, width: int) -> DataFileError | None:
    """The first row whose field count differs from the header's, counted as Python's
    ``csv`` module splits rows (a blank line is a row of no field), or ``None``."""
    text = io.StringIO(data.to_pybytes().decode("utf-8"), newline="")
    reader = csv.reader(text)
    next(reader, None)
    for index, row in enumerate(reader):
        if len(row) != width:
            return DataFileError(
                f"row {index + 2} has {len(row)} fields, the header {width}", source=label
            )
    return None


def _may_hold_blank_lines(raw: mmap.mmap | bytes) -> bool:
    """Whether two line ends follow each other somewhere (a blank line, unless quoted)."""
    return any(raw.find(pair) >= 0 for pair in (b"\n\n", b"\r\r", b"\n\r"))


def _refusal(data: pa.Buffer, label: str, width: int, exc: Exception) -> DataFileError:
    """The registration error for a CSV pyarrow could not read: a row of the wrong width
    (found as Python's csv module finds it), text that is not UTF-8, else pyarrow's word."""
    if isinstance(exc, UnicodeDecodeError) or "UTF8" in str(exc):
        return DataFileError("is not UTF-8 text", source=label)
    try:
        short = _field_count_error(data, label, width)
    except UnicodeDecodeError:
        return DataFileError("is not UTF-8 text", source=label)
    return short or DataFileError(f"is not a readable CSV table ({_first_line(exc)})", source=label)


def _summarise_csv(
    raw: mmap.mmap | bytes, data: pa.Buffer, label: str, sample_rows: int
) -> tuple[int, dict[str, str]]:
    try:
        header = _csv_header(data, label)
    except DataFileError as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
        first = _head(data, SNIFF_BYTES).splitlines()[:1] or [b""]
        width = len(next(csv.reader([first[0].decode("utf-8", "replace")]), []))
        raise _refusal(data, label, width, cause) from exc
    if len(set(header)) != len(header):
        raise DataFileError("duplicate column names in the header", source=label)
    # A blank line is a row of no field to Python's csv module (a refused row) but is skipped
    # or read as empty values by pyarrow's; where one may exist, the csv module says.
    if _may_hold_blank_lines(raw):
        try:
            short = _field_count_error(data, label, len(header))
        except UnicodeDecodeError as exc:
            raise DataFileError("is not UTF-8 text", source=label) from exc
        if short is not None:
            raise short
    # Every value as the text written: the kinds and the row count are those of Python's
    # csv module reading the file.
    convert = pa_csv.ConvertOptions(
        column_types=dict.fromkeys(header, pa.string()),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    samples: list[list[str]] = [[] for _ in header]
    rows = 0
    try:
        reader = pa_csv.open_csv(
            pa.BufferReader(data), parse_options=PARSE_OPTIONS, convert_options=convert
        )
        for batch in reader:
            take = min(sample_rows - rows, batch.num_rows)
            if take > 0:
                for index, values in enumerate(samples):
                    values.extend(batch.column(index).slice(0, take).to_pylist())
            rows += batch.num_rows
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _refusal(data, label, len(header), exc) from exc
    return rows, {name: text_kind(values) for name, values in zip(header, samples, strict=True)}


def summarise(path: str | Path, *, label: str, sample_rows: int = 2000) -> FileSummary:
    """Digest, size, format, row count and column kinds of a whole CSV or Parquet file.

    A CSV's kinds are inferred from the text of its first ``sample_rows`` rows
    (:func:`text_kind`), a Parquet file's read from its schema (:func:`arrow_kind`). Refuses a
    missing or empty file, a duplicated column name, a CSV row whose field count differs
    from the header's, and a file that is not UTF-8 text or not readable Parquet.
    """
    raw = _open(Path(path), label)
    data = pa.py_buffer(raw)
    if data.size == 0:
        raise DataFileError("empty file, no header row", source=label)
    if _head(data, len(PARQUET_MAGIC)) == PARQUET_MAGIC:
        parquet = _parquet_file(data, label)
        schema = parquet.schema_arrow
        if len(set(schema.names)) != len(schema.names):
            raise DataFileError("duplicate column names in the header", source=label)
        kinds = {field.name: arrow_kind(field.type) for field in schema}
        rows, file_format = int(parquet.metadata.num_rows), "parquet"
    else:
        (rows, kinds), file_format = _summarise_csv(raw, data, label, sample_rows), "csv"
    return FileSummary(
        sha256=_sha256(data), size=int(data.size), file_format=file_format, rows=rows, schema=kinds
    )

"""Properties of the readers on arbitrary small tables: a CSV (any column names, unicode,
empty or repeated; ints, floats, text with commas, quotes and line breaks; missing values;
minimal or full quoting; a byte-order mark; CRLF line ends) or a Parquet file is either read
into the values that were written, or refused with the readers' own one-line ``InputError``
(which the API answers as 400). Nothing else may escape.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from governance.reports.engine import InputError, read_table
from governance.reports.engine.readers import _NULL_VALUES

pytestmark = pytest.mark.database_free

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAMES = st.one_of(
    st.sampled_from(["a", "b", "", " ", "é", "名前", "x,y", 'q"uote', "NA", "1"]),
    st.text(min_size=0, max_size=6),
)
TEXT = st.text(alphabet=st.sampled_from(list("abcXYZ é名,;\"' \t\n\r01-.")), min_size=0, max_size=8)
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=64)


def cells(kind: str) -> st.SearchStrategy[str]:
    values: dict[str, st.SearchStrategy[str]] = {
        "int": INT64.map(str),
        "float": FLOATS.map(repr),
        "text": TEXT,
    }
    return st.one_of(values[kind], st.sampled_from(["", "NA", "null"]))


@st.composite
def csv_tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    width = draw(st.integers(min_value=1, max_value=4))
    names = draw(st.lists(NAMES, min_size=width, max_size=width))
    kinds = draw(
        st.lists(st.sampled_from(["int", "float", "text"]), min_size=width, max_size=width)
    )
    height = draw(st.integers(min_value=0, max_value=6))
    rows = [[draw(cells(kind)) for kind in kinds] for _ in range(height)]
    return names, rows


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def same_cell(written: str, read: Any) -> bool:
    """Whether a value read is the text written, as a CSV types it (a number, a boolean, a
    date, a missing value, or the text itself)."""
    if _missing(read):
        return written in _NULL_VALUES
    if isinstance(read, bool):
        return (
            written.strip().lower() in ("true", "false", "1", "0")
            and (written.strip().lower() in ("true", "1")) == read
        )
    if isinstance(read, int):
        return int(written) == read
    if isinstance(read, float):
        return float(written) == read
    if isinstance(read, dt.date | pd.Timestamp):
        return pd.Timestamp(written) == pd.Timestamp(read)
    return bool(read == written)


def write_csv(
    path: Path,
    names: list[str],
    rows: list[list[str]],
    *,
    quoting: int,
    line_end: str,
    bom: bool,
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=quoting, lineterminator=line_end)
    writer.writerow(names)
    writer.writerows(rows)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode())


def faithful(path: Path, names: list[str], rows: list[list[str]]) -> bool:
    """Whether the file holds the table: Python's own CSV reader reads it back. (With
    minimal quoting a lone carriage return is written bare, which ends a line.)"""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.reader(handle)) == [names, *rows]


@PROPERTY
@given(
    table=csv_tables(),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    line_end=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
)
def test_a_csv_is_read_as_written_or_refused_with_one_clear_error(table, quoting, line_end, bom):
    names, rows = table
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "table.csv"
        write_csv(path, names, rows, quoting=quoting, line_end=line_end, bom=bom)
        assume(faithful(path, names, rows))
        wanted = list(dict.fromkeys(names))
        try:
            read = read_table(path, wanted, label="table.csv")
        except InputError as refused:
            assert str(refused).startswith("table.csv") and "\n" not in str(refused)
            if len(wanted) < len(names):
                assert "more than once in the header" in str(refused)
            return
    assert len(wanted) == len(names), "a header naming a column twice was read"
    assert list(read.frame.columns) == names and read.rows == len(rows) > 0
    for index, name in enumerate(names):
        values = read.frame[name].tolist()
        for row, value in zip(rows, values, strict=True):
            assert same_cell(row[index], value), (name, row[index], value)


COLUMNS = {
    "int": (pa.int64(), INT64),
    "float": (pa.float64(), FLOATS),
    "text": (pa.string(), TEXT),
    "bool": (pa.bool_(), st.booleans()),
    "date": (pa.date32(), st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 1, 1))),
}


@st.composite
def parquet_tables(draw: st.DrawFn) -> tuple[list[str], list[str], list[list[Any]]]:
    width = draw(st.integers(min_value=1, max_value=4))
    names = draw(st.lists(NAMES, min_size=width, max_size=width))
    kinds = draw(st.lists(st.sampled_from(sorted(COLUMNS)), min_size=width, max_size=width))
    height = draw(st.integers(min_value=0, max_value=6))
    columns = [
        draw(st.lists(st.one_of(st.none(), COLUMNS[kind][1]), min_size=height, max_size=height))
        for kind in kinds
    ]
    return names, kinds, columns


@PROPERTY
@given(table=parquet_tables())
def test_a_parquet_file_is_read_as_written_or_refused_with_one_clear_error(table):
    names, kinds, columns = table
    arrays = [
        pa.array(values, type=COLUMNS[kind][0]) for kind, values in zip(kinds, columns, strict=True)
    ]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "table.parquet"
        pq.write_table(pa.Table.from_arrays(arrays, names=names), path)
        wanted = list(dict.fromkeys(names))
        try:
            read = read_table(path, wanted, label="table.parquet")
        except InputError as refused:
            assert str(refused).startswith("table.parquet") and "\n" not in str(refused)
            if len(wanted) < len(names):
                assert "more than once in the header" in str(refused)
            else:
                assert not columns[0], "a Parquet file with rows was refused"
            return
    assert len(wanted) == len(names), "a schema naming a column twice was read"
    assert list(read.frame.columns) == names
    for name, written in zip(names, columns, strict=True):
        values = read.frame[name].tolist()
        for before, after in zip(written, values, strict=True):
            if before is None:
                assert _missing(after), (name, after)
            else:
                assert after == before, (name, before, after)

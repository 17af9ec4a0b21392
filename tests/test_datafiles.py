"""The shared data-file reader (``datafiles``): both formats, only the columns asked for, the
digest of the very bytes read, and one clear ``DataFileError`` per bad file."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import datafiles
from datafiles import DataFileError
from registry.datafiles import describe_csv, describe_file, file_digest

pytestmark = pytest.mark.database_free

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    table = pa.table({"a": [1, 2, None], "b": ["x", "y", "z"], "c": [0.5, 1.5, 2.5]})
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("a,b,c\n1,x,0.5\n2,y,1.5\n,z,2.5\n")
    parquet_path = tmp_path / "t.parquet"
    pq.write_table(table, parquet_path)
    return {"csv": csv_path, "parquet": parquet_path}


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_reads_only_the_columns_asked_for_in_their_order(files, kind):
    read = datafiles.read_columns(files[kind], ["c", "a", "c"], label=kind)
    assert read.table.column_names == ["c", "a"]
    assert read.header == ["a", "b", "c"]
    assert read.file_format == kind and read.rows == 3
    assert read.table.column("c").to_pylist() == [0.5, 1.5, 2.5]
    assert read.table.column("a").to_pylist() == [1, 2, None]


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_the_digest_is_the_sha256_of_the_file(files, kind):
    expected = hashlib.sha256(files[kind].read_bytes()).hexdigest()
    assert datafiles.read_columns(files[kind], ["b"], label=kind).sha256 == expected
    assert datafiles.summarise(files[kind], label=kind).sha256 == expected
    assert describe_file(files[kind]).content_digest == f"sha256:{expected}"
    assert file_digest(files[kind]) == f"sha256:{expected}"


def test_table_columns_reads_the_header_or_the_schema(files):
    assert datafiles.table_columns(files["csv"], label="c") == ["a", "b", "c"]
    assert datafiles.table_columns(files["parquet"], label="p") == ["a", "b", "c"]


def test_registration_summary_of_both_formats(files):
    csv_summary = datafiles.summarise(files["csv"], label="t.csv")
    assert (csv_summary.rows, csv_summary.file_format) == (3, "csv")
    assert csv_summary.schema == {"a": "integer", "b": "string", "c": "float"}
    assert csv_summary.size == files["csv"].stat().st_size
    parquet_summary = datafiles.summarise(files["parquet"], label="t.parquet")
    assert parquet_summary.rows == 3
    assert parquet_summary.schema == {"a": "integer", "b": "string", "c": "float"}
    described = describe_csv(files["csv"])
    assert (described.row_count, described.schema) == (3, csv_summary.schema)


def test_registration_kinds_come_from_the_first_sample_rows(tmp_path):
    path = tmp_path / "late.csv"
    path.write_text("n\n" + "".join(f"{i}\n" for i in range(5)) + "x\n")
    assert describe_file(path, sample_rows=5).schema == {"n": "integer"}
    assert describe_file(path).schema == {"n": "string"}
    assert describe_file(path).row_count == 6


@pytest.mark.parametrize(
    ("content", "columns", "message"),
    [
        (b"", ["a"], "f.csv: file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", ["a"], "f.csv: is not a CSV or Parquet table"),
        (b"a,b\n", ["a"], "f.csv: has no data rows"),
        (b"a,b,b\n1,2,3\n", ["a"], "f.csv, column 'b': appears more than once in the header"),
        (b"x,y\n1,2\n", ["a"], "f.csv, column 'a': not found (the file has 'x', 'y')"),
        (b"PAR1garbage", ["a"], "f.csv: is not a readable Parquet file"),
    ],
)
def test_bad_report_inputs_are_one_line_errors(tmp_path, content, columns, message):
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    with pytest.raises(DataFileError) as caught:
        datafiles.read_columns(path, columns, label="f.csv")
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(DataFileError, match=r"nope\.csv: file does not exist"):
        datafiles.read_columns(tmp_path / "nope.csv", ["a"], label="nope.csv")
    with pytest.raises(DataFileError, match="is not a regular file"):
        datafiles.table_columns(tmp_path, label="dir")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "f.csv: empty file, no header row"),
        (b"a,a\n1,2\n", "f.csv: duplicate column names in the header"),
        (b"a,b\n1,2\n3\n", "f.csv: row 3 has 1 fields, the header 2"),
        (b"a,b\n1,2,3\n", "f.csv: row 2 has 3 fields, the header 2"),
        (b"a,b\n1,2\n\n3,4\n", "f.csv: row 3 has 0 fields, the header 2"),
        (b"a\n1\n\n2\n", "f.csv: row 3 has 0 fields, the header 1"),
        ("a,b\n1,\u00e9\n".encode("latin-1"), "f.csv: is not UTF-8 text"),
    ],
)
def test_bad_files_to_register_are_value_errors_naming_the_file(tmp_path, content, message):
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError) as caught:
        describe_file(path)
    assert str(caught.value) == message


def test_a_quoted_blank_line_is_a_value_not_a_row(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('a,b\n1,"x\n\ny"\n2,z\n')
    assert describe_file(path).row_count == 2


def test_importing_the_package_loads_no_numerical_library():
    code = (
        "import sys, datafiles, registry.datafiles; "
        "print(sorted(m for m in ('pyarrow', 'numpy', 'pandas', 'django') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"

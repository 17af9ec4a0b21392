"""The readers: only the needed columns, types kept, one clear error per bad file."""

from __future__ import annotations

import pandas as pd
import pytest

from governance.reports.engine import InputError, read_table, table_columns

pytestmark = pytest.mark.database_free


def test_reads_only_the_requested_columns_from_csv_and_parquet(tmp_path):
    frame = pd.DataFrame({"a": [1, 2, None], "b": ["x", "y", "z"], "c": [0.5, 1.5, 2.5]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    for name in ("t.csv", "t.parquet"):
        table = read_table(tmp_path / name, ["c", "a"], label=name)
        assert list(table.frame.columns) == ["c", "a"]
        assert str(table.frame["a"].dtype) in ("Int64", "float64")
        assert table.rows == 3 and len(table.sha256) == 64
    (tmp_path / "ints.csv").write_text("a,b\n1,x\n2,y\n,z\n")
    csv_table = read_table(tmp_path / "ints.csv", ["a"], label="ints.csv")
    assert str(csv_table.frame["a"].dtype) == "Int64"
    assert table_columns(tmp_path / "t.parquet", label="p") == ["a", "b", "c"]


def test_a_column_that_changes_type_late_in_a_csv_is_widened(tmp_path):
    rows = ["n,s"] + [f"{i},{i}" for i in range(200_000)] + ["1.5,text"]
    (tmp_path / "late.csv").write_text("\n".join(rows) + "\n")
    frame = read_table(tmp_path / "late.csv", ["n", "s"], label="late.csv").frame
    assert frame["n"].dtype == "float64" and frame["n"].iloc[-1] == 1.5
    assert frame["s"].iloc[-1] == "text"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "late.csv: file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV or Parquet table"),
        (b"a,b\n", "has no data rows"),
        (b"a,a\n1,2\n", "column 'a': appears more than once"),
        (b"x,y\n1,2\n", "column 'a': not found (the file has 'x', 'y')"),
        (b"PAR1garbage", "not a readable Parquet file"),
    ],
)
def test_bad_files_give_one_clear_message(tmp_path, content, message):
    path = tmp_path / "late.csv"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        read_table(path, ["a"], label="late.csv")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_duplicated_header_is_refused_even_where_its_columns_are_not_read(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("a,b,b,c,c\n1,2,3,4,5\n")
    for read in (
        lambda: table_columns(path, label="dup.csv"),
        lambda: read_table(path, ["a"], label="dup.csv"),
    ):
        with pytest.raises(InputError) as caught:
            read()
        assert str(caught.value) == (
            "dup.csv: columns 'b', 'c' appear more than once in the header"
        )


def test_quoted_values_may_hold_line_breaks_in_a_file_of_many_blocks(tmp_path):
    # pyarrow reads in blocks of 1 MiB; a block must not end inside a quoted value.
    path = tmp_path / "notes.csv"
    rows = "".join(f'{i},"line {i}\r\nnext {i}"\r\n' for i in range(120_000))
    path.write_text("id,note\r\n" + rows, newline="")
    frame = read_table(path, ["id", "note"], label="notes.csv").frame
    assert len(frame) == 120_000 and frame["id"].iloc[-1] == 119_999
    assert frame["note"].iloc[70_000] == "line 70000\r\nnext 70000"

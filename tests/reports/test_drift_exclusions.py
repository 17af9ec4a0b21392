"""Columns a drift report does not compare, and why: dates (unless declared numerical, then
days since the epoch) and identifiers (integer or text unique per row, never floats).

The COMPAS file has date and datetime columns and two identifiers; its first 400 rows, split
in two, go through ``manage.py report drift`` as a person would run it.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from django.core.management import call_command

from governance.reports.engine import DriftOptions, compute_drift, compute_fairness
from governance.reports.engine.errors import InputError
from governance.reports.engine.fairness import FairnessOptions
from tests.support import need

pytestmark = pytest.mark.database_free

ROOT = Path(__file__).resolve().parents[2]
COMPAS = ROOT / "data" / "compas-scores-two-years.csv"
COMPAS_DATES = {
    "compas_screening_date", "c_jail_in", "c_jail_out", "c_offense_date", "c_arrest_date",
    "r_offense_date", "r_jail_in", "r_jail_out", "vr_offense_date", "screening_date",
    "v_screening_date", "in_custody", "out_custody",
}  # fmt: skip


@pytest.fixture(scope="module")
def compas_halves(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Rows 1-200 and 201-400 of the COMPAS file, byte for byte as shipped."""
    lines = COMPAS.read_text().splitlines(keepends=True)
    folder = tmp_path_factory.mktemp("compas")
    reference, current = folder / "reference.csv", folder / "current.csv"
    reference.write_text(lines[0] + "".join(lines[1:201]))
    current.write_text(lines[0] + "".join(lines[201:401]))
    return reference, current


def excluded(result: dict) -> dict[str, str]:
    return {item["name"]: item["reason"] for item in result["excluded"]}


def test_compas_drift_excludes_dates_and_identifiers_with_their_reasons(compas_halves):
    reference, current = compas_halves
    out = io.StringIO()
    call_command(
        "report", "drift", "--reference", str(reference), "--current", str(current), "--json",
        stdout=out,
    )  # fmt: skip
    result = json.loads(out.getvalue())
    reasons = excluded(result)
    assert {name for name, reason in reasons.items() if reason == "date"} == COMPAS_DATES
    assert reasons["id"] == "identifier" and reasons["c_case_number"] == "identifier"
    compared = {c["name"] for c in result["columns"]}
    assert not compared & set(reasons)
    assert {"race", "age", "priors_count", "decile_score", "days_b_screening_arrest"} <= compared
    assert "days_b_screening_arrest" not in reasons  # a float column is never an identifier


def test_compas_drift_pdf_lists_the_excluded_columns(compas_halves, tmp_path):
    need(shutil.which("pdftotext") is not None, "poppler-utils", "apt-get install poppler-utils")
    reference, current = compas_halves
    target = tmp_path / "compas-drift.pdf"
    call_command(
        "report", "drift", "--reference", str(reference), "--current", str(current),
        "--pdf", str(target), stdout=io.StringIO(),
    )  # fmt: skip
    text = subprocess.run(
        ["pdftotext", "-layout", str(target), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Not compared" in text
    assert "c_case_number (identifier)" in text and "compas_screening_date (date)" in text


def test_a_date_column_declared_numerical_is_compared_as_days_since_the_epoch():
    reference = pd.DataFrame(
        {"when": [dt.date(1970, 1, 1) + dt.timedelta(days=i) for i in range(40)]}
    )
    current = pd.DataFrame(
        {"when": [dt.datetime(1970, 1, 21, 12) + dt.timedelta(days=i) for i in range(40)]}
    )
    result = compute_drift(
        reference, current, DriftOptions(column_types={"when": "numerical"})
    ).to_dict()
    assert result["excluded"] == []
    (column,) = result["columns"]
    assert column["type"] == "numerical" and column["status"] == "ok"
    assert column["psi_edges"][0] == pytest.approx(3.9)  # deciles of days 0..39
    json.dumps(result, allow_nan=False)


def test_a_date_column_not_declared_numerical_is_excluded_as_a_date():
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i % 30) for i in range(60)]
    frame = pd.DataFrame(
        {"day": days, "stamp": pd.to_datetime(days), "n": [i % 3 for i in range(60)]}
    )
    result = compute_drift(
        frame, frame, DriftOptions(column_types={"day": "categorical"})
    ).to_dict()
    assert excluded(result) == {"day": "date", "stamp": "date"}
    assert [c["name"] for c in result["columns"]] == ["n"]
    json.dumps(result, allow_nan=False)


def test_unique_integer_and_text_columns_are_identifiers_but_unique_floats_are_not():
    def frame(start: int) -> pd.DataFrame:
        rows = range(start, start + 50)
        return pd.DataFrame(
            {
                "row_id": list(rows),
                "case": [f"C{i:05d}" for i in rows],
                "score": [i + 0.5 for i in rows],
                "group": [i % 4 for i in rows],
            }
        )

    result = compute_drift(frame(0), frame(1000)).to_dict()
    assert excluded(result) == {"row_id": "identifier", "case": "identifier"}
    assert {c["name"]: c["type"] for c in result["columns"]} == {
        "score": "numerical",
        "group": "categorical",
    }


def test_a_declared_type_overrides_the_identifier_rule():
    reference = pd.DataFrame({"row_id": list(range(50))})
    current = pd.DataFrame({"row_id": list(range(25, 75))})
    result = compute_drift(
        reference, current, DriftOptions(column_types={"row_id": "numerical"})
    ).to_dict()
    assert result["excluded"] == []
    assert result["columns"][0]["name"] == "row_id"


def test_requested_and_declared_ignored_columns_are_listed_as_excluded():
    frame = pd.DataFrame({"a": [1.0, 2.0] * 20, "b": ["x", "y"] * 20, "c": [0, 1] * 20})
    result = compute_drift(
        frame, frame, DriftOptions(column_types={"b": "ignore"}, exclude=["c"])
    ).to_dict()
    assert excluded(result) == {"b": "declared ignore", "c": "requested"}


@pytest.mark.parametrize("role", ["sensitive", "label", "prediction"])
def test_fairness_refuses_a_date_column_with_one_clear_error(role):
    frame = pd.DataFrame(
        {
            "y": [0, 1] * 20,
            "p": [1, 0] * 20,
            "g": ["a", "b", "b", "a"] * 10,
            "day": [dt.date(2024, 1, 1 + i % 2) for i in range(40)],
        }
    )
    names = {"sensitive": ["g"], "label": "y", "prediction": "p"}
    names[role] = ["day"] if role == "sensitive" else "day"
    options = FairnessOptions(
        label=str(names["label"]), prediction=str(names["prediction"]),
        sensitive=list(names["sensitive"]),
    )  # fmt: skip
    with pytest.raises(InputError) as caught:
        compute_fairness(frame, options)
    assert "column 'day': is a date column" in str(caught.value)


def test_nested_parquet_columns_are_excluded_from_drift_and_refused_by_fairness(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from governance.reports.engine import read_table

    path = tmp_path / "nested.parquet"
    table = pa.table(
        {
            "tags": [[1, 2], [3]] * 20,
            "meta": [{"k": 1}, {"k": 2}] * 20,
            "y": [0, 1] * 20,
            "p": [1, 0] * 20,
        }
    )
    pq.write_table(table, path)
    frame = read_table(path, ["tags", "meta", "y", "p"], label="nested.parquet").frame
    result = compute_drift(frame, frame).to_dict()
    assert excluded(result) == {"tags": "unsupported type", "meta": "unsupported type"}
    json.dumps(result, allow_nan=False)
    options = FairnessOptions(label="y", prediction="p", sensitive=["tags"])
    with pytest.raises(InputError) as caught:
        compute_fairness(frame, options)
    assert "column 'tags': holds nested values" in str(caught.value)

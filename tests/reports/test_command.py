"""``manage.py report``: the output contract, exit codes, bad input, no database, and the
COMPAS and bike-sharing examples."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

ROOT = Path(__file__).resolve().parents[2]
COMPAS = ROOT / "data" / "compas-scores-two-years.csv"
BIKE = ROOT / "data" / "bike-sharing-hour.csv"
BIKE_COLUMNS = ["hr", "weekday", "workingday", "weathersit", "temp", "atemp", "hum",
                "windspeed", "casual", "registered", "cnt"]  # fmt: skip


BIKE_TYPES = ",".join(
    f"{c}:{'categorical' if c in ('weekday', 'workingday', 'weathersit') else 'numerical'}"
    for c in BIKE_COLUMNS
)


def run(*args: str) -> dict:
    out = io.StringIO()
    call_command("report", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def compas(*extra: str) -> dict:
    return run(
        "fairness", "--input", str(COMPAS), "--label", "two_year_recid",
        "--prediction", "score_text", "--prediction-positive", "Medium,High",
        "--favorable-label", "Low", *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def bike_months(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    bike = pd.read_csv(BIKE)
    folder = tmp_path_factory.mktemp("bike")
    january = folder / "january.parquet"
    july = folder / "july.csv"
    bike[(bike.yr == 0) & (bike.mnth == 1)].to_parquet(january)
    bike[(bike.yr == 0) & (bike.mnth == 7)].to_csv(july, index=False)
    return january, july


def test_compas_by_race_follows_the_contract_and_is_unfair():
    result = compas("--sensitive", "race", "--privileged", "race=Caucasian")
    groups = {g["attributes"]["race"]: g for g in result["groups"]}
    black, white = groups["African-American"], groups["Caucasian"]
    assert black["n"] == 3696 and white["n"] == 2454
    for key in (
        "selection_rate",
        "base_rate",
        "tpr",
        "fpr",
        "fnr",
        "precision",
        "accuracy",
        "unstable",
    ):
        assert key in black
    # ProPublica's finding: higher false positive rate for black defendants.
    assert black["fpr"] > 1.8 * white["fpr"] and black["fnr"] < white["fnr"]
    assert groups["Native American"]["unstable"] is True
    assert set(result["metrics"]) >= {
        "demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
        "equalized_odds_ratio", "equal_opportunity_difference", "equal_opportunity_ratio",
    }  # fmt: skip
    flagged = {f["attributes"]["race"] for f in result["four_fifths"] if f["flagged"]}
    assert "African-American" in flagged and result["verdict"] == "fail"
    assert result["aif360"]["favorable"] == "negative"
    assert 0.7 < result["aif360"]["disparate_impact"] < 0.8
    assert result["inputs"][0]["sha256"] == (
        "25dc20ee9cf7125f3f80dbaa396dcc384b85b201fab2a80d8e7db67e1e7bbaf5"
    )


def test_compas_by_sex_and_intersection():
    by_sex = compas("--sensitive", "sex", "--privileged", "sex=Female")
    assert [g["attributes"]["sex"] for g in by_sex["groups"]] == ["Female", "Male"]
    assert sum(g["n"] for g in by_sex["groups"]) == 7214
    both = compas("--sensitive", "race,sex")
    assert len(both["groups"]) == 12 and all(len(g["attributes"]) == 2 for g in both["groups"])


def test_bike_january_against_july_drifts_on_weather_not_on_hour(bike_months):
    january, july = bike_months
    result = run(
        "drift", "--reference", str(january), "--current", str(july),
        "--columns", BIKE_TYPES,
    )  # fmt: skip
    columns = {c["name"]: c for c in result["columns"]}
    assert list(columns) == BIKE_COLUMNS
    assert columns["temp"]["method"] == "ks" and columns["temp"]["drifted"]
    assert columns["temp"]["n_reference"] == 688
    assert columns["workingday"]["method"] == "z"
    assert columns["weathersit"]["method"] == "chisquare"
    assert not columns["hr"]["drifted"]
    assert result["dataset_drift"] is True and result["share"] >= 0.5
    assert result["drifted_count"] == len(result["drifted_columns"])
    for column in result["columns"]:
        for key in ("name", "type", "method", "statistic", "p_value", "threshold", "drifted",
                    "psi", "n_reference", "n_current", "status"):  # fmt: skip
            assert key in column


def test_drift_infers_types_and_excludes_columns(bike_months):
    january, july = bike_months
    result = run(
        "drift", "--reference", str(january), "--current", str(july),
        "--exclude", "instant,dteday,season,yr,mnth",
    )  # fmt: skip
    names = [c["name"] for c in result["columns"]]
    assert "mnth" not in names and "dteday" not in names
    types = {c["name"]: c["type"] for c in result["columns"]}
    assert types["temp"] == "numerical" and types["weathersit"] == "categorical"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "fairness",
                "--input",
                "MISSING.csv",
                "--label",
                "a",
                "--prediction",
                "b",
                "--sensitive",
                "c",
            ],
            "MISSING.csv: file does not exist",
        ),
        (
            [
                "fairness",
                "--input",
                str(COMPAS),
                "--label",
                "nope",
                "--prediction",
                "score_text",
                "--sensitive",
                "race",
            ],
            "column 'nope': not found",
        ),
        (
            [
                "fairness",
                "--input",
                str(COMPAS),
                "--label",
                "race",
                "--prediction",
                "score_text",
                "--sensitive",
                "sex",
            ],
            "column 'race': label holds text values",
        ),
        (
            [
                "fairness",
                "--input",
                str(COMPAS),
                "--label",
                "two_year_recid",
                "--prediction",
                "score_text",
                "--sensitive",
                "sex",
                "--privileged",
                "sex",
            ],
            "expected COL=VALUE",
        ),
        (
            [
                "drift",
                "--reference",
                str(COMPAS),
                "--current",
                str(COMPAS),
                "--columns",
                "race:numerical",
            ],
            "column 'race': declared numerical",
        ),
        (
            [
                "drift",
                "--reference",
                str(COMPAS),
                "--current",
                str(COMPAS),
                "--columns",
                "race:text",
            ],
            "type must be numerical",
        ),
    ],
)
def test_bad_input_is_one_clear_error_with_exit_code_2(args, message):
    with pytest.raises(CommandError) as caught:
        call_command("report", *args, "--json", stdout=io.StringIO())
    assert caught.value.returncode == 2
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_runs_as_a_process_without_a_database(tmp_path):
    """DATABASE_URL points at a host that does not exist: the command never connects."""
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://nobody@db.invalid:5432/none",
        "DJANGO_ENV": "test",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "report", "fairness", "--input", str(COMPAS),
         "--label", "two_year_recid", "--prediction", "score_text",
         "--prediction-positive", "Medium,High", "--sensitive", "sex", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verdict"] in ("pass", "fail")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    bad = subprocess.run(
        [sys.executable, "manage.py", "report", "drift", "--reference", str(empty),
         "--current", str(COMPAS), "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [f"CommandError: {empty}: file is empty"]


def test_pdf_renders_the_report_with_the_printed_json_embedded(tmp_path):
    target = tmp_path / "compas.pdf"
    out = io.StringIO()
    call_command(
        "report", "fairness", "--input", str(COMPAS), "--label", "two_year_recid",
        "--prediction", "score_text", "--prediction-positive", "Medium,High",
        "--favorable-label", "Low", "--sensitive", "sex", "--model", "recidivism",
        "--model-version", "3", "--json", "--pdf", str(target), stdout=out,
    )  # fmt: skip
    pdf = target.read_bytes()
    assert pdf.startswith(b"%PDF-")
    info = subprocess.run(["pdfinfo", str(target)], capture_output=True, text=True, check=True)
    assert "Fairness report: recidivism version 3" in info.stdout
    attached = tmp_path / "attached.json"
    subprocess.run(["pdfdetach", "-save", "1", "-o", str(attached), str(target)], check=True)
    assert attached.read_text() == out.getvalue().rstrip("\n")


def test_drift_pdf_without_a_subject_says_not_registered(tmp_path, bike_months):
    january, july = bike_months
    target = tmp_path / "bike.pdf"
    call_command(
        "report", "drift", "--reference", str(january), "--current", str(july),
        "--columns", BIKE_TYPES, "--pdf", str(target), stdout=io.StringIO(),
    )  # fmt: skip
    text = subprocess.run(
        ["pdftotext", "-l", "1", str(target), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "not registered" in text
    assert "january.parquet" in text


def test_pdf_to_an_unwritable_place_is_one_clear_error():
    with pytest.raises(CommandError) as caught:
        call_command(
            "report", "fairness", "--input", str(COMPAS), "--label", "two_year_recid",
            "--prediction", "score_text", "--prediction-positive", "Medium,High",
            "--sensitive", "sex", "--pdf", "/nonexistent-dir/out.pdf", stdout=io.StringIO(),
        )  # fmt: skip
    assert caught.value.returncode == 2
    assert "--pdf /nonexistent-dir/out.pdf: cannot write" in str(caught.value)


# Runs manage.py in the child as ``python manage.py ...`` would, then prints, as JSON, which of
# the named modules were loaded.
LOADED = r"""
import atexit, json, os, runpy, sys

names = sys.argv[1].split(",")
loaded = lambda: sorted(n for n in names if n in sys.modules)
atexit.register(lambda: print(json.dumps(loaded()), file=sys.stderr))
sys.path.insert(0, os.getcwd())
sys.argv = ["manage.py", *sys.argv[2:]]
runpy.run_path("manage.py", run_name="__main__")
"""


def _manage(*args: str, entry: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DJANGO_ENV": "test"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    command = (
        [sys.executable, "-c", entry, *args] if entry else [sys.executable, "manage.py", *args]
    )
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def test_a_json_report_on_csv_files_loads_only_what_it_uses(tmp_path):
    """A report printed as JSON from files needs the engine and the reader: not WeasyPrint
    or matplotlib (the PDF), not the app registry, Celery or DRF (Django's start-up)."""
    absent = ["weasyprint", "matplotlib", "celery", "rest_framework", "django.contrib.admin",
              "governance.reports.models", "governance.reports.pdf.render"]  # fmt: skip
    fairness = _manage(
        ",".join(absent), "report", "fairness", "--input", str(COMPAS), "--label",
        "two_year_recid", "--prediction", "score_text", "--prediction-positive", "Medium,High",
        "--sensitive", "race", "--json", entry=LOADED,
    )  # fmt: skip
    assert fairness.returncode == 0, fairness.stderr
    assert json.loads(fairness.stdout)["kind"] == "fairness"
    assert json.loads(fairness.stderr.strip().splitlines()[-1]) == []
    reference, current = tmp_path / "reference.csv", tmp_path / "current.csv"
    pd.read_csv(BIKE).head(400).to_csv(reference, index=False)
    pd.read_csv(BIKE).tail(400).to_csv(current, index=False)
    drift = _manage(
        ",".join(absent), "report", "drift", "--reference", str(reference), "--current",
        str(current), "--columns", "temp:numerical,weathersit:categorical", "--json",
        entry=LOADED,
    )  # fmt: skip
    assert drift.returncode == 0, drift.stderr
    assert [c["name"] for c in json.loads(drift.stdout)["columns"]] == ["temp", "weathersit"]
    assert json.loads(drift.stderr.strip().splitlines()[-1]) == []


# Django's own entry, as manage.py ran every command before it learnt the file-only path.
DJANGO_ENTRY = r"""
import os, sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings.test")
sys.path.insert(0, os.getcwd())
from django.core.management import execute_from_command_line

execute_from_command_line(["manage.py", *sys.argv[1:]])
"""


@pytest.mark.parametrize(
    "args",
    [
        ["fairness", "--input", str(COMPAS), "--label", "two_year_recid", "--prediction",
         "score_text", "--prediction-positive", "Medium,High", "--sensitive", "race,sex",
         "--json"],
        ["fairness", "--input", str(COMPAS), "--label", "two_year_recid", "--prediction",
         "score_text", "--prediction-positive", "Medium,High", "--favorable-label", "Low",
         "--sensitive", "race"],
        ["fairness", "--input", str(COMPAS), "--label", "race", "--prediction", "score_text",
         "--sensitive", "sex", "--json"],
        ["fairness", "--input", "MISSING.csv", "--label", "a", "--prediction", "b",
         "--sensitive", "c"],
        ["fairness", "--input", str(COMPAS), "--label", "two_year_recid", "--json"],
        ["drift", "--reference", str(COMPAS), "--current", str(COMPAS), "--columns",
         "race:text"],
        ["drift", "--help"],
    ],
)  # fmt: skip
def test_the_file_only_path_prints_what_django_prints(args):
    """``manage.py report`` without ``--pdf`` skips Django's start-up; its stdout, stderr and
    exit code are those of the command run through Django."""
    fast, django = _manage("report", *args), _manage("report", *args, entry=DJANGO_ENTRY)
    assert (fast.returncode, fast.stdout, fast.stderr) == (
        django.returncode,
        django.stdout,
        django.stderr,
    )

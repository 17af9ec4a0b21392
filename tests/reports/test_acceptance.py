"""Acceptance through the API: the COMPAS data gives a fairness report by race and by sex
(label ``two_year_recid``, prediction ``score_text`` other than Low), the bike-sharing data
a drift report of January against July. The PDFs and their pages (PNG, 50 dpi) are written
to ``$TEST_OUTPUT/reports/`` for people to look at."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from governance.reports.models import Report
from tests.conftest import client_for
from tests.reports.conftest import BIKE_TYPES, COMPAS, COMPAS_FIELDS, upload

pytestmark = pytest.mark.django_db


def output_dir() -> Path:
    directory = Path(os.environ.get("TEST_OUTPUT") or "test-output") / "reports"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def save(client, report_id: str, name: str) -> Path:
    response = client.get(f"/api/v1/reports/{report_id}/pdf")
    assert response.status_code == 200
    target = output_dir() / f"{name}.pdf"
    target.write_bytes(b"".join(response.streaming_content))
    if shutil.which("pdftoppm"):
        subprocess.run(
            ["pdftoppm", "-r", "50", "-png", str(target), str(output_dir() / name)], check=True
        )
    return target


@pytest.mark.parametrize("sensitive", ["race", "sex"])
def test_compas_fairness_report_through_the_api(alice, version, post, sensitive):
    fields = {**COMPAS_FIELDS, "sensitive": sensitive}
    response = post(alice, **fields, evaluation=upload(COMPAS))
    assert response.status_code == 202
    client = client_for(alice)
    report = client.get(f"/api/v1/reports/{response.json()['id']}").json()
    assert report["status"] == "done"
    result = json.loads(Report.objects.get(pk=report["id"]).result_json)
    groups = {g["attributes"][sensitive]: g for g in result["groups"]}
    if sensitive == "race":
        assert groups["African-American"]["n"] == 3696
        assert report["verdict"] == "fail"
    else:
        assert set(groups) == {"Female", "Male"}
    pdf = save(client, report["id"], f"api-compas-fairness-{sensitive}")
    text = subprocess.run(
        ["pdftotext", "-l", "1", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "recidivism" in text and "prod/high v1" in text


def test_bike_drift_report_january_against_july_through_the_api(alice, version, post, bike_months):
    january, july = bike_months
    response = post(
        alice, kind="drift", model="recidivism", version=1, reference=upload(january),
        current=upload(july), columns=BIKE_TYPES,
    )  # fmt: skip
    assert response.status_code == 202
    client = client_for(alice)
    report = client.get(f"/api/v1/reports/{response.json()['id']}").json()
    assert report["status"] == "done" and report["verdict"] == "fail"
    assert "temp" in report["summary"]["drifted_columns"]
    assert report["summary"]["evaluated_count"] == 11
    save(client, report["id"], "api-bike-drift-jan-jul")

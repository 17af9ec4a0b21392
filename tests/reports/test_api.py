"""``/api/v1/reports/``: request (202), status, PDF (409 until done), bad input (400, 413,
nothing stored), permissions (401, 403, 404) and the list's filters."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from audit.models import AuditRecord
from governance.reports.models import Report, ReportInput, ReportJob, ReportStatus
from tests.conftest import client_for, client_with_key
from tests.reports.conftest import COMPAS, COMPAS_FIELDS, stored_files, upload

pytestmark = pytest.mark.django_db


def csv_upload(text: str, name: str = "data.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def test_fairness_request_is_accepted_computed_and_downloadable(alice, version, post):
    response = post(alice, **COMPAS_FIELDS, evaluation=upload(COMPAS))
    assert response.status_code == 202, response.json()
    body = response.json()
    assert response["Location"] == f"/api/v1/reports/{body['id']}"
    client = client_for(alice)
    report = client.get(f"/api/v1/reports/{body['id']}").json()
    assert report["status"] == "done" and report["progress"] == 100
    assert report["verdict"] == "fail"  # COMPAS fails the four-fifths rule by race
    assert report["summary"]["flagged_groups"]
    assert report["thresholds"] == {
        "min_impact_ratio": "0.8",
        "max_equalized_odds_difference": "0.1",
    }
    assert report["policy_label"] == "prod/high v1"
    assert report["inputs"][0]["sha256"] == hashlib.sha256(COMPAS.read_bytes()).hexdigest()
    assert report["inputs"][0]["dataset_version"] is not None  # the registered COMPAS bytes
    pdf = client.get(report["links"]["pdf"])
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    content = b"".join(pdf.streaming_content)
    assert content.startswith(b"%PDF-")
    assert hashlib.sha256(content).hexdigest() == report["pdf_sha256"] == pdf["X-Content-SHA256"]
    requested = json.loads(AuditRecord.objects.get(action="report.requested").body)
    assert requested["object"]["id"] == body["id"]
    assert requested["data"]["inputs"][0]["sha256"] == report["inputs"][0]["sha256"]
    completed = json.loads(AuditRecord.objects.get(action="report.completed").body)
    assert completed["data"]["pdf_sha256"] == report["pdf_sha256"]
    assert completed["data"]["audit_seq_at_generation"] == report["audit_seq"]


def test_pdf_is_409_until_the_report_is_done(alice, version, django_capture_on_commit_callbacks):
    client = client_for(alice)
    # Without running the after-commit task the report stays queued.
    response = client.post(
        "/api/v1/reports/", {**COMPAS_FIELDS, "evaluation": upload(COMPAS)}, format="multipart"
    )
    assert response.status_code == 202
    report_id = response.json()["id"]
    assert client.get(f"/api/v1/reports/{report_id}").json()["status"] == "queued"
    refused = client.get(f"/api/v1/reports/{report_id}/pdf")
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == (
        f"report {report_id} is queued: its PDF exists once it is done"
    )


def test_drift_request_with_registered_dataset_versions(alice, version, post, bike_months):
    january = version.dataset_usages.get(role="reference").dataset_version
    response = post(
        alice, kind="drift", model="recidivism", version=1,
        reference_dataset_version=january.pk, current=upload(bike_months[1]),
        columns="temp:numerical,hum:numerical,weathersit:categorical",
    )  # fmt: skip
    assert response.status_code == 202, response.json()
    report = Report.objects.get(pk=response.json()["id"])
    assert report.status == ReportStatus.DONE
    assert report.verdict == "fail"  # temperature and humidity move from January to July
    assert {i.role: i.dataset_version_id for i in report.inputs.all()}["reference"] == january.pk


BAD_INPUTS = [
    (
        {"evaluation": csv_upload("race,score_text\nA,Low\n")},
        "data.csv, column 'two_year_recid': not found (the file has 'race', 'score_text')",
    ),
    ({"evaluation": csv_upload("")}, "data.csv: file is empty"),
    (
        {"evaluation": SimpleUploadedFile("data.csv", b"\x00\x01PK\x03\x04binary")},
        "data.csv: is not a CSV or Parquet table (binary content)",
    ),
    (
        {
            "evaluation": csv_upload("two_year_recid,score_text,race\nyes,Low,A\nno,High,B\n"),
        },
        "two_year_recid",
    ),
    ({}, "fairness needs exactly one evaluation input"),
]


@pytest.mark.parametrize(("files", "message"), BAD_INPUTS)
@pytest.mark.usefixtures("version")
def test_bad_input_is_one_clear_400_and_stores_nothing(alice, post, report_dirs, files, message):
    before = AuditRecord.objects.count()
    response = post(alice, **COMPAS_FIELDS, **files)
    assert response.status_code == 400, response.json()
    assert message in response.json()["error"]["message"]
    assert "\n" not in response.json()["error"]["message"]
    assert Report.objects.count() == 0 and ReportJob.objects.count() == 0
    assert stored_files(report_dirs["uploads"]) == []
    assert AuditRecord.objects.count() == before


def test_drift_column_of_the_wrong_type_is_400(alice, version, post, report_dirs):
    response = post(
        alice, kind="drift", model="recidivism", version=1,
        reference=csv_upload("x\n1\n2\n", "ref.csv"), current=csv_upload("x\na\nb\n", "cur.csv"),
        columns="x:numerical",
    )  # fmt: skip
    assert response.status_code == 400
    assert "column 'x'" in response.json()["error"]["message"]
    assert stored_files(report_dirs["uploads"]) == [] and Report.objects.count() == 0


def test_oversized_upload_is_413_and_stores_nothing(alice, version, post, settings, report_dirs):
    settings.REPORTS_MAX_UPLOAD_BYTES = 1000
    response = post(alice, **COMPAS_FIELDS, evaluation=upload(COMPAS))
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "upload_too_large",
        "message": response.json()["error"]["message"],
    }
    assert "at most 1,000 bytes (REPORTS_MAX_UPLOAD_BYTES)" in response.json()["error"]["message"]
    assert Report.objects.count() == 0 and stored_files(report_dirs["uploads"]) == []


def test_anonymous_is_401(version):
    assert APIClient().get("/api/v1/reports/").status_code == 401
    assert APIClient().post("/api/v1/reports/", {}).status_code == 401


def test_auditor_may_read_but_not_request(alice, audrey, version, post):
    done = post(alice, **COMPAS_FIELDS, evaluation=upload(COMPAS)).json()
    assert client_for(audrey).get(f"/api/v1/reports/{done['id']}").status_code == 200
    refused = post(audrey, **COMPAS_FIELDS, evaluation=upload(COMPAS))
    assert refused.status_code == 403


def test_stranger_gets_404_for_a_model_they_cannot_see(alice, charlie, version, post):
    done = post(alice, **COMPAS_FIELDS, evaluation=upload(COMPAS)).json()
    stranger = client_for(charlie)
    assert stranger.get(f"/api/v1/reports/{done['id']}").status_code == 404
    assert stranger.get(f"/api/v1/reports/{done['id']}/pdf").status_code == 404
    assert stranger.get("/api/v1/reports/").json()["results"] == []
    assert post(charlie, **COMPAS_FIELDS, evaluation=upload(COMPAS)).status_code == 404


def test_api_key_needs_reports_write_to_request(version, gate_only_key, post):
    client = client_with_key(gate_only_key)
    response = post(client, **COMPAS_FIELDS, evaluation=upload(COMPAS))
    assert response.status_code == 403
    assert "reports:write" in response.json()["error"]["message"]


def test_list_filters_by_kind_and_status(alice, version, post, bike_months):
    post(alice, **COMPAS_FIELDS, evaluation=upload(COMPAS))
    post(
        alice, kind="drift", model="recidivism", version=1,
        reference=upload(bike_months[0]), current=upload(bike_months[1]),
    )  # fmt: skip
    client = client_for(alice)
    kinds = [r["kind"] for r in client.get("/api/v1/reports/").json()["results"]]
    assert sorted(kinds) == ["drift", "fairness"]
    only = client.get("/api/v1/reports/?kind=drift&status=done").json()["results"]
    assert [r["kind"] for r in only] == ["drift"]
    assert client.get("/api/v1/reports/?model=other").json()["results"] == []


def test_threshold_overrides_are_recorded(alice, version, post):
    response = post(alice, **COMPAS_FIELDS, evaluation=upload(COMPAS), min_impact_ratio="0.5")
    report = client_for(alice).get(f"/api/v1/reports/{response.json()['id']}").json()
    assert report["thresholds_overridden"] is True
    assert report["thresholds"]["min_impact_ratio"] == "0.5"


def test_parquet_upload_is_read(alice, version, post, tmp_path):
    frame = pd.read_csv(COMPAS, usecols=["two_year_recid", "score_text", "race", "sex"])
    path = tmp_path / "compas.parquet"
    frame.to_parquet(path)
    response = post(alice, **COMPAS_FIELDS, evaluation=upload(path))
    assert response.status_code == 202
    assert Report.objects.get().status == ReportStatus.DONE


def compas_rows(first: int, last: int, name: str) -> SimpleUploadedFile:
    lines = COMPAS.read_text().splitlines(keepends=True)
    return csv_upload(lines[0] + "".join(lines[first : last + 1]), name)


def test_drift_of_the_compas_data_with_its_dates_is_done_and_lists_the_excluded(
    alice, version, post
):
    response = post(
        alice, kind="drift", model="recidivism", version=1,
        reference=compas_rows(1, 200, "reference.csv"), current=compas_rows(201, 400, "cur.csv"),
    )  # fmt: skip
    assert response.status_code == 202, response.content[:300]
    report = client_for(alice).get(f"/api/v1/reports/{response.json()['id']}").json()
    assert report["status"] == "done", report["error"]
    result = json.loads(Report.objects.get().result_json)
    reasons = {item["name"]: item["reason"] for item in result["excluded"]}
    assert reasons["compas_screening_date"] == "date" and reasons["c_jail_in"] == "date"
    assert reasons["id"] == "identifier"
    assert report["summary"]["excluded"] == result["excluded"]
    completed = json.loads(AuditRecord.objects.get(action="report.completed").body)
    assert completed["data"]["summary"]["excluded"] == result["excluded"]


@pytest.mark.parametrize("kind", ["fairness", "drift"])
def test_a_csv_with_a_duplicated_header_is_400_naming_it_and_leaves_nothing(
    alice, version, post, report_dirs, kind
):
    text = (
        "two_year_recid,score_text,race,notes,notes,age,age\n"
        "1,High,A,x,y,30,31\n0,Low,B,x,y,40,41\n"
    )
    if kind == "fairness":
        files = {**COMPAS_FIELDS, "evaluation": csv_upload(text)}
    else:
        files = {
            "kind": "drift", "model": "recidivism", "version": 1,
            "reference": csv_upload(text, "ref.csv"), "current": csv_upload(text, "cur.csv"),
        }  # fmt: skip
    before = AuditRecord.objects.count()
    response = post(alice, **files)
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert "more than once in the header" in error["message"]
    assert "'notes'" in error["message"] and "'age'" in error["message"]
    assert Report.objects.count() == 0 and ReportJob.objects.count() == 0
    assert ReportInput.objects.count() == 0
    assert stored_files(report_dirs["uploads"]) == []
    assert AuditRecord.objects.count() == before


def test_a_fault_of_warden_in_the_job_fails_the_report_as_internal_error_never_a_500(
    alice, version, post, settings, tmp_path
):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the PDF directory should be\n")
    settings.REPORTS_DIR = str(blocked)
    response = post(alice, **COMPAS_FIELDS, evaluation=upload(COMPAS))
    assert response.status_code == 202, response.content[:300]
    report = client_for(alice).get(f"/api/v1/reports/{response.json()['id']}").json()
    assert report["status"] == "failed"
    assert report["error"]["code"] == "internal_error"
    assert report["error"]["message"].startswith("internal error (FileExistsError)")
    failed = json.loads(AuditRecord.objects.get(action="report.failed").body)
    assert failed["data"]["code"] == "internal_error"


def test_the_readme_report_request_works_with_the_demo_token(settings, report_dirs, post):
    """The README's curl example: dana's token that ``seed_demo`` prints requests the
    fairness report of recidivism-risk v2 on the COMPAS file."""
    import io
    import re

    from django.core.management import call_command

    settings.DEBUG = True
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    (key,) = re.findall(r"dana's token for reports, 90 days \(shown once\): (\S+)", out.getvalue())
    fields = {
        "kind": "fairness",
        "model": "recidivism-risk",
        "version": 2,
        "label": "two_year_recid",
        "prediction": "score_text",
        "prediction_positive": "Medium,High",
        "sensitive": "race",
    }
    response = post(client_with_key(key), **fields, evaluation=upload(COMPAS))
    assert response.status_code == 202, response.json()
    report = client_with_key(key).get(f"/api/v1/reports/{response.json()['id']}").json()
    assert report["status"] == "done" and report["verdict"] == "fail"


def test_a_key_without_reports_write_gets_403_not_400_for_a_bad_body(alice, version):
    """Who may request is judged before the body where it is known without it (the key's
    scope): a bad request through a read-only key is 403, through a session 400."""
    from core.accounts.callers import Caller
    from governance.accounts.services import api_key_create

    key, _ = api_key_create(
        caller=Caller(user=alice), user=alice, name="alice read", scopes=["registry:read"]
    )
    bad = {"kind": "no-such-kind"}
    refused = client_with_key(key).post("/api/v1/reports/", bad, format="json")
    assert refused.status_code == 403, refused.content
    judged = client_for(alice).post("/api/v1/reports/", bad, format="json")
    assert judged.status_code == 400, judged.content
    assert "kind" in judged.json()["error"]["fields"]
    assert not Report.objects.exists()


def test_the_regulators_pdf_is_403_without_the_export_permission_before_the_export_is_sought(
    alice, version
):
    """The export permission is known before the export is looked up among the caller's own:
    a data scientist naming any export id is 403, not 404."""
    response = client_for(alice).post(
        "/api/v1/reports/",
        {"kind": "regulator_export", "export": "6a3c3a4e-0000-4000-8000-000000000000"},
        format="json",
    )
    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "permission_denied"

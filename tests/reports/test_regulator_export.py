"""The regulator's PDF of an audit export bundle: verified with the offline verifier against
the keys given, rendered as PDF/A-3b with the verdict, the findings, the checkpoints, the
signatures and the records, and the bundle embedded byte for byte so it can be detached and
verified again."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import uuid
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from audit import verifier
from audit.models import AuditExport, AuditRecord
from core.roles import Role
from governance.reports.models import Report
from governance.reports.regulator import MAX_LISTED
from tests.apitools import last_seq
from tests.audit.bundles import OTHER_SIGNER, SIGNER, full_bundle, make_log
from tests.audit.conftest import only_signing_key
from tests.conftest import client_for, make_person
from tests.reports.test_acceptance import output_dir
from tests.reports.test_lineage import deployed_credit_model
from tests.reports.test_pdf import pdf_structure, run, text_of
from tests.support import need

KEY = SIGNER.verifier().key_string()


@pytest.fixture(autouse=True)
def poppler() -> None:
    need(shutil.which("pdfdetach") is not None, "poppler-utils", "apt-get install poppler-utils")


def render(bundle: Path, out: Path, *keys: str) -> tuple[dict, str]:
    printed = io.StringIO()
    arguments = [str(bundle), "--out", str(out), "--json"]
    for key in keys or (KEY,):
        arguments += ["--key", key]
    call_command("audit_export_pdf", *arguments, stdout=printed)
    return json.loads(printed.getvalue()), text_of(out)


def detached(pdf: Path, tmp_path: Path) -> dict[str, bytes]:
    """Every file embedded in the PDF, by name, as a regulator would detach them."""
    listing = run("pdfdetach", "-list", str(pdf))
    names = re.findall(r"^\d+: (.+)$", listing, re.M)
    files = {}
    for number, name in enumerate(names, start=1):
        target = tmp_path / f"detached-{number}"
        run("pdfdetach", "-save", str(number), "-o", str(target), str(pdf))
        files[name] = target.read_bytes()
    return files


def test_a_full_bundle_verifies_and_travels_inside_its_pdf(tmp_path):
    bodies = make_log(1200)
    bundle = tmp_path / "warden-audit-full.zip"
    bundle.write_bytes(full_bundle(bodies, [1000, 1200]).zip())
    pdf = output_dir() / "regulator-export-full.pdf"
    document, text = render(bundle, pdf)

    assert document["verdict"] == "pass" and document["verification"]["findings"] == []
    assert document["summary"]["records"] == 1200
    assert document["summary"]["actions"] == [["model_version.registered", 1200]]
    assert document["summary"]["models"] == [["churn", 600], ["credit-risk", 600]]
    # The first and last halves of what may be listed, and how many are not.
    listed = [row["seq"] for row in document["records_listed"]]
    half = MAX_LISTED // 2
    assert listed == [*range(half), *range(1200 - half, 1200)]
    assert document["records_omitted"] == 1200 - MAX_LISTED
    assert "VERIFIED" in text and "Complete and intact" in text
    assert f"{1200 - MAX_LISTED} records not listed" in text
    # The bundle comes out of the PDF byte for byte and verifies on its own.
    files = detached(pdf, tmp_path)
    assert set(files) == {bundle.name, next(n for n in files if n.endswith(".json"))}
    assert files[bundle.name] == bundle.read_bytes()
    out = tmp_path / "again.zip"
    out.write_bytes(files[bundle.name])
    assert verifier.verify_bundle(out, [KEY]).ok
    embedded = json.loads(next(data for name, data in files.items() if name.endswith(".json")))
    assert embedded == document
    run("pdftoppm", "-r", "50", "-png", str(pdf), str(output_dir() / "regulator-export-full"))


def test_a_tampered_bundle_gives_a_failed_pdf_and_exit_1(tmp_path):
    unpacked = full_bundle(make_log(40), [40])
    bodies = unpacked.bodies
    bodies[17] = bodies[17].replace(b"Person 2", b"Person 9")
    unpacked.bodies = bodies
    bundle = tmp_path / "edited.zip"
    bundle.write_bytes(unpacked.zip())
    pdf = tmp_path / "edited.pdf"
    with pytest.raises(CommandError) as refused:
        call_command(
            "audit_export_pdf", str(bundle), "--key", KEY, "--out", str(pdf),
            stdout=io.StringIO(), stderr=io.StringIO(),
        )  # fmt: skip
    assert refused.value.returncode == 1
    text = text_of(pdf)
    assert "FAILED" in text and "Verification failed" in text
    assert "E_PREV" in text or "E_ROOT" in text


def test_only_the_keys_given_are_trusted(tmp_path):
    bundle = tmp_path / "b.zip"
    bundle.write_bytes(full_bundle(make_log(10), [10]).zip())
    pdf = tmp_path / "other-key.pdf"
    with pytest.raises(CommandError) as refused:
        call_command(
            "audit_export_pdf", str(bundle), "--key", OTHER_SIGNER.verifier().key_string(),
            "--out", str(pdf), stdout=io.StringIO(), stderr=io.StringIO(),
        )  # fmt: skip
    assert refused.value.returncode == 1
    assert "E_NO_TRUSTED_SIG" in text_of(pdf)


@pytest.mark.parametrize(
    ("content", "key", "message"),
    [
        (b"not a zip at all", KEY, "not a readable zip file"),
        (None, KEY, "no such file"),
        (b"", "warden.test+zz+not-a-key", "--key"),
    ],
)
def test_an_unreadable_bundle_or_key_exits_2_and_writes_nothing(tmp_path, content, key, message):
    bundle = tmp_path / "in.zip"
    if content is not None:
        bundle.write_bytes(content or full_bundle(make_log(3), [3]).zip())
    pdf = tmp_path / "out.pdf"
    with pytest.raises(CommandError, match=re.escape(message)) as refused:
        call_command("audit_export_pdf", str(bundle), "--key", key, "--out", str(pdf))
    assert refused.value.returncode == 2
    assert not pdf.exists()


@pytest.fixture
def signed_log(settings, tmp_path, people, credit_history):
    """The log's signing key, and the publish and export directories of this test."""
    return only_signing_key(settings, tmp_path, publish=True)


@pytest.fixture
def credit_history(people, ci):
    return deployed_credit_model(people, ci)


def export_of(user, django_capture_on_commit_callbacks, **filters) -> dict:
    client = client_for(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/audit/exports/", filters, format="json")
    assert response.status_code == 202, response.content
    return client.get(f"/api/v1/audit/exports/{response.json()['id']}").json()


@pytest.mark.django_db
def test_an_auditor_gets_the_regulators_pdf_of_an_export(
    signed_log, audrey, post, django_capture_on_commit_callbacks, tmp_path
):
    export = export_of(audrey, django_capture_on_commit_callbacks, model="credit-limit")
    assert export["status"] == "done", export
    before = last_seq()
    response = post(audrey, kind="regulator_export", export=export["id"])
    assert response.status_code == 202, response.json()
    body = client_for(audrey).get(f"/api/v1/reports/{response.json()['id']}").json()
    assert body["status"] == "done", body
    assert (body["kind"], body["model"], body["export"]) == ("regulator_export", None, export["id"])
    assert body["verdict"] == "pass"
    summary = body["summary"]
    assert summary["export_kind"] == "partial" and summary["errors"] == 0
    assert summary["signatures"] == 3
    assert summary["bundle_sha256"] == export["sha256"]
    actions = [r.action for r in AuditRecord.objects.filter(seq__gt=before).order_by("seq")]
    assert actions == ["report.requested", "report.started", "report.completed"]
    completed = json.loads(AuditRecord.objects.get(action="report.completed", seq__gt=before).body)
    # The PDF carries the bundle as exported.
    pdf = client_for(audrey).get(f"/api/v1/reports/{body['id']}/pdf")
    path = output_dir() / "api-regulator-export-credit-limit.pdf"
    path.write_bytes(b"".join(pdf.streaming_content))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == completed["data"]["pdf_sha256"]
    files = detached(path, tmp_path)
    bundle = files[f"warden-audit-{export['id']}.zip"]  # named as the download names it
    assert hashlib.sha256(bundle).hexdigest() == export["sha256"]
    assert "Every record proven in the log" in text_of(path)


@pytest.mark.django_db
def test_only_the_exports_requester_with_the_permission_may_ask(
    signed_log, audrey, people, post, django_capture_on_commit_callbacks
):
    export = export_of(audrey, django_capture_on_commit_callbacks)
    aubrey = make_person("aubrey", Role.AUDITOR, full_name="Aubrey Ames")
    before = last_seq()
    assert post(aubrey, kind="regulator_export", export=export["id"]).status_code == 404
    assert post(people.alice, kind="regulator_export", export=export["id"]).status_code == 403
    unknown = post(audrey, kind="regulator_export", export=str(uuid.uuid4()))
    assert unknown.status_code == 404
    mixed = post(audrey, kind="regulator_export", export=export["id"], model="credit-limit")
    assert mixed.status_code == 400 and "model" in mixed.json()["error"]["fields"]
    missing = post(audrey, kind="regulator_export")
    assert missing.status_code == 400 and "export" in missing.json()["error"]["fields"]
    assert last_seq() == before and not Report.objects.exists()
    # The report is visible to its requester only.
    made = post(audrey, kind="regulator_export", export=export["id"]).json()
    assert client_for(aubrey).get(f"/api/v1/reports/{made['id']}").status_code == 404
    assert client_for(people.alice).get(f"/api/v1/reports/{made['id']}").status_code == 404


@pytest.mark.django_db
def test_an_export_not_done_yet_is_a_conflict(signed_log, audrey, post):
    export = AuditExport.objects.create(
        requested_by=audrey, actor={"type": "user", "id": str(audrey.pk), "name": "Audrey"}
    )
    response = post(audrey, kind="regulator_export", export=str(export.pk))
    assert response.status_code == 409
    assert "queued" in response.json()["error"]["message"]


def test_the_regulators_pdf_is_pdf_a_3b_with_both_files_associated(tmp_path):
    bundle = tmp_path / "warden-audit-small.zip"
    bundle.write_bytes(full_bundle(make_log(30), [30]).zip())
    pdf = tmp_path / "small.pdf"
    render(bundle, pdf)
    data = pdf.read_bytes()
    xmp = run("pdfinfo", "-meta", str(pdf))
    assert re.search(r"pdfaid:part(=\"|>)3", xmp) and re.search(r"pdfaid:conformance(=\"|>)B", xmp)
    structure = pdf_structure(data)
    assert b"/OutputIntents" in structure and b"/DestOutputProfile" in structure
    for line in run("pdffonts", str(pdf)).splitlines()[2:]:
        assert line.split()[-5] == "yes", f"font not embedded: {line}"
    # Both files are associated with the document, each once: the result as its data, the
    # bundle as its source.
    associated = re.findall(rb"/AF\s*\[([^\]]*)\]", structure)
    assert len(associated) == 1 and len(associated[0].split()) == 6, associated
    assert re.search(rb"/AFRelationship\s*/Data", structure)
    assert re.search(rb"/AFRelationship\s*/Source", structure)
    assert re.search(rb"/Subtype\s*/application#2fzip", structure)
    assert re.search(rb"/Subtype\s*/application#2fjson", structure)

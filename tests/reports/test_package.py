"""The regulator's package: one PDF/A-3b with the model's card, versions, sign-offs, reports,
findings, a bounded audit trail, the verification, the checkpoint and the key, and the export
bundle embedded so that it can be detached and verified offline; its SHA-256 in the log."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.urls import reverse

from audit.actions import AuditAction
from audit.keys import verification_key_lines
from audit.models import AuditRecord
from audit.services import Subject, audit_record
from core.accounts.callers import Caller
from core.actors import Actor
from core.roles import Role
from governance.approvals import services as approvals
from governance.reports.models import PackageStatus, RegulatorPackage
from registry.models import RegisteredModel
from tests.apitools import last_seq
from tests.audit.conftest import only_signing_key
from tests.conftest import make_person
from tests.reports.test_acceptance import output_dir
from tests.reports.test_lineage import deployed_credit_model, lineage_report
from tests.reports.test_pdf import pdf_structure, run, text_of
from tests.support import need

ROOT = Path(__file__).resolve().parents[2]
PARTIAL = "a filtered export does not prove that no record is missing"
COMPLETE = "It is complete"


@pytest.fixture(autouse=True)
def poppler() -> None:
    need(shutil.which("pdfdetach") is not None, "poppler-utils", "apt-get install poppler-utils")


@pytest.fixture
def credit(people, ci, settings, tmp_path):
    """The credit model signed dev -> test -> prod, and the log's own signing key."""
    only_signing_key(settings, tmp_path, publish=True)
    return deployed_credit_model(people, ci)


def package(*arguments: str) -> str:
    printed = io.StringIO()
    call_command("regulator_package", *arguments, stdout=printed)
    return printed.getvalue()


def flat(text: str) -> str:
    """pdftotext's words on one line (a table cell wraps)."""
    return " ".join(text.split())


def detach_all(pdf: Path, into: Path) -> dict[str, Path]:
    into.mkdir()
    run("pdfdetach", "-saveall", "-o", str(into), str(pdf))
    return {p.name: p for p in into.iterdir()}


def verify_offline(bundle: Path) -> subprocess.CompletedProcess[str]:
    """The verifier as a regulator runs it: a separate Python, the keys given on the line."""
    arguments = [sys.executable, "-m", "audit.verifier", str(bundle), "--json"]
    for key in verification_key_lines():
        arguments += ["--key", key]
    return subprocess.run(arguments, capture_output=True, text=True, cwd=ROOT, check=False)


@pytest.mark.django_db
def test_a_models_package_shows_every_signature_and_carries_a_bundle_that_verifies(
    credit, people, post, tmp_path
):
    v1, _ = credit
    approvals.finding_open(
        caller=Caller(user=people.victor), version=v1, title="Thin data for applicants over 70",
        severity="high", owner=people.alice,
    )  # fmt: skip
    lineage_report(post, people.rita, v1)
    out = output_dir() / "package-credit-limit.pdf"
    printed = package("--model", "credit-limit", "--out", str(out))
    assert "verified" in printed
    text = flat(text_of(out))
    # Every signer's printed name, the meaning and the time of each signature.
    from governance.approvals.models import SignOff

    signoffs = list(SignOff.objects.filter(request__model_version__model__name="credit-limit"))
    assert len(signoffs) == 3
    for signoff in signoffs:
        assert signoff.printed_name in text
        assert signoff.get_meaning_display() in text
        assert signoff.signed_at.strftime("%Y-%m-%d %H:%M:%S") in text
    assert "Alice Archer" in text and "credit-risk" in text and "Medium" in text  # the card
    assert "applications v1" in text and "holdout v1" in text  # datasets per version
    assert "Thin data for applicants over 70" in text and "High" in text  # the finding
    assert "Lineage" in text and "3 requests, 3 signatures" in text  # the report's figures
    # The partial export says so, in plain words, on its first page.
    first_page = flat(run("pdftotext", "-l", "1", str(out), "-"))
    assert PARTIAL in first_page and COMPLETE not in first_page
    # The bundle comes out with pdfdetach and verifies offline.
    files = detach_all(out, tmp_path / "out")
    bundles = [p for name, p in files.items() if name.endswith(".zip")]
    assert len(bundles) == 1
    verified = verify_offline(bundles[0])
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["kind"] == "partial"
    assert "W_PARTIAL" in {f["code"] for f in report["findings"]}
    # The package's SHA-256 is in the log, with what it covers and who wrote it.
    record = AuditRecord.objects.filter(action=AuditAction.REGULATOR_PACKAGE_EXPORTED).get()
    body = json.loads(record.body)
    assert body["data"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert body["data"]["bundle_sha256"] == hashlib.sha256(bundles[0].read_bytes()).hexdigest()
    assert body["data"]["model"] == "credit-limit" and body["data"]["complete"] is False
    assert body["data"]["records"] == report["records"]
    assert body["scope"] == {"model": "credit-limit"} and body["actor"]["type"] == "system"
    assert f"recorded as seq {record.seq}" in printed


@pytest.mark.django_db
def test_the_full_log_package_says_it_is_complete(credit, people, tmp_path):
    out = output_dir() / "package-full-log.pdf"
    package("--all", "--out", str(out), "--as", "rita")
    first_page = flat(run("pdftotext", "-l", "1", str(out), "-"))
    assert COMPLETE in first_page and PARTIAL not in first_page
    bundle = next(p for p in detach_all(out, tmp_path / "out").values() if p.suffix == ".zip")
    verified = verify_offline(bundle)
    assert verified.returncode == 0, verified.stdout
    report = json.loads(verified.stdout)
    assert report["kind"] == "full" and report["findings"] == []
    record = AuditRecord.objects.get(action=AuditAction.REGULATOR_PACKAGE_EXPORTED)
    body = json.loads(record.body)
    assert body["data"]["complete"] is True and body["scope"] == {}
    assert body["actor"]["name"] == people.rita.printed_name


@pytest.mark.django_db
def test_the_audit_trail_is_bounded_and_says_how_many_records_the_bundle_holds(
    credit, people, tmp_path
):
    with transaction.atomic():
        for number in range(150):
            audit_record(
                action=AuditAction.GATE_CHECKED,
                actor=Actor(type="service", id="ci", name="ci-credit"),
                object=Subject(type="gate_check", id=str(number), label=f"check {number}"),
                scope={"model": "credit-limit", "version": 1, "environment": "prod"},
                data={"allowed": True},
            )
    out = tmp_path / "full.pdf"
    package("--all", "--out", str(out))
    text = flat(text_of(out))
    total = AuditRecord.objects.count() - 1  # not the package's own record
    match = re.search(r"The latest (\d+) of the (\d+) records in the embedded bundle", text)
    assert match, text[:2000]
    assert int(match.group(2)) == total and int(match.group(1)) == 120


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--model", "no-such-model"], "no registered model is named 'no-such-model'"),
        (["--model", "credit-limit", "--since", "2026-02-01", "--until", "2026-01-01"],
         "since must be earlier than until"),
        (["--model", "credit-limit", "--since", "yesterday"], "is not an ISO 8601 time"),
        (["--model", "credit-limit", "--until", "2026-01-01T00:00:00"], "has no time zone"),
        (["--all", "--as", "alice"], "alice may not make the regulator's package"),
    ],
)  # fmt: skip
def test_bad_input_on_the_command_is_refused_clearly(credit, tmp_path, arguments, message):
    before = last_seq()
    out = tmp_path / "refused.pdf"
    with pytest.raises(CommandError, match=re.escape(message)):
        package(*arguments, "--out", str(out))
    assert not out.exists() and last_seq() == before


def test_the_command_needs_a_model_or_the_whole_log(tmp_path):
    with pytest.raises(CommandError, match="one of the arguments --model --all is required"):
        package("--out", str(tmp_path / "x.pdf"))


# The pages


@pytest.fixture
def pages(credit, client, django_capture_on_commit_callbacks):
    def as_user(user):
        client.force_login(user)
        return client

    return as_user


def new_url(**query: str) -> str:
    url = reverse("report_pages:package_new")
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


@pytest.mark.django_db
def test_a_risk_officer_makes_the_package_from_the_pages_and_downloads_it(
    pages, people, django_capture_on_commit_callbacks, tmp_path
):
    client = pages(people.rita)
    form = client.get(new_url(model="credit-limit"))
    assert form.status_code == 200
    page = form.content.decode()
    assert "credit-limit" in page and 'name="scope"' in page  # officers may package the log
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(new_url(model="credit-limit"), {"scope": "model"})
    assert started.status_code == 302
    made = RegulatorPackage.objects.get()
    assert started["Location"] == reverse("report_pages:package_detail", args=[made.pk])
    assert made.status == PackageStatus.DONE, made.error
    detail = client.get(started["Location"]).content.decode()
    assert 'http-equiv="refresh"' not in detail and "<script" not in detail
    download = reverse("report_pages:package_pdf", args=[made.pk])
    assert download in detail and made.sha256 in detail
    response = client.get(download)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    data = b"".join(response.streaming_content)
    assert hashlib.sha256(data).hexdigest() == made.sha256
    record = AuditRecord.objects.get(action=AuditAction.REGULATOR_PACKAGE_EXPORTED)
    body = json.loads(record.body)
    assert body["data"]["sha256"] == made.sha256 and body["actor"]["name"] == "Rita Rossi"
    pdf = tmp_path / "downloaded.pdf"
    pdf.write_bytes(data)
    assert PARTIAL in flat(text_of(pdf))


@pytest.mark.django_db
def test_a_queued_package_shows_its_progress_and_refreshes(pages, people):
    client = pages(people.victor)
    made = RegulatorPackage.objects.create(
        model=RegisteredModel.objects.get(name="credit-limit"),
        requested_by=people.victor,
        progress="queued",
    )
    page = client.get(reverse("report_pages:package_detail", args=[made.pk])).content.decode()
    assert '<meta http-equiv="refresh" content="2">' in page
    assert "Queued" in page and "refreshes itself every 2 seconds" in page
    assert reverse("report_pages:package_pdf", args=[made.pk]) not in page
    assert client.get(reverse("report_pages:package_pdf", args=[made.pk])).status_code == 409


@pytest.mark.django_db
def test_a_model_the_person_may_not_see_is_404_everywhere(pages, people, roles):
    charlie = make_person("charlie", Role.DATA_SCIENTIST, full_name="Charlie Chen")
    with_package = RegulatorPackage.objects.create(
        model=RegisteredModel.objects.get(name="credit-limit"),
        requested_by=people.rita,
    )
    client = pages(charlie)
    assert client.get(new_url(model="credit-limit")).status_code == 404
    assert client.post(new_url(model="credit-limit"), {"scope": "model"}).status_code == 404
    for name in ("report_pages:package_detail", "report_pages:package_pdf"):
        assert client.get(reverse(name, args=[with_package.pk])).status_code == 404
    assert RegulatorPackage.objects.count() == 1


@pytest.mark.django_db
def test_a_data_scientist_who_sees_the_model_is_told_why_they_may_not(pages, people):
    client = pages(people.alice)
    response = client.get(new_url(model="credit-limit"))
    assert response.status_code == 403
    assert "read the audit log" in response.content.decode()
    assert "Make the package" not in response.content.decode()


@pytest.mark.django_db
def test_only_auditors_and_officers_are_offered_the_whole_log(pages, people):
    validator = pages(people.victor)
    page = validator.get(new_url(model="credit-limit")).content.decode()
    assert 'name="scope"' not in page and "credit-limit" in page
    refused = validator.post(new_url(model="credit-limit"), {"scope": "full"})
    assert refused.status_code == 403 and not RegulatorPackage.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"scope": "model", "since": "2026-02-01", "until": "2026-01-01"},
         "The end must not be before the start"),
        ({"scope": "model", "since": "not-a-date"}, "Enter a valid date"),
        ({"scope": "elsewhere"}, "Select a valid choice"),
    ],
)  # fmt: skip
def test_bad_input_on_the_page_is_shown_on_the_form(pages, people, fields, message):
    client = pages(people.rita)
    response = client.post(new_url(model="credit-limit"), fields)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not RegulatorPackage.objects.exists()


@pytest.mark.django_db
def test_an_unknown_model_on_the_page_is_404(pages, people):
    assert pages(people.rita).get(new_url(model="no-such-model")).status_code == 404
    # Without a model the form asks for one (or the whole log).
    page = pages(people.rita).get(new_url())
    assert page.status_code == 200 and 'name="model"' in page.content.decode()
    refused = pages(people.victor).post(new_url(), {"model": ""})
    assert refused.status_code == 400
    assert "Choose the model to package." in refused.content.decode()


@pytest.mark.django_db
def test_the_package_is_pdf_a_3b_with_the_bundle_as_its_source(credit, tmp_path):
    out = tmp_path / "credit-limit.pdf"
    package("--model", "credit-limit", "--out", str(out))
    xmp = run("pdfinfo", "-meta", str(out))
    assert re.search(r"pdfaid:part(=\"|>)3", xmp) and re.search(r"pdfaid:conformance(=\"|>)B", xmp)
    structure = pdf_structure(out.read_bytes())
    assert b"/OutputIntents" in structure
    for line in run("pdffonts", str(out)).splitlines()[2:]:
        assert line.split()[-5] == "yes", f"font not embedded: {line}"
    assert re.search(rb"/AFRelationship\s*/Source", structure)
    assert re.search(rb"/Subtype\s*/application#2fzip", structure)
    assert re.search(rb"/AFRelationship\s*/Data", structure)  # the package's content, JSON


@pytest.mark.django_db
def test_a_package_that_cannot_be_written_fails_with_its_reason_and_leaves_nothing(
    pages, people, settings, django_capture_on_commit_callbacks
):
    settings.AUDIT_SIGNING_KEY_FILE = []
    settings.AUDIT_SIGNING_KEY_AUTOGENERATE = False
    client = pages(people.rita)
    before = last_seq()
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(new_url(model="credit-limit"), {"scope": "model"})
    made = RegulatorPackage.objects.get()
    assert made.status == PackageStatus.FAILED and made.file == "" and made.sha256 == ""
    assert "cannot export without signing a checkpoint first" in made.error
    page = client.get(started["Location"]).content.decode()
    assert "It failed:" in page and "cannot export without signing a checkpoint" in page
    assert 'http-equiv="refresh"' not in page
    assert last_seq() == before  # nothing was exported, so nothing is recorded


@pytest.mark.django_db
def test_a_package_runs_once_and_a_lost_workers_package_is_taken_over(credit, people, settings):
    from django.utils import timezone

    from governance.reports.package import package_run

    model = RegisteredModel.objects.get(name="credit-limit")
    made = RegulatorPackage.objects.create(
        model=model,
        requested_by=people.rita,
        status=PackageStatus.RUNNING,
        started_at=timezone.now(),
    )
    assert package_run(str(made.pk)) == "skipped"  # another attempt holds it
    RegulatorPackage.objects.filter(pk=made.pk).update(
        started_at=timezone.now() - dt.timedelta(seconds=settings.REPORTS_LEASE_SECONDS + 1)
    )
    assert package_run(str(made.pk)) == "done"
    assert package_run(str(made.pk)) == "skipped"  # a redelivered message does nothing
    made.refresh_from_db()
    assert made.status == PackageStatus.DONE and made.file.startswith(str(made.pk))
    assert AuditRecord.objects.filter(action=AuditAction.REGULATOR_PACKAGE_EXPORTED).count() == 1

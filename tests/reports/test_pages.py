"""The report pages: requesting a report through the form (the API's validation, the one
service, its audit record), following it in each state, downloading its PDF; and the evidence
tables' explanations of why a report does or does not count."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from typing import Any

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse

from audit.models import AuditRecord
from core.accounts.callers import Caller
from core.accounts.models import User
from governance.approvals.evidence import (
    Candidate,
    Evidence,
    EvidenceRequirement,
    ago,
    counts,
    judge,
    judge_all,
    reasons_not_counting,
)
from governance.reports import services
from governance.reports.models import Report, ReportStatus
from registry.models import DatasetVersion, ModelVersion
from tests.reports.conftest import COMPAS_FIELDS

pytestmark = pytest.mark.django_db

NEW = reverse("report_pages:new")


def client_for(user: User) -> Client:
    """A browser's client (form posts), signed in as ``user``."""
    client = Client()
    client.force_login(user)
    return client


def new_url(version: ModelVersion, kind: str = "fairness") -> str:
    return f"{NEW}?model={version.model.name}&version={version.version}&kind={kind}"


def compas(version: ModelVersion) -> DatasetVersion:
    return DatasetVersion.objects.get(usages__model_version=version, dataset__name="compas")


def fairness_form(version: ModelVersion, **changes: Any) -> dict[str, Any]:
    fields = {
        key: value
        for key, value in COMPAS_FIELDS.items()
        if key not in ("kind", "model", "version")
    }
    return {"evaluation_dataset_version": compas(version).pk, **fields, **changes}


def errors_of(response: Any) -> list[str]:
    text = response.content.decode()
    return [
        html.unescape(re.sub(r"\s+", " ", re.sub(r"<span[^>]*>.*?</span>", "", m)).strip())
        for m in re.findall(r'class="field__error"[^>]*>(.*?)</p>', text, re.S)
    ]


def lineage_report(user: User, version: ModelVersion) -> Report:
    """A queued lineage report (its task not run), requested through the service."""
    return services.report_request(
        caller=Caller(user=user),
        version=version,
        kind="lineage",
        parameters={},
        uploads={},
        datasets={},
        overrides={},
    )


# The form: offered to those who may request, refused to the others.


@pytest.mark.parametrize("who", ["alice", "victor", "rita"])
def test_form_is_offered_to_requesting_roles(request, who, version):
    """The owner's team member, and a validator and a risk officer (who see every model)."""
    response = client_for(request.getfixturevalue(who)).get(new_url(version))
    assert response.status_code == 200
    text = response.content.decode()
    assert '<form method="post"' in text
    assert "compas v1 · validation data · 7,214 rows" in text
    assert 'value="race"' in text  # the model's sensitive attributes, pre-filled
    assert "prod/high v1" in text and "0.8" in text  # the policy's thresholds shown


def test_auditor_gets_no_form(audrey, version):
    response = client_for(audrey).get(new_url(version))
    assert response.status_code == 403
    text = response.content.decode()
    assert "You cannot request reports" in text
    assert '<form method="post" class="form' not in text


def test_auditor_post_is_refused_and_nothing_recorded(audrey, version):
    response = client_for(audrey).post(new_url(version), fairness_form(version))
    assert response.status_code == 403
    assert not Report.objects.exists()
    assert not AuditRecord.objects.filter(action="report.requested").exists()


def test_model_out_of_scope_is_404(charlie, version):
    assert client_for(charlie).get(new_url(version)).status_code == 404


def test_anonymous_is_sent_to_login(client, version):
    response = client.get(new_url(version))
    assert response.status_code == 302 and "/login" in response["Location"]


@pytest.mark.parametrize(
    "query",
    ["", "?model=recidivism", "?model=recidivism&version=zero", "?model=recidivism&version=0"],
)
def test_address_without_a_version_is_a_clear_400(alice, version, query):
    response = client_for(alice).get(NEW + query)
    assert response.status_code == 400
    assert "needs a model name and a version number" in response.content.decode()


def test_unknown_kind_is_a_clear_400(alice, version):
    response = client_for(alice).get(new_url(version, "horoscope"))
    assert response.status_code == 400
    assert "“horoscope” is not a kind of report" in response.content.decode()


def test_each_kind_shows_its_own_fields(alice, version):
    client = client_for(alice)
    drift = client.get(new_url(version, "drift")).content.decode()
    assert 'name="reference_dataset_version"' in drift
    assert 'name="current_dataset_version"' in drift
    assert 'name="label"' not in drift
    assert "bike-january v1 · reference data" in drift
    lineage = client.get(new_url(version, "lineage")).content.decode()
    assert "It takes no inputs" in lineage
    assert 'name="evaluation_dataset_version"' not in lineage


# Bad input re-renders the form with the API's messages, and leaves nothing behind.


@pytest.mark.parametrize(
    ("changes", "field_error"),
    [
        ({"label": ""}, "This field is required."),
        ({"min_impact_ratio": "1.5"}, "Ensure this value is less than or equal to 1."),
        ({"privileged": "race"}, "'race': expected COL=VALUE"),
        (
            {"evaluation_dataset_version": "999999"},
            "Select a valid choice. 999999 is not one of the available choices.",
        ),
    ],
)
def test_bad_input_rerenders_with_errors(alice, version, changes, field_error):
    response = client_for(alice).post(new_url(version), fairness_form(version, **changes))
    assert response.status_code == 400
    assert field_error in errors_of(response)
    assert "There is a problem" in response.content.decode()
    assert not Report.objects.exists()
    assert not AuditRecord.objects.filter(action="report.requested").exists()


def test_a_column_the_data_lacks_is_refused_by_the_service(alice, version):
    response = client_for(alice).post(
        new_url(version), fairness_form(version, label="no_such_column")
    )
    assert response.status_code == 400
    text = response.content.decode()
    assert "no_such_column" in text and "There is a problem" in text
    assert not Report.objects.exists()


# A request goes through the service: a report, its job, its audit record.


def test_post_requests_a_fairness_report_through_the_service(
    alice, version, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(alice).post(new_url(version), fairness_form(version))
    report = Report.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("report_pages:detail", args=[report.pk])
    assert report.requested_by == alice and report.kind == "fairness"
    assert report.inputs.get().dataset_version == compas(version)
    assert report.parameters["sensitive"] == ["race"]
    assert report.thresholds == {"min_impact_ratio": "0.8", "max_equalized_odds_difference": "0.1"}
    assert not report.thresholds_overridden
    record = json.loads(AuditRecord.objects.get(action="report.requested").body)
    assert record["object"]["id"] == str(report.pk)
    assert record["actor"]["id"] == str(alice.pk)
    assert record["data"]["inputs"][0]["dataset_version"] == compas(version).pk
    report.refresh_from_db()
    assert report.status == ReportStatus.DONE  # in-process task: done at once
    page = client_for(alice).get(response["Location"]).content.decode()
    assert "✕ Fail" in page  # COMPAS fails the four-fifths rule by race
    assert reverse("report_pages:pdf", args=[report.pk]) in page
    assert 'http-equiv="refresh"' not in page


def test_overrides_are_recorded_and_the_report_says_it_does_not_count(
    alice, version, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client_for(alice).post(new_url(version), fairness_form(version, min_impact_ratio="0.5"))
    report = Report.objects.get()
    assert report.thresholds_overridden and report.thresholds["min_impact_ratio"] == "0.5"
    page = client_for(alice).get(reverse("report_pages:detail", args=[report.pk]))
    assert "It was computed with threshold overrides." in page.content.decode()


def test_a_report_missing_a_declared_attribute_says_it_does_not_count(
    alice, version, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client_for(alice).post(new_url(version), fairness_form(version, sensitive="sex"))
    report = Report.objects.get()
    text = detail(alice, report).content.decode()
    assert "Not eligible" in text
    assert "It does not cover the sensitive attribute the model declares: race." in text


def test_post_requests_a_lineage_report(alice, version, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(alice).post(new_url(version, "lineage"), {})
    report = Report.objects.get()
    assert response.status_code == 302 and report.kind == "lineage"
    assert AuditRecord.objects.filter(action="report.requested").count() == 1


# The detail page in each state.


def detail(user: User, report: Report) -> Any:
    return client_for(user).get(reverse("report_pages:detail", args=[report.pk]))


def test_queued_report_shows_progress_and_reloads(alice, version):
    report = lineage_report(alice, version)
    response = detail(alice, report)
    text = response.content.decode()
    assert response.status_code == 200
    assert '<meta http-equiv="refresh" content="2">' in text
    assert "Queued" in text and "Waiting for a worker" in text
    assert "Requested by Alice Archer" in text and "(just now)" in text
    assert "Download the PDF" not in text
    assert "<script" not in text


def test_running_report_shows_its_progress(alice, version):
    report = lineage_report(alice, version)
    claimed = services.report_claim(report_id=report.pk, worker="w1")
    assert claimed is not None
    services.report_progress(report=claimed, worker="w1", progress=40, stage="rendering the pdf")
    text = detail(alice, report).content.decode()
    assert '<meta http-equiv="refresh" content="2">' in text
    assert "Running" in text and "Rendering the pdf." in text
    assert 'value="40"' in text and "40% done" in text


def test_failed_report_says_why_in_plain_words(alice, version):
    report = lineage_report(alice, version)
    claimed = services.report_claim(report_id=report.pk, worker="w1")
    assert claimed is not None
    services.report_fail(report=claimed, worker="w1", message="column 'race' is empty")
    text = detail(alice, report).content.decode()
    assert "Failed" in text and "column &#x27;race&#x27; is empty" in text
    assert "after 1 attempt." in text
    assert 'http-equiv="refresh"' not in text and "Download the PDF" not in text


def test_done_report_shows_verdict_and_pdf(alice, version, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        report = lineage_report(alice, version)
    report.refresh_from_db()
    assert report.status == ReportStatus.DONE
    text = detail(alice, report).content.decode()
    assert "Record complete" in text or "Record incomplete" in text
    assert reverse("report_pages:pdf", args=[report.pk]) in text
    assert report.pdf_sha256 in text


def test_detail_of_an_invisible_model_is_404(alice, charlie, version):
    report = lineage_report(alice, version)
    assert detail(charlie, report).status_code == 404


# The PDF.


def pdf(user: User, report: Report) -> Any:
    return client_for(user).get(reverse("report_pages:pdf", args=[report.pk]))


def test_pdf_is_streamed_with_a_readable_name(alice, version, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        report = lineage_report(alice, version)
    report.refresh_from_db()
    response = pdf(alice, report)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert report.finished_at is not None
    day = report.finished_at.strftime("%Y-%m-%d")
    assert f'filename="recidivism-v1-lineage-report-{day}.pdf"' in response["Content-Disposition"]
    assert b"".join(response.streaming_content).startswith(b"%PDF-")


def test_pdf_is_409_before_done_and_404_for_invisible_models(
    alice, charlie, version, django_capture_on_commit_callbacks
):
    queued = lineage_report(alice, version)
    waiting = pdf(alice, queued)
    assert waiting.status_code == 409
    assert "The PDF is not ready" in waiting.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        done = lineage_report(alice, version)
    assert pdf(charlie, done).status_code == 404


# Evidence: why a report does or does not count, in words.

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
FAIRNESS = EvidenceRequirement(
    kind="fairness", thresholds={"min_impact_ratio": "0.8"}, max_age_days=30
)


def candidate(
    report_id: str = "r1",
    *,
    days: float = 1,
    passed: bool = True,
    eligible: bool = True,
    thresholds: dict[str, str] | None = None,
    covers: list[str] | None = None,
    kind: str = "fairness",
) -> Candidate:
    return Candidate(
        evidence=Evidence(
            kind=kind,
            report_id=report_id,
            sha256="ab" * 32,
            computed_at=NOW - dt.timedelta(days=days),
            passed=passed,
        ),
        eligible=eligible,
        thresholds={"min_impact_ratio": "0.8"} if thresholds is None else thresholds,
        covers=["race"] if covers is None and kind == "fairness" else covers,
    )


def explained(*candidates: Candidate, requirement: EvidenceRequirement = FAIRNESS) -> Any:
    return judge(requirement=requirement, candidates=candidates, declared=["race"], now=NOW)


def test_no_report_at_all_says_none_was_computed():
    result = explained()
    assert result.status == "missing"
    assert result.explanation == "Missing: no fairness report has been computed for this version."


def test_a_report_of_another_kind_is_not_mentioned():
    result = explained(candidate(kind="drift"))
    assert result.explanation == "Missing: no fairness report has been computed for this version."
    assert result.rejected == []


def test_missing_because_of_overrides_or_unregistered_data():
    result = explained(candidate(eligible=False, days=2))
    assert result.status == "missing"
    assert result.explanation == (
        "Missing: 1 fairness report does not count. The newest, computed 2 days ago, does not "
        "count because it was computed with threshold overrides, or not on the version's "
        "registered validation or test data."
    )


def test_missing_because_of_other_thresholds():
    result = explained(candidate(thresholds={"min_impact_ratio": "0.7"}))
    assert "judged with minimum four-fifths impact ratio 0.7; the policy requires 0.8" in (
        result.explanation
    )


def test_missing_because_attributes_are_not_covered():
    result = judge(
        requirement=FAIRNESS,
        candidates=[candidate(covers=["sex"]), candidate("r2", days=3, eligible=False)],
        declared=["race", "age"],
        now=NOW,
    )
    assert result.explanation.startswith("Missing: 2 fairness reports do not count.")
    assert "it does not cover the sensitive attributes the model declares: race, age" in (
        result.explanation
    )
    assert [r.evidence.report_id for r in result.rejected] == ["r1", "r2"]  # newest first


def test_failed_says_so_and_where_the_failing_metrics_are():
    result = explained(candidate(passed=False))
    assert result.status == "failed"
    assert result.explanation == (
        "Failed: the newest fairness report that counts failed its verdict, computed 1 day "
        "ago; its report page lists the metrics that failed."
    )
    drift = EvidenceRequirement(kind="drift", thresholds={"dataset_drift": False})
    result = explained(candidate(kind="drift", passed=False), requirement=drift)
    assert result.explanation.startswith("Failed: the newest drift report that counts found")
    assert result.required == "any age; no dataset drift"


def test_required_says_what_the_policy_asks():
    assert explained().required == "computed within 30 days; minimum four-fifths impact ratio 0.8"


def test_stale_says_its_age_and_the_policys_limit():
    result = explained(candidate(days=45))
    assert result.status == "stale"
    assert result.explanation == (
        "Stale: computed 45 days ago; the policy allows 30 days. Compute a new fairness report."
    )


def test_passed_says_why_it_counts():
    result = explained(candidate(days=0.0001))
    assert result.status == "passed"
    assert result.explanation == (
        "Counts: passed, on the version's registered data with the policy's thresholds; "
        "computed just now (the policy allows 30 days)."
    )


def test_a_newer_report_that_does_not_count_is_listed_beside_the_one_that_does():
    result = explained(candidate("old", days=5), candidate("new", days=1, eligible=False))
    assert result.status == "passed" and result.evidence.report_id == "old"
    assert [r.evidence.report_id for r in result.rejected] == ["new"]


@pytest.mark.parametrize(
    "made",
    [
        candidate(),
        candidate(eligible=False),
        candidate(thresholds={"min_impact_ratio": "0.5"}),
        candidate(thresholds={}),
        candidate(covers=[]),
        candidate(kind="drift"),
    ],
)
def test_reasons_are_empty_exactly_when_the_report_counts(made):
    assert (reasons_not_counting(made, FAIRNESS, ["race"]) == ()) == counts(
        made, FAIRNESS, ["race"]
    )


@pytest.mark.parametrize(
    ("seconds", "phrase"),
    [(0, "just now"), (59, "just now"), (60, "1 minute ago"), (7200, "2 hours ago"),
     (86400, "1 day ago"), (-5, "just now")],
)  # fmt: skip
def test_ago_is_a_right_relative_phrase(seconds, phrase):
    assert ago(dt.timedelta(seconds=seconds)) == phrase


def test_evidence_table_links_each_report_and_says_why():
    results = judge_all(
        requirements=[
            {"kind": "fairness", "thresholds": {"min_impact_ratio": "0.8"}, "max_age_days": 30},
            {"kind": "drift", "max_age_days": 30},
        ],
        candidates=[
            candidate("11111111-1111-4111-8111-111111111111", passed=False),
            candidate("22222222-2222-4222-8222-222222222222", kind="drift", eligible=False),
        ],
        declared=["race"],
        now=NOW,
    )
    html = render_to_string("approvals/_evidence.html", {"evidence": results})
    fairness_id, drift_id = (
        "11111111-1111-4111-8111-111111111111",
        "22222222-2222-4222-8222-222222222222",
    )
    assert reverse("report_pages:detail", args=[fairness_id]) in html
    assert reverse("report_pages:pdf", args=[fairness_id]) in html
    assert "Failed: the newest fairness report that counts failed its verdict" in html
    assert "No report that counts" in html
    assert "1 drift report that does not count" in html
    assert reverse("report_pages:detail", args=[drift_id]) in html
    assert "(1 day ago)" in html
    assert "style=" not in html and "<script" not in html


def test_evidence_table_offers_a_request_only_when_told_the_person_may(version):
    results = judge_all(requirements=[{"kind": "drift"}], candidates=[], declared=[], now=NOW)
    context = {"evidence": results, "model": version.model, "version": version}
    offered = render_to_string("approvals/_evidence.html", {**context, "may_request_reports": True})
    assert f"{NEW}?model=recidivism&amp;version=1&amp;kind=drift" in offered
    assert NEW not in render_to_string("approvals/_evidence.html", context)


def test_evidence_table_shows_an_id_that_names_no_report_page_without_a_link():
    results = judge_all(
        requirements=[{"kind": "fairness"}],
        candidates=[candidate("not-a-report-id")],
        declared=["race"],
        now=NOW,
    )
    html = render_to_string("approvals/_evidence.html", {"evidence": results})
    assert "<code>not-a-report-id</code>" in html and "/reports/" not in html


def test_verdict_reasons_name_groups_in_words():
    from governance.reports.pages import readable_reason

    assert readable_reason("impact ratio 0.52 < 0.8 for {'race': 'Asian', 'sex': 'Male'}") == (
        "impact ratio 0.52 < 0.8 for race Asian, sex Male"
    )
    assert readable_reason("equalized odds difference 1.0 > 0.1") == (
        "equalized odds difference 1.0 > 0.1"
    )
    assert readable_reason("odd {not python}") == "odd {not python}"


def test_columns_left_out_are_grouped_by_reason():
    from governance.reports.pages import column_list

    items = [
        {"name": "id", "reason": "identifier"},
        {"name": "c_jail_in", "reason": "date"},
        {"name": "case", "reason": "identifier"},
    ]
    assert column_list(items) == "identifier: id, case; date: c_jail_in"
    assert column_list(["hum", "temp"]) == "hum, temp"
    assert column_list([]) == ""

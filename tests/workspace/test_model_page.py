"""The model page: who may see it, what it shows (live badges, the deployment timeline with a
rollback and a break-glass, reports, findings, grants, the audit trail with its
verification), the actions offered to each role, and its query count."""

from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.checkpoints import checkpoint_create
from core.accounts.callers import Caller
from core.accounts.models import User
from governance.approvals import services as approval_services
from governance.approvals.models import Environment
from governance.reports import jobs
from governance.reports import services as report_services
from governance.reports.models import Report, ReportStatus
from governance.workspace.model_data import inline_svg, relative
from registry.models import ModelVersion, RegisteredModel
from tests import factories
from tests.approvals.conftest import (  # noqa: F401 (seeded_defaults: a fixture)
    PASSWORD,
    approve_through,
    deploy,
    seeded_defaults,
)
from tests.audit.conftest import only_signing_key

URL = "workspace:model"


def page_of(user: User, name: str = "credit-score", query: str = "") -> Any:
    client = Client()
    client.force_login(user)
    return client.get(reverse(URL, args=[name]) + query)


def text(response: Any) -> str:
    """The page's visible text, tags removed and spaces collapsed."""
    html = response.content.decode()
    html = re.sub(r"<svg.*?</svg>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def section(response: Any, anchor: str) -> str:
    html = response.content.decode()
    match = re.search(rf'<section id="{anchor}".*?</section>', html, flags=re.S)
    assert match, f"no section #{anchor}"
    return match.group(0)


def ci_caller(team: Group) -> Caller:
    account = User.objects.filter(username="ci-credit").first()
    if account is None:
        from governance.accounts.services import user_create

        account = user_create(
            caller=None, username="ci-credit", kind=User.Kind.SERVICE, groups=[team],
            reason="test cast",
        )  # fmt: skip
    return Caller(user=account, auth="api_key")


@pytest.fixture
def cast(request: pytest.FixtureRequest) -> SimpleNamespace:
    """The people of these tests, by name (tests/conftest.py)."""
    names = ("alice", "bob", "charlie", "victor", "rita", "carl", "audrey", "team")
    return SimpleNamespace(**{name: request.getfixturevalue(name) for name in names})


@pytest.fixture
def credit(cast: SimpleNamespace) -> RegisteredModel:
    return factories.registered_model(
        cast.alice, name="credit-score", risk_tier="high", team=cast.team,
        sensitive_attributes=["age"],
    )  # fmt: skip


@pytest.fixture
def v1(cast: SimpleNamespace, credit: RegisteredModel) -> ModelVersion:
    return factories.model_version(cast.alice, credit, artifact_digest=factories.digest("v1"))


@pytest.fixture
def story(cast: SimpleNamespace, credit: RegisteredModel, v1: ModelVersion) -> SimpleNamespace:
    """credit-score: v1 then v2 deployed to dev, v2 rolled back there (v1 live again), then
    v2 deployed again; v1 in test through bob's review; v1 in prod by rita's break-glass;
    v2 requested for test by alice, waiting on the review step; a high finding on v1."""
    ci = ci_caller(cast.team)
    v2 = factories.model_version(cast.alice, credit, artifact_digest=factories.digest("credit v2"),
                                 parent_version=1)  # fmt: skip
    start = timezone.now() - dt.timedelta(days=10)
    approve_through(v1, "dev", cast.alice)
    deploy(ci, v1, "dev", at=start)
    approve_through(v2, "dev", cast.alice)
    deploy(ci, v2, "dev", at=start + dt.timedelta(days=1))
    deploy(ci, v2, "dev", event="rolled_back", at=start + dt.timedelta(days=2))
    approve_through(v1, "test", cast.alice, cast.bob)
    deploy(ci, v1, "test", at=start + dt.timedelta(days=3))
    emergency = approval_services.deployment_emergency(
        caller=Caller(user=cast.rita), version=v1, environment="prod",
        reason="regulatory deadline", password=PASSWORD,
    )  # fmt: skip
    answer = approval_services.gate_check(
        caller=ci, version=v1, environment=Environment.objects.get(name="prod"),
        digest=v1.artifact_digest,
    )  # fmt: skip
    approval_services.deployment_report(
        caller=ci, version=v1, environment="prod", event="deployed",
        check_id=answer.check.check_id,
    )  # fmt: skip
    deploy(ci, v2, "dev", at=start + dt.timedelta(days=4))
    pending = approval_services.deployment_request_submit(
        caller=Caller(user=cast.alice), version=v2, environment="test", reason="next candidate"
    )
    finding = approval_services.finding_open(
        caller=Caller(user=cast.victor), version=v1, title="Disparate impact on age",
        severity="high", owner=cast.alice, due_date=timezone.localdate() + dt.timedelta(days=7),
    )  # fmt: skip
    return SimpleNamespace(v1=v1, v2=v2, emergency=emergency, pending=pending,
                           finding=finding, ci=ci)  # fmt: skip


# Who sees it -----------------------------------------------------------------------------


def test_the_owner_and_every_reader_role_see_the_page(cast, credit):
    for person in (cast.alice, cast.bob, cast.victor, cast.rita, cast.audrey):
        response = page_of(person)
        assert response.status_code == 200, person.username
        assert "credit-score" in text(response)


def test_another_teams_data_scientist_gets_the_same_404_as_for_a_missing_model(cast, credit):
    hidden = page_of(cast.charlie)
    missing = page_of(cast.charlie, "no-such-model")
    assert hidden.status_code == missing.status_code == 404
    assert "credit-score" not in hidden.content.decode()


def test_anonymous_visitors_are_sent_to_the_login_page(cast, credit):
    response = Client().get(reverse(URL, args=["credit-score"]))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


# What it shows ---------------------------------------------------------------------------


def test_inventory_card_names_people_not_ids(cast, credit):
    card = section(page_of(cast.rita), "card")
    assert "Alice Archer" in card
    assert "credit-risk" in card
    assert "High" in card
    assert "age" in card  # sensitive attributes
    assert f">{cast.alice.pk}<" not in card


def test_each_version_has_a_badge_for_each_environment_it_is_live_in(cast, story):
    versions = section(page_of(cast.rita), "versions")
    rows = re.findall(r"<tr>\s*<th scope=\"row\">(v\d).*?</tr>", versions, flags=re.S)
    assert rows == ["v2", "v1"]
    v2_row, v1_row = re.split(r"<tr>\s*<th scope=\"row\">v1", versions)
    badges = lambda html: re.findall(r"live-badge[^>]*>● (\w+)<", html)  # noqa: E731
    assert badges(v1_row) == ["test", "prod"]
    assert badges(v2_row) == ["dev"]


def test_the_timeline_shows_the_rollback_and_the_break_glass_deployment(cast, story):
    timeline = section(page_of(cast.rita), "timeline")
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", timeline))
    assert "v2 rolled back: v1 is live again" in words
    assert "v2 deployed, replacing v1" in words
    assert "break-glass" in words
    assert f"request #{story.emergency.pk} by Rita Rossi" in words
    assert "v1 live now" in words  # prod
    assert "v2 live now" in words  # dev, deployed again after the rollback
    assert "Never deployed" not in words


def test_a_rollback_to_nothing_says_nothing_is_live(cast, credit, v1):
    ci = ci_caller(cast.team)
    approve_through(v1, "dev", cast.alice)
    deploy(ci, v1, "dev", at=timezone.now() - dt.timedelta(hours=2))
    deploy(ci, v1, "dev", event="rolled_back", at=timezone.now() - dt.timedelta(hours=1))
    words = text(page_of(cast.rita))
    assert "v1 rolled back: nothing is live" in words
    assert "nothing live" in words


def test_reports_are_listed_with_kind_verdict_date_and_links(cast, story, settings, tmp_path):
    settings.REPORTS_DIR = str(tmp_path / "pdfs")
    settings.REPORTS_UPLOAD_DIR = str(tmp_path / "inputs")

    def lineage_report(of: ModelVersion) -> Report:
        return report_services.report_request(
            caller=Caller(user=cast.alice, auth="cli"), version=of, kind="lineage",
            parameters={}, uploads={}, datasets={}, overrides={},
        )  # fmt: skip

    done = lineage_report(story.v1)
    jobs.report_run(str(done.pk), worker="test")
    done.refresh_from_db()
    assert done.status == ReportStatus.DONE
    queued = lineage_report(story.v2)
    reports = section(page_of(cast.rita), "reports")
    assert "2 reports" in reports
    assert reverse("report_pages:detail", args=[done.pk]) in reports
    assert reverse("report_pages:pdf", args=[done.pk]) in reports
    assert reverse("report_pages:detail", args=[queued.pk]) in reports
    assert reverse("report_pages:pdf", args=[queued.pk]) not in reports  # no PDF yet
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", reports))
    assert "Lineage" in words
    # A lineage report judges whether the record is complete, and says so.
    assert ("Record complete" in words) or ("Record incomplete" in words)
    assert "Queued" in words
    assert "Alice Archer" in words
    assert f"{done.finished_at:%Y-%m-%d}" in words


def test_findings_show_severity_status_due_date_and_who_raised_them(cast, story):
    approval_services.finding_open(
        caller=Caller(user=cast.rita), version=story.v2, title="Calibration by age missing",
        severity="medium", owner=cast.alice, due_date=timezone.localdate() - dt.timedelta(days=2),
    )  # fmt: skip
    findings = section(page_of(cast.rita), "findings")
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", findings))
    assert "Disparate impact on age" in words
    assert "High" in words and "Open" in words and "blocks the gate" in words
    assert f"{story.finding.due_date:%Y-%m-%d}" in words
    assert "in 7 days" in words
    assert "Victor Vance" in words  # raised by
    assert "Alice Archer" in words  # owner
    assert "overdue by 2 days" in words
    assert "2 open of 2" in words


def test_signing_grants_name_the_person_and_the_role(cast, story):
    approval_services.signing_grant(
        caller=Caller(user=cast.rita), model=story.v1.model, user=cast.carl, role="validator",
        reason="extra validator for this model",
    )  # fmt: skip
    grants = section(page_of(cast.rita), "grants")
    assert "Carl Cruz" in grants
    assert "Validator" in grants


def test_the_audit_trail_is_readable_with_printed_names(cast, story):
    trail = section(page_of(cast.rita), "trail")
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", trail))
    assert "A break-glass deployment was allowed without sign-off" in words
    assert "Rita Rossi" in words
    assert "Alice Archer" in words
    assert "A finding was raised against a model version" in words
    assert "credit-score v1" in words  # object labels
    assert "no checkpoint has been signed yet" in words
    assert "every record's stored text matches its leaf hash" in words


def test_the_gate_checks_can_be_left_out_of_the_trail(cast, story):
    shown = section(page_of(cast.rita), "trail")
    hidden = section(page_of(cast.rita, query="?gate=hide"), "trail")
    assert "The gate answered" in shown
    assert "The gate answered" not in hidden


def _gate_checks(story: SimpleNamespace, count: int) -> None:
    prod = Environment.objects.get(name="prod")
    for _ in range(count):
        approval_services.gate_check(
            caller=story.ci, version=story.v2, environment=prod, digest=story.v2.artifact_digest
        )


def test_the_trail_is_paginated_newest_first(cast, story):
    _gate_checks(story, 6)
    first = re.sub(r"<[^>]+>", " ", section(page_of(cast.rita), "trail"))
    second = re.sub(r"<[^>]+>", " ", section(page_of(cast.rita, query="?trail=2"), "trail"))
    assert "Page 1 of 2" in first and "Page 2 of 2" in second
    assert "A model was registered" in second
    assert "A model was registered" not in first


def test_records_in_the_latest_checkpoint_are_proved_included(cast, story, settings, tmp_path):
    _gate_checks(story, 5)
    only_signing_key(settings, tmp_path, publish=True)
    assert checkpoint_create().created
    _gate_checks(story, 1)  # after the checkpoint
    trail = section(page_of(cast.rita), "trail")
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", trail))
    assert "19 of 20 are proved included" in words
    assert "1 is newer than it" in words
    assert words.count("✓ in checkpoint") == 19
    assert words.count("not yet checkpointed") == 1


def test_relative_times_read_right():
    now = timezone.now()
    assert relative(now, now) == "just now"
    assert relative(now - dt.timedelta(minutes=1), now) == "1 minute ago"
    assert relative(now - dt.timedelta(hours=5), now) == "5 hours ago"
    assert relative(now + dt.timedelta(days=2, hours=1), now) == "in 2 days"
    assert relative(timezone.localdate(now), now) == "today"
    assert relative(timezone.localdate(now) - dt.timedelta(days=1), now) == "1 day ago"


def test_the_lineage_graph_is_inline_svg_without_inline_styles(cast, story):
    lineage = section(page_of(cast.rita), "lineage")
    assert "<svg" in lineage and "viewBox" in lineage
    assert "style=" not in lineage and "<style" not in lineage
    assert "Lineage of credit-score v2" in lineage
    other = section(page_of(cast.rita, query="?lineage=1"), "lineage")
    assert "Lineage of credit-score v1" in other


def test_inline_svg_turns_styles_into_attributes():
    svg = (
        '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10pt" '
        'height="5pt" viewBox="0 0 10 5"><style>*{stroke-linecap:butt}</style>'
        '<path d="M0 0" style="fill: #fff; stroke-width: 0.8"/></svg>'
    )
    out = inline_svg(svg, title="x")
    assert 'fill="#fff"' in out and 'stroke-width="0.8"' in out
    assert "style" not in out and 'width="10pt"' not in out and "<title" in out


# Actions -----------------------------------------------------------------------------------


ACTION_URLS = ("/approvals/new/", "/sign/", "/retrospective/", "/reports/new/",
               "/reports/package/new/", "/admin/")  # fmt: skip


def test_an_auditor_is_offered_no_action(cast, story):
    response = page_of(cast.audrey)
    html = response.content.decode()
    assert 'id="actions"' not in html
    main = html.split('<main id="main"', 1)[1]
    for url in ACTION_URLS:
        assert url not in main, url
    assert "Raise a finding" not in html


def test_a_person_who_cannot_sign_the_step_is_offered_no_sign(cast, story):
    # The pending request of v2 to test waits on the review step (data scientist or
    # validator): the risk officer cannot sign it.
    html = page_of(cast.rita).content.decode()
    assert reverse("approval_pages:sign", args=[story.pending.pk]) not in html
    assert reverse("approval_pages:review", args=[story.pending.pk]) in html  # as a row


def test_the_requester_reviews_but_does_not_sign_their_request(cast, story):
    actions = section(page_of(cast.alice), "actions")
    assert reverse("approval_pages:review", args=[story.pending.pk]) in actions
    assert reverse("approval_pages:sign", args=[story.pending.pk]) not in actions


def test_a_validator_who_may_sign_now_is_offered_sign_and_a_finding(cast, story):
    actions = section(page_of(cast.victor), "actions")
    assert reverse("approval_pages:sign", args=[story.pending.pk]) in actions
    assert "Raise a finding" in actions
    assert reverse("report_pages:new") + "?model=credit-score&amp;version=2" in actions
    assert "/approvals/new/" not in actions  # validators do not request deployments
    # A validator reads the log, so the package pages accept them: the page offers it.
    assert reverse("report_pages:package_new") in actions


def test_the_owner_may_request_the_next_environment_and_a_report(cast, story):
    actions = section(page_of(cast.alice), "actions")
    create = reverse("approval_pages:create")
    # v1 has open requests for every environment, v2 one for test and is not in test yet:
    # nothing is requestable until a new version comes.
    assert create not in actions
    v3 = factories.model_version(cast.alice, story.v1.model, artifact_digest=factories.digest("3"))
    actions = section(page_of(cast.alice), "actions")
    assert f"{create}?version={v3.pk}&amp;environment=dev" in actions
    assert "environment=test" not in actions and "environment=prod" not in actions
    assert reverse("report_pages:new") + "?model=credit-score&amp;version=1" in actions
    assert "Raise a finding" not in actions
    assert reverse("report_pages:package_new") not in actions


def test_the_risk_officer_exports_the_package_and_signs_the_retrospective(cast, story):
    actions = section(page_of(cast.rita), "actions")
    assert reverse("report_pages:package_new") + "?model=credit-score" in actions
    assert "Raise a finding" in actions
    # cast.rita broke the glass: someone else signs its retrospective review.
    assert reverse("approval_pages:retrospective", args=[story.emergency.pk]) not in actions
    assert reverse("approval_pages:retrospective", args=[story.emergency.pk]) in section(
        page_of(cast.victor), "actions"
    )


# Cost --------------------------------------------------------------------------------------


def _grow(story: SimpleNamespace, cast: SimpleNamespace) -> None:
    """More of every kind of row the page lists."""
    for n in range(3, 7):
        digest = factories.digest(f"credit v{n}")
        extra = factories.model_version(cast.alice, story.v1.model, artifact_digest=digest)
        approve_through(extra, "dev", cast.alice)
        deploy(story.ci, extra, "dev")
        approval_services.finding_open(
            caller=Caller(user=cast.victor), version=extra, title=f"finding {n}", severity="low",
            owner=cast.alice,
        )  # fmt: skip


def test_the_page_reads_a_bounded_number_of_queries(cast, story, django_assert_max_num_queries):
    client = Client()
    client.force_login(cast.rita)
    url = reverse(URL, args=["credit-score"])
    with django_assert_max_num_queries(40) as small:
        assert client.get(url).status_code == 200
    _grow(story, cast)
    with django_assert_max_num_queries(40) as large:
        assert client.get(url).status_code == 200
    assert len(large.captured_queries) == len(small.captured_queries)

"""The home page: who sees which section, on which models, in how many queries."""

from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.actions import AuditAction
from audit.checkpoints import checkpoint_create
from audit.services import AuditEvent, Subject, audit_append
from core.accounts.callers import Caller
from core.accounts.models import User
from core.actors import SYSTEM_ACTOR
from core.roles import Role
from governance.approvals import services
from governance.approvals.models import DeploymentRequest, Environment
from governance.reports.models import Report
from governance.workspace.dashboard import (
    date_phrase,
    duration_phrase,
    home_for,
    relative_phrase,
)
from registry.models import ModelVersion, RegisteredModel
from tests import factories
from tests.approvals.conftest import approve_through, deploy
from tests.audit.conftest import only_signing_key
from tests.conftest import PASSWORD, add_to_groups

pytestmark = pytest.mark.django_db

HOME = "/"


def page(user: User) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(HOME)
    assert response.status_code == 200
    return response.content.decode()


def main_of(html: str) -> str:
    """The page's own content, without the site header (its log-out form is everyone's)."""
    found = re.search(r'<main id="main".*?</main>', html, re.S)
    assert found is not None
    return found.group(0)


def section(html: str, anchor: str) -> str:
    found = re.search(rf'<section class="card" id="{anchor}".*?</section>', html, re.S)
    assert found is not None, f"no section {anchor!r}"
    return found.group(0)


def finished_report(version: ModelVersion, kind: str, verdict: str, by: User) -> Report:
    """A finished report as the worker leaves it, with its audit record (the reports tests
    compute real ones; here only its verdict and time matter)."""
    with transaction.atomic():
        report = Report.objects.create(
            kind=kind,
            model_version=version,
            status="done",
            verdict=verdict,
            requested_by=by,
            finished_at=timezone.now(),
        )
        audit_append(
            events=[
                AuditEvent(
                    action="report.completed",
                    actor=SYSTEM_ACTOR,
                    object=Subject(type="report", id=str(report.pk), label=str(report)),
                    data={"verdict": verdict},
                )
            ]
        )
    return report


@pytest.fixture
def world(alice: User, vera: User, rita: User, ci: Caller, team: Group) -> SimpleNamespace:
    """alice's team has two medium-risk models: credit-score v1 live in dev and test (test
    signed by Vera Valdez) with its prod request waiting on a validator and an open finding;
    churn v1 deployed to prod by Rita Rossi's break-glass, its retrospective review unsigned."""
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    credit = factories.registered_model(
        alice, name="credit-score", risk_tier="medium", team=team, next_review=yesterday
    )
    v1 = factories.model_version(alice, credit)
    approve_through(v1, "dev", alice)
    deploy(ci, v1, "dev")
    to_test = approve_through(v1, "test", alice, vera)
    deploy(ci, v1, "test")
    to_prod = services.deployment_request_submit(
        caller=Caller(user=alice), version=v1, environment="prod", reason="ship to prod"
    )
    finding = services.finding_open(
        caller=Caller(user=vera),
        version=v1,
        title="Calibration drifts on young applicants",
        severity="medium",
        owner=alice,
        due_date=timezone.localdate() + dt.timedelta(days=5),
    )
    churn = factories.registered_model(alice, name="churn", risk_tier="medium", team=team)
    c1 = factories.model_version(alice, churn)
    glass = services.deployment_emergency(
        caller=Caller(user=rita), version=c1, environment="prod", reason="outage", password=PASSWORD
    )
    deploy(ci, c1, "prod")
    return SimpleNamespace(
        credit=credit,
        v1=v1,
        to_test=to_test,
        to_prod=to_prod,
        finding=finding,
        churn=churn,
        c1=c1,
        glass=glass,
    )


def test_anonymous_visitor_is_sent_to_the_login_page() -> None:
    response = Client().get(HOME)
    assert response.status_code == 302
    assert response["Location"] == f"{settings.LOGIN_URL}?next=/"


def test_risk_officer_sees_inventory_live_environments_and_waiting_sign_offs(
    world: SimpleNamespace, rita: User
) -> None:
    html = main_of(page(rita))
    inventory = section(html, "inventory")
    assert "Medium risk" in inventory
    assert f'href="{reverse("workspace:model", args=["credit-score"])}"' in inventory
    assert f'href="{reverse("workspace:model", args=["churn"])}"' in inventory
    assert "Alice Archer" in inventory  # the owner's name, not an id

    live = section(html, "live")
    assert live.count("credit-score</a> v1") == 2  # dev and test
    assert "Vera Valdez" in live  # signed the test request
    assert "Break-glass</span> by Rita Rossi" in live
    assert "retrospective review not signed yet" in live
    assert "(just now)" in live

    waiting = section(html, "waiting")
    assert reverse("approval_pages:review", args=[world.to_prod.pk]) in waiting
    assert "credit-score v1 to prod" in waiting
    assert "validation" in waiting and "Validator" in waiting
    assert "no signature yet" in waiting
    assert "none can be signed by you now" in waiting  # the validators sign first

    findings = section(html, "findings")
    assert "Calibration drifts on young applicants" in findings
    assert "Alice Archer" in findings
    assert "(in 5 days)" in findings

    reviews = section(html, "reviews")
    assert "Periodic review of" in reviews and "1 day overdue" in reviews
    assert "break-glass deployment of" in reviews
    assert reverse("approval_pages:review", args=[world.glass.pk]) in reviews


def test_validator_is_told_a_sign_off_waits_on_them(world: SimpleNamespace, victor: User) -> None:
    waiting = section(main_of(page(victor)), "waiting")
    assert "1 can be signed by you now" in waiting
    assert '<strong class="home-you">You</strong>' in waiting


def test_empty_home_of_an_officer_says_so(rita: User) -> None:
    html = main_of(page(rita))
    assert "No sign-off is waiting" in section(html, "waiting")
    assert "Nothing is live in prod." in section(html, "live")
    assert "No finding is open" in section(html, "findings")
    assert "no drift report has finished yet" in section(html, "metrics")


def test_latest_verdicts_link_their_reports(
    world: SimpleNamespace, alice: User, rita: User
) -> None:
    finished_report(world.v1, "fairness", "fail", alice)
    newest_fairness = finished_report(world.v1, "fairness", "pass", alice)
    drift = finished_report(world.v1, "drift", "fail", alice)
    verdicts = section(main_of(page(rita)), "verdicts")
    assert reverse("report_pages:detail", args=[newest_fairness.pk]) in verdicts
    assert reverse("report_pages:detail", args=[drift.pk]) in verdicts
    assert verdicts.count("report_pages") == 0
    assert "✓ Pass" in verdicts and "✕ Fail" in verdicts
    assert verdicts.count("/reports/") == 2  # the older fairness report is not the latest


def test_approvals_about_to_expire(world: SimpleNamespace, rita: User) -> None:
    assert home_for(rita).expiring == []
    later = timezone.now() + dt.timedelta(days=25)
    expiring = home_for(rita, now=later).expiring
    assert [(e.model, e.environment) for e in expiring] == [
        ("credit-score", "dev"),
        ("credit-score", "test"),
    ]
    assert expiring[0].expires.phrase.startswith("in 4 days") or expiring[0].expires.phrase == (
        "in 5 days"
    )


def test_data_scientist_sees_their_models_versions_and_requests(
    world: SimpleNamespace, bob: User
) -> None:
    html = main_of(page(bob))
    own = section(html, "own")
    assert "credit-score" in own and "churn" in own
    assert "owner Alice Archer" in own
    assert reverse("approval_pages:review", args=[world.to_prod.pk]) in own
    assert "Pending sign-off" in own and "Emergency (break-glass)" in own
    assert 'id="inventory"' not in html  # the oversight sections are not theirs
    assert "No sign-off is waiting on you." in section(html, "waiting")


def test_data_scientist_sees_the_findings_on_their_models(
    world: SimpleNamespace, alice: User, bob: User, charlie: User
) -> None:
    findings = section(main_of(page(alice)), "findings")
    assert "Open findings on your models" in findings
    assert "Calibration drifts on young applicants" in findings and "(in 5 days)" in findings
    # bob is on the model's team: the finding is on his team's model.
    assert "Calibration drifts on young applicants" in section(main_of(page(bob)), "findings")
    # charlie sees neither the model nor its finding.
    html = main_of(page(charlie))
    assert "Calibration drifts" not in html
    assert "No finding is open on your models or waiting on you." in section(html, "findings")


def test_data_scientist_is_shown_a_review_they_may_sign(
    world: SimpleNamespace, alice: User, bob: User, ci: Caller
) -> None:
    v2 = factories.model_version(alice, world.credit)
    approve_through(v2, "dev", alice)
    deploy(ci, v2, "dev")
    deploy_request = services.deployment_request_submit(
        caller=Caller(user=alice), version=v2, environment="test", reason="v2 to test"
    )
    waiting = section(main_of(page(bob)), "waiting")
    assert "Sign-offs waiting on you" in waiting
    assert reverse("approval_pages:review", args=[deploy_request.pk]) in waiting
    assert reverse("approval_pages:review", args=[world.to_prod.pk]) not in waiting


def test_data_scientist_of_another_team_sees_none_of_the_model(
    world: SimpleNamespace, alice: User, charlie: User, ci: Caller
) -> None:
    # A test review any data scientist could sign, were the model theirs to see.
    v2 = factories.model_version(alice, world.credit)
    approve_through(v2, "dev", alice)
    deploy(ci, v2, "dev")
    services.deployment_request_submit(
        caller=Caller(user=alice), version=v2, environment="test", reason="v2 to test"
    )
    html = page(charlie)
    assert "credit-score" not in html
    assert "churn" not in html
    assert "You own no model yet" in html
    assert "No sign-off is waiting on you." in html


def test_auditor_reads_everything_and_is_offered_no_action(
    world: SimpleNamespace, audrey: User, settings: Any, tmp_path: Any
) -> None:
    only_signing_key(settings, tmp_path, publish=True)
    checkpoint = checkpoint_create().checkpoint
    assert checkpoint is not None
    html = main_of(page(audrey))
    for anchor in ("inventory", "live", "waiting", "findings", "reviews", "metrics", "audit"):
        section(html, anchor)
    assert "Read-only:" in html
    assert "<form" not in html and "<button" not in html
    for name in ("create", "emergency"):
        assert reverse(f"approval_pages:{name}") not in html
    for name in ("sign", "withdraw", "revoke", "retrospective"):
        assert reverse(f"approval_pages:{name}", args=[world.to_prod.pk]) not in html
        assert reverse(f"approval_pages:{name}", args=[world.glass.pk]) not in html
    audit = section(html, "audit")
    assert f"{checkpoint.size} records, signed" in audit
    assert checkpoint.root in audit
    assert "no whole-log verification has been recorded yet" in audit


def test_auditor_sees_the_latest_recorded_verification(audrey: User) -> None:
    audit_append(
        events=[
            AuditEvent(
                action=AuditAction.AUDIT_VERIFIED,
                actor=SYSTEM_ACTOR,
                object=Subject(type="audit_log", id="log", label="log"),
                data={
                    "trigger": "schedule",
                    "ok": False,
                    "size": 9,
                    "first_bad_seq": 4,
                    "code": "E_LEAF",
                    "findings": 1,
                    "alert": "audit_verification_failed",
                },
            )
        ]
    )
    audit = section(main_of(page(audrey)), "audit")
    assert "✕ Failed</span> at record 4 (E_LEAF)" in audit


def test_a_person_with_several_roles_sees_the_union(world: SimpleNamespace, bob: User) -> None:
    add_to_groups(bob, Role.VALIDATOR)
    html = main_of(page(bob))
    section(html, "own")
    section(html, "inventory")
    assert "Read-only:" not in html


def test_metrics_on_a_small_fixture(alice: User, rita: User, team: Group, ci: Caller) -> None:
    first = factories.registered_model(alice, name="first", risk_tier="low", team=team)
    second = factories.registered_model(alice, name="second", risk_tier="low", team=team)
    v_first = factories.model_version(alice, first)
    v_second = factories.model_version(alice, second)
    approve_through(v_first, "dev", alice)
    deploy(ci, v_first, "dev")
    services.deployment_emergency(
        caller=Caller(user=rita),
        version=v_second,
        environment="prod",
        reason="fix",
        password=PASSWORD,
    )
    # CI asks the gate first: the deployment is backed by the break-glass request's check.
    prod = Environment.objects.get(name="prod")
    services.gate_check(
        caller=ci, version=v_second, environment=prod, digest=v_second.artifact_digest
    )
    prod_deployment = deploy(ci, v_second, "prod")
    assert prod_deployment.gate_check is not None and not prod_deployment.unchecked
    finished_report(v_first, "drift", "fail", alice)
    for _ in range(3):
        finished_report(v_first, "drift", "pass", alice)

    metrics = home_for(rita).metrics
    assert metrics is not None
    assert (metrics.break_glass, metrics.deployments, metrics.break_glass_share) == (1, 2, "50%")
    assert (metrics.drift_failed, metrics.drift_done, metrics.drift_rate) == (1, 4, "25%")
    lead = {t.model: t for t in metrics.lead_times}
    assert lead["first"].first_prod is None and lead["first"].phrase is None
    assert lead["second"].first_prod == prod_deployment.occurred_at
    second.refresh_from_db()
    assert lead["second"].phrase == duration_phrase(
        (prod_deployment.occurred_at - second.created_at).total_seconds()
    )
    text = section(main_of(page(rita)), "metrics")
    assert "1 of 2 deployments" in text and "1 of 4 finished drift reports failed" in text


def test_a_home_with_several_models_takes_a_bounded_number_of_queries(
    alice: User, vera: User, team: Group, ci: Caller, request: pytest.FixtureRequest
) -> None:
    rita, audrey = request.getfixturevalue("rita"), request.getfixturevalue("audrey")
    assert_max_queries = request.getfixturevalue("django_assert_max_num_queries")

    def add_models(start: int, count: int) -> None:
        for n in range(start, start + count):
            model = factories.registered_model(alice, name=f"model-{n}", team=team)
            version = factories.model_version(alice, model)
            approve_through(version, "dev", alice)
            deploy(ci, version, "dev")
            approve_through(version, "test", alice, vera)
            deploy(ci, version, "test")
            services.deployment_request_submit(
                caller=Caller(user=alice), version=version, environment="prod", reason="go"
            )
            finished_report(version, "drift", "pass", alice)

    add_models(0, 3)
    client = Client()
    client.force_login(audrey)
    client.get(HOME)  # warm the content-type cache
    with assert_max_queries(25) as few:
        assert client.get(HOME).status_code == 200
    add_models(3, 5)
    with assert_max_queries(len(few.captured_queries)):
        response = client.get(HOME)
    assert response.content.decode().count("to prod</a>") == 8
    for user in (alice, rita):
        client.force_login(user)
        with assert_max_queries(25):
            assert client.get(HOME).status_code == 200


def test_relative_phrases() -> None:
    now = timezone.now()
    assert relative_phrase(now, now) == "just now"
    assert relative_phrase(now - dt.timedelta(seconds=59), now) == "just now"
    assert relative_phrase(now - dt.timedelta(minutes=1), now) == "1 minute ago"
    assert relative_phrase(now - dt.timedelta(hours=5, minutes=3), now) == "5 hours ago"
    assert relative_phrase(now - dt.timedelta(days=2), now) == "2 days ago"
    assert relative_phrase(now + dt.timedelta(days=3), now) == "in 3 days"
    assert duration_phrase(86400 * 400) == "1 year"
    today = dt.date(2026, 1, 10)
    assert date_phrase(today, today) == "today"
    assert date_phrase(dt.date(2026, 1, 11), today) == "tomorrow"
    assert date_phrase(dt.date(2026, 1, 9), today) == "1 day overdue"
    assert date_phrase(dt.date(2026, 1, 7), today) == "3 days overdue"
    assert date_phrase(dt.date(2026, 1, 15), today) == "in 5 days"


def test_names_are_printed_not_ids(world: SimpleNamespace, rita: User) -> None:
    assert isinstance(world.credit, RegisteredModel)
    assert isinstance(world.to_prod, DeploymentRequest)
    html = main_of(page(rita))
    assert f"#{world.to_prod.pk}" not in html

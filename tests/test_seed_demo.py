"""``manage.py seed_demo`` tells the same story on every run: recidivism-risk fails fairness,
is live in prod by break-glass with its retrospective review and an open high finding;
bike-demand v1 is live in prod through the full sign-off, and v2's prod request carries the
validator's signature, waits for the risk officer, and has a passing drift report that counts
for the gate under prod policy version 2 for medium risk."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from audit.models import AuditRecord
from core.accounts.models import ApiKey, User
from governance.approvals import selectors
from governance.approvals.evidence import EvidenceStatus
from governance.approvals.models import (
    Deployment,
    DeploymentRequest,
    Environment,
    Finding,
    SignOff,
    SignOffPolicy,
)
from governance.management import demo
from governance.reports.models import Report
from registry.models import ModelVersion
from tests.apitools import last_seq
from tests.conftest import client_with_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_dirs(settings: Any, tmp_path: Path, roles: None) -> Path:
    """The demo's splits, report inputs and PDFs under this test's directory, readable by
    reports as the dev settings make them."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.REPORTS_UPLOAD_DIR = str(tmp_path / "inputs")
    settings.REPORTS_DIR = str(tmp_path / "pdfs")
    settings.REPORTS_DATASET_ROOTS = [str(demo.derived_dir())]
    return tmp_path


def seed(*args: str, **env: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, force=True, stdout=out)
    return out.getvalue()


def environment(name: str) -> Environment:
    return Environment.objects.get(name=name)


def version(model: str, number: int) -> ModelVersion:
    return ModelVersion.objects.select_related("model").get(model__name=model, version=number)


def live(model: str, env: str) -> int | None:
    found = selectors.live_in(environment=environment(env), at=timezone.now())
    by_name = {v.model.name: v.version for v in found.values()}
    return by_name.get(model)


@pytest.fixture
def seeded(demo_dirs: Path) -> str:
    return seed()


def test_recidivism_risk_fails_fairness_and_is_live_only_by_break_glass(seeded):
    v1 = version(demo.RECIDIVISM, 1)
    fairness = Report.objects.get(model_version=v1, kind="fairness")
    assert fairness.status == "done" and fairness.verdict == "fail"
    assert fairness.pdf_sha256 and Path(fairness.pdf_path).name
    evaluated = fairness.inputs.get().dataset_version
    assert evaluated is not None and evaluated.dataset.name == "compas-validation"
    finding = Finding.objects.get(model_version=v1)
    assert (finding.severity, finding.status, finding.owner.username) == ("high", "open", "dana")
    emergency = DeploymentRequest.objects.get(model_version=v1, environment__name="prod")
    assert emergency.state == "emergency" and emergency.requester.username == "rory"
    retrospective = SignOff.objects.get(request=emergency)
    assert retrospective.step == SignOff.RETROSPECTIVE
    assert retrospective.signer.username == "cora" and retrospective.decision == "approve"
    assert live(demo.RECIDIVISM, "prod") == 1
    decision = selectors.gate_decide(
        version=v1, environment=environment("prod"), digest=v1.artifact_digest
    )
    # What keeps it live is the break-glass request, not a sign-off.
    assert decision.status == "emergency" and decision.request_id == emergency.pk


def test_bike_demand_v1_reached_prod_through_every_signature(seeded):
    v1 = version(demo.BIKE, 1)
    signers = {}
    for env in ("dev", "test", "prod"):
        request = DeploymentRequest.objects.get(model_version=v1, environment__name=env)
        assert request.state == "approved" and request.requester.username == "eli"
        signers[env] = [(s.step, s.signer.username) for s in request.signoffs.order_by("signed_at")]
        check = Deployment.objects.get(model_version=v1, environment__name=env)
        assert check.event == "deployed" and not check.unchecked
    assert signers == {
        "dev": [],
        "test": [("review", "val")],
        "prod": [("validation", "vera"), ("risk_approval", "rory")],
    }
    assert live(demo.BIKE, "prod") == 1 and live(demo.BIKE, "test") == 2


def test_bike_demand_v2_waits_for_the_risk_officer_with_drift_evidence_that_counts(seeded):
    policy = SignOffPolicy.objects.filter(environment__name="prod", risk_tier="medium")
    assert list(policy.values_list("version", flat=True).order_by("version")) == [1, 2]
    v2_policy = policy.get(version=2)
    assert [(e["kind"], e["max_age_days"]) for e in v2_policy.evidence] == [("drift", 30)]
    v2 = version(demo.BIKE, 2)
    request = DeploymentRequest.objects.get(model_version=v2, environment__name="prod")
    assert request.state == "pending" and request.policy == v2_policy
    assert [(s.step, s.signer.username) for s in request.signoffs.all()] == [("validation", "vera")]
    drift = Report.objects.get(model_version=v2, kind="drift")
    assert drift.status == "done" and drift.verdict == "pass" and drift.pdf_sha256
    inputs = {i.role: str(i.dataset_version) for i in drift.inputs.all()}
    assert inputs == {"reference": "bike-hourly-2012-07 v1", "current": "bike-hourly-2012-08 v1"}
    decision = selectors.gate_decide(
        version=v2, environment=environment("prod"), digest=v2.artifact_digest
    )
    assert not decision.allowed and decision.reasons == ["pending_step:risk_approval"]
    (result,) = decision.evidence
    assert result.status == EvidenceStatus.PASSED
    assert result.evidence is not None and result.evidence.report_id == str(drift.pk)


def test_a_second_run_changes_nothing_and_says_so(seeded):
    assert "key (shown once): wdn_" in seeded and "Demo loaded in" in seeded
    mark, reports = last_seq(), Report.objects.count()
    again = seed()
    assert "The demo is already loaded: nothing changed." in again
    assert "shown once" not in again
    assert "manage.py seed_demo --new-ci-key" in again
    assert last_seq() == mark and Report.objects.count() == reports


def test_new_ci_key_makes_a_key_that_asks_the_gate(seeded):
    out = seed("--new-ci-key")
    keys = dict(re.findall(r"CI service account (\S+), new key \(shown once\): (\S+)", out))
    assert set(keys) == set(demo.CI_ACCOUNTS.values())
    v1 = version(demo.BIKE, 1)
    response = client_with_key(keys["ci-mobility"]).get(
        "/api/v1/gate",
        {"model": demo.BIKE, "version": "1", "environment": "prod", "digest": v1.artifact_digest},
    )
    assert response.status_code == 200 and response.json()["allowed"] is True
    assert ApiKey.objects.filter(user__username="ci-mobility").count() == 2


def test_the_password_comes_from_the_option_or_the_environment(demo_dirs, settings, monkeypatch):
    settings.REPORTS_DATASET_ROOTS = []  # no reports: this test is about logging in
    out = seed()
    assert f"password {demo.DEFAULT_PASSWORD!r} (the demo's default" in out
    assert "Reports skipped" in out
    assert Client().login(username="rory", password=demo.DEFAULT_PASSWORD)
    monkeypatch.setenv(demo.PASSWORD_ENV, "from-the-environment")
    out = seed()
    assert "password from $WARDEN_DEMO_PASSWORD" in out and "from-the-environment" not in out
    assert Client().login(username="rory", password="from-the-environment")
    out = seed("--password", "from-the-option")
    assert "password from --password" in out and "from-the-option" not in out
    assert Client().login(username="vera", password="from-the-option")
    assert not Client().login(username="vera", password="from-the-environment")
    mark = last_seq()
    seed("--password", "from-the-option")
    assert not AuditRecord.objects.filter(seq__gt=mark, action__startswith="user.").exists()
    assert User.objects.get(username="vera").check_password("from-the-option")
    with pytest.raises(CommandError, match="must not be empty"):
        seed("--password", "")


def test_reports_skipped_while_unreadable_are_made_by_a_later_run(demo_dirs, settings):
    settings.REPORTS_DATASET_ROOTS = []
    first = seed()
    assert "REPORTS_DATASET_ROOTS" in first and not Report.objects.exists()
    settings.REPORTS_DATASET_ROOTS = [str(demo.derived_dir())]
    second = seed()
    assert "fairness report on recidivism-risk v1" in second
    assert "drift report on bike-demand v2" in second
    assert set(Report.objects.values_list("kind", "verdict")) == {
        ("fairness", "fail"),
        ("drift", "pass"),
    }


def test_seed_demo_refuses_to_run_without_debug(settings, roles):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="development only"):
        call_command("seed_demo", stdout=io.StringIO())


def test_quiet_run_prints_nothing(demo_dirs, settings):
    settings.REPORTS_DATASET_ROOTS = []
    out = io.StringIO()
    call_command("seed_demo", force=True, verbosity=0, stdout=out)
    assert out.getvalue() == ""
    assert User.objects.filter(username="rory").exists()

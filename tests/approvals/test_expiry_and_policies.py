"""Expiring approvals on a schedule (the management command and the Celery beat task), and
publishing a new sign-off policy version through ``POST /api/v1/policies/``."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from core.accounts.callers import Caller
from core.errors import Conflict
from governance.approvals import services
from governance.approvals.models import SignOffPolicy
from governance.approvals.tasks import expire_due_requests, flag_overdue_retrospectives
from tests.apitools import assert_error, assert_unauthenticated, last_seq, only_record_since
from tests.approvals.conftest import PASSWORD, approve_through
from tests.conftest import client_for, client_with_key

pytestmark = pytest.mark.django_db


def a_month_later(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the seeded 30-day approval expiry (the services read ``timezone.now``)."""
    later = timezone.now() + dt.timedelta(days=31)
    monkeypatch.setattr(services.timezone, "now", lambda: later)


def test_command_expires_approvals_past_their_time(alice, version, monkeypatch):
    request = approve_through(version, "dev", alice)
    out = StringIO()
    call_command("expire_deployment_requests", stdout=out)
    assert out.getvalue().strip() == "expired 0 deployment request(s)"

    a_month_later(monkeypatch)
    seq = last_seq()
    call_command("expire_deployment_requests", stdout=out)

    assert out.getvalue().splitlines()[-1] == "expired 1 deployment request(s)"
    record, body = only_record_since(seq)
    assert record.action == "deployment_request.expired"
    assert body["actor"]["type"] == "system"
    request.refresh_from_db()
    assert request.state == "expired"


def test_beat_task_expires_due_approvals_and_is_idempotent(alice, version, monkeypatch):
    request = approve_through(version, "dev", alice)
    a_month_later(monkeypatch)

    assert expire_due_requests.apply().get() == {"expired": 1}
    assert expire_due_requests.apply().get() == {"expired": 0}
    request.refresh_from_db()
    assert request.state == "expired"


def test_beat_runs_the_expiry_task_every_5_minutes():
    from governance.celery import app

    entry = app.conf.beat_schedule["approvals-expire-due-requests"]
    assert (entry["task"], entry["schedule"]) == (
        "governance.approvals.tasks.expire_due_requests",
        300.0,
    )
    app.loader.import_default_modules()
    assert "governance.approvals.tasks.expire_due_requests" in app.tasks


REVIEWED_DEV = {
    "environment": "dev",
    "risk_tier": "high",
    "steps": [{"name": "peer-review", "roles": ["data_scientist", "validator"]}],
    "approval_expiry_days": 14,
    "wait_seconds": 60,
    "note": "high-risk models get a look even in dev",
}


def test_administrator_publishes_the_next_version_and_new_requests_use_it(
    admin_user, alice, version
):
    seq = last_seq()
    response = client_for(admin_user).post("/api/v1/policies/", REVIEWED_DEV, format="json")

    assert response.status_code == 201, response.content
    published = response.json()
    assert published["version"] == 2 and published["published_by"] == "root"
    assert published["steps"] == [
        {
            "name": "peer-review",
            "roles": ["data_scientist", "validator"],
            "required": 1,
            "independent": False,
            "meaning": "approval",
        }
    ]
    assert published["evidence"] == [] and published["approval_expiry_days"] == 14
    record, body = only_record_since(seq)
    assert record.action == "signoff_policy.published"
    assert body["data"]["version"] == 2 and body["data"]["wait_seconds"] == 60
    # The seeded version 1 is unchanged; a new request starts under version 2.
    assert (
        SignOffPolicy.objects.get(environment__name="dev", risk_tier="high", version=1).steps == []
    )
    request = approve_through(version, "dev", alice)
    assert request.state == "pending" and request.policy.version == 2


def test_publishing_with_evidence_keeps_the_thresholds(admin_user):
    payload = {
        **REVIEWED_DEV,
        "evidence": [
            {"kind": "drift", "thresholds": {"dataset_drift": False}, "max_age_days": 7},
        ],
    }
    response = client_for(admin_user).post("/api/v1/policies/", payload, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["evidence"] == [
        {"kind": "drift", "thresholds": {"dataset_drift": False}, "max_age_days": 7}
    ]


def test_anonymous_cannot_publish_a_policy(api):
    assert_unauthenticated(api.post("/api/v1/policies/", REVIEWED_DEV, format="json"))


def test_only_an_administrator_may_publish_and_the_refusal_is_recorded(victor, rita):
    for person in (victor, rita):
        seq = last_seq()
        response = client_for(person).post("/api/v1/policies/", REVIEWED_DEV, format="json")

        assert_error(response, 403)
        record, body = only_record_since(seq)
        assert record.action == "signoff_policy.refused"
        assert body["actor"]["id"] == str(person.pk)
    assert not SignOffPolicy.objects.filter(version=2).exists()


def test_no_api_key_may_publish_a_policy(ci_key):
    response = client_with_key(ci_key).post("/api/v1/policies/", REVIEWED_DEV, format="json")

    error = assert_error(response, 403)
    assert "cannot be done with an API key" in error["message"]
    assert client_with_key(ci_key).get("/api/v1/policies/").status_code == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"risk_tier": "extreme"}, "risk_tier"),
        ({"steps": [{"name": "x", "roles": ["janitor"]}]}, "steps"),
        ({"steps": [{"name": "x", "roles": []}]}, "steps"),
        ({"steps": [{"name": "x", "roles": ["validator"], "required": 0}]}, "steps"),
        ({"steps": [{"name": "x", "roles": ["validator"], "colour": "red"}]}, "steps"),
        (
            {"steps": [{"name": "x", "roles": ["validator"]}, {"name": "x", "roles": ["admin"]}]},
            "steps",
        ),
        ({"steps": [{"name": "retrospective", "roles": ["validator"]}]}, "steps"),
        ({"evidence": [{"kind": "vibes"}]}, "evidence"),
        ({"approval_expiry_days": 0}, "approval_expiry_days"),
        ({"wait_seconds": -1}, "wait_seconds"),
        ({"wait_seconds": "60"}, "wait_seconds"),
        ({"environment": "staging"}, "environment"),
        ({"published_by": "root"}, "published_by"),
    ],
)
def test_malformed_policy_is_400_with_the_field_named(admin_user, change, field):
    response = client_for(admin_user).post(
        "/api/v1/policies/", {**REVIEWED_DEV, **change}, format="json"
    )

    assert_error(response, 400, field=field)
    assert not SignOffPolicy.objects.filter(version=2).exists()


def test_steps_are_required(admin_user):
    payload = {k: v for k, v in REVIEWED_DEV.items() if k != "steps"}
    response = client_for(admin_user).post("/api/v1/policies/", payload, format="json")

    assert_error(response, 400, field="steps")


def break_glass(rita, version, monkeypatch, *, due_in: dt.timedelta):
    monkeypatch.setattr(services.emergency, "RETROSPECTIVE_DUE", due_in)
    return services.deployment_emergency(
        caller=Caller(user=rita), version=version, environment="dev", reason="outage",
        password=PASSWORD,
    )  # fmt: skip


def test_an_unsigned_review_past_its_time_is_raised_once(rita, version, monkeypatch):
    from governance.webhooks.models import WebhookDelivery
    from tests.webhooks.conftest import subscribe

    subscribe(rita, "https://hooks.example/warden", "deployment_request.retrospective_overdue")
    request = break_glass(rita, version, monkeypatch, due_in=-dt.timedelta(minutes=1))
    seq = last_seq()

    assert flag_overdue_retrospectives.apply().get() == {"raised": 1}
    record, body = only_record_since(seq)
    assert record.action == "deployment_request.retrospective_overdue"
    assert body["actor"]["type"] == "system"
    assert body["data"]["alert"] == "retrospective_review_overdue"
    request.refresh_from_db()
    assert request.state == "emergency" and request.retrospective_overdue_at is not None
    delivery = WebhookDelivery.objects.get()
    assert delivery.event_type == "deployment_request.retrospective_overdue"
    # Once: the next beat finds nothing, and the service refuses a second alert.
    assert flag_overdue_retrospectives.apply().get() == {"raised": 0}
    with pytest.raises(Conflict):
        services.retrospective_flag_overdue(request=request)
    assert last_seq() == record.seq


def test_a_review_not_yet_due_or_signed_in_time_raises_nothing(rita, carl, version, monkeypatch):
    pending = break_glass(rita, version, monkeypatch, due_in=dt.timedelta(hours=72))
    assert flag_overdue_retrospectives.apply().get() == {"raised": 0}
    with pytest.raises(Conflict, match="not overdue"):
        services.retrospective_flag_overdue(request=pending)
    services.signoff_retrospective(caller=Caller(user=carl), request=pending, password=PASSWORD)
    later = timezone.now() + dt.timedelta(days=4)
    monkeypatch.setattr(services.timezone, "now", lambda: later)
    assert flag_overdue_retrospectives.apply().get() == {"raised": 0}


def test_beat_raises_overdue_reviews_every_5_minutes():
    from governance.celery import app

    entry = app.conf.beat_schedule["approvals-flag-overdue-retrospectives"]
    assert (entry["task"], entry["schedule"]) == (
        "governance.approvals.tasks.flag_overdue_retrospectives",
        300.0,
    )


def test_seeded_policies_have_no_publisher_and_the_schema_says_so(alice, api):
    response = client_for(alice).get("/api/v1/policies/")
    assert response.status_code == 200
    rows = response.json()
    rows = rows["results"] if isinstance(rows, dict) else rows
    assert rows and all(row["published_by"] is None for row in rows)
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    published_by = schema["components"]["schemas"]["Policy"]["properties"]["published_by"]
    assert published_by.get("nullable") is True, published_by

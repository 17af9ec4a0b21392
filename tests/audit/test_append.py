"""Appending (AUDIT_SPEC sections 2-4): the record's fields and hashes, the transaction it
belongs to, the clock, and secrets that must never reach a record."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit import clock
from audit.canonical import CanonicalFormError, canonical_bytes
from audit.models import AppendOnlyError, AuditRecord
from audit.services import (
    AuditError,
    AuditEvent,
    Subject,
    audit_append,
    audit_append_security_event,
)
from audit.verification import verify_log
from core import context
from core.accounts.callers import Caller
from core.accounts.models import ApiKey, User
from core.actors import Actor
from governance.accounts.services import api_key_create, api_key_revoke, service_account_create
from registry import services as registry
from tests.audit.helpers import GENESIS, append_log, event, head, leaf, stored
from tests.support import on_postgres

pytestmark = pytest.mark.django_db


def test_records_form_a_gapless_chain_of_canonical_bodies() -> None:
    append_log(5)
    rows = stored()
    assert [seq for seq, *_ in rows] == [0, 1, 2, 3, 4]
    expected_prev = GENESIS
    for seq, prev_column, leaf_column, body in rows:
        fields = json.loads(body)
        assert canonical_bytes(fields) == body  # stored as its exact canonical bytes
        assert leaf_column == hashlib.sha256(b"\x00" + body).hexdigest()
        assert fields["prev"] == prev_column == expected_prev
        assert fields["seq"] == seq
        assert fields["log"] == settings.AUDIT_LOG_ORIGIN
        assert fields["v"] == 1
        assert fields["data"]["n"] == seq
        expected_prev = leaf_column
    assert head()[:2] == (5, rows[-1][2])
    assert verify_log().ok


def test_record_fields_and_index_columns_agree() -> None:
    actor = Actor(type="user", id="42", name="Zoë Ölmez", auth="session")
    with transaction.atomic():
        (saved,) = audit_append(
            events=[
                AuditEvent(
                    action="registered_model.updated",
                    actor=actor,
                    object=Subject(type="registered_model", id="7", label="credit-score"),
                    scope={"model": "credit-score", "version": 3},
                    data={"before": {"threshold": 0.5}, "after": {"threshold": 0.55}},
                    reason="recalibrated",
                    context={"request_id": "req-1"},
                )
            ]
        )
    fields = json.loads(AuditRecord.objects.get(pk=saved.pk).body)
    assert set(fields) == {
        "v", "log", "seq", "ts", "prev", "actor", "action", "object", "scope", "data",
        "reason", "context",
    }  # fmt: skip
    assert fields["actor"] == {"type": "user", "id": "42", "name": "Zoë Ölmez", "auth": "session"}
    assert fields["data"] == {"before": {"threshold": "0.5"}, "after": {"threshold": "0.55"}}
    assert fields["scope"] == {"model": "credit-score", "version": 3}
    assert fields["context"] == {"request_id": "req-1"}
    assert (saved.action, saved.actor_type, saved.actor_id) == (
        "registered_model.updated",
        "user",
        "42",
    )
    assert (saved.object_type, saved.object_id, saved.scope_model) == (
        "registered_model",
        "7",
        "credit-score",
    )
    assert saved.ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ") == fields["ts"]


def test_bound_request_context_is_recorded() -> None:
    with context.bound({"request_id": "abc-123"}), transaction.atomic():
        (saved,) = audit_append(events=[event()])
    assert json.loads(saved.body)["context"] == {"request_id": "abc-123"}


def test_several_events_in_one_call_are_contiguous_and_share_one_time() -> None:
    append_log(2)
    with transaction.atomic():
        batch = audit_append(events=[event(10), event(11), event(12)])
    append_log(1)
    rows = stored()
    assert [r.seq for r in batch] == [2, 3, 4]
    bodies = [json.loads(body) for *_, body in rows]
    assert [b["data"]["n"] for b in bodies] == [0, 1, 10, 11, 12, 0]
    assert len({b["ts"] for b in bodies[2:5]}) == 1  # one time, taken once under the lock
    for earlier, later in itertools.pairwise(rows):
        assert json.loads(later[3])["prev"] == leaf(earlier[3])
    assert head()[0] == 6
    assert verify_log().ok


def _append_statements(events: list[AuditEvent]) -> tuple[list[AuditRecord], list[str]]:
    """Append ``events`` in a transaction; return the records and the SQL it issued, without
    transaction control."""
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        records = audit_append(events=events)
    statements = [query["sql"] for query in queries.captured_queries]
    return records, [
        sql for sql in statements if not sql.lstrip().upper().startswith(("SAVEPOINT", "RELEASE"))
    ]


@pytest.mark.parametrize("count", [1, 3])
def test_an_append_is_a_head_read_and_one_insert_that_advances_the_head(count: int) -> None:
    append_log(2)  # the head row exists, as it does after the log's first record
    records, statements = _append_statements([event(10 + n) for n in range(count)])

    assert len(statements) == 2, statements
    read, write = statements
    assert read.startswith('SELECT "audit_loghead"')
    if on_postgres():
        assert read.endswith("FOR UPDATE")
        assert write.startswith('WITH inserted AS (INSERT INTO "audit_auditrecord"')
        assert 'UPDATE "audit_loghead"' in write
    else:
        assert write.startswith('INSERT INTO "audit_auditrecord"')
    assert [r.seq for r in records] == list(range(2, 2 + count))
    assert [r.pk for r in records] == [
        r.pk for r in AuditRecord.objects.filter(seq__gte=2).order_by("seq")
    ]
    rows = stored()
    assert head() == (2 + count, rows[-1][2], json.loads(rows[-1][3])["ts"])
    assert verify_log().ok


def test_a_batch_beyond_one_statements_parameters_is_still_one_gapless_chain() -> None:
    """SQLite takes 999 parameters a statement: 200 records are split, the head follows."""
    append_log(1)
    with transaction.atomic():
        batch = audit_append(events=[event(n) for n in range(200)])
    assert [r.seq for r in batch] == list(range(1, 201))
    assert len({r.pk for r in batch}) == 200
    rows = stored()
    assert head() == (201, rows[-1][2], json.loads(rows[-1][3])["ts"])
    assert verify_log().ok


def test_a_returned_record_is_stored_and_refuses_to_be_saved_again() -> None:
    with transaction.atomic():
        (saved,) = audit_append(events=[event()])
    assert AuditRecord.objects.get(pk=saved.pk).body == saved.body
    with pytest.raises(AppendOnlyError):
        saved.save()


def test_snapshot_fields_on_the_redaction_list_never_reach_the_record() -> None:
    with transaction.atomic():
        (saved,) = audit_append(
            events=[
                event(
                    password="hunter2-plain",
                    nested={"hashed_key": "f00dfeed" * 8, "Token": "tok-123", "kept": "visible"},
                    items=[{"webhook_secret": "whsec-999"}],
                )
            ]
        )
    for secret in ("hunter2-plain", "f00dfeed", "tok-123", "whsec-999"):
        assert secret not in saved.body
    data = json.loads(saved.body)["data"]
    assert data["password"] == "[redacted]"
    assert data["nested"] == {"hashed_key": "[redacted]", "Token": "[redacted]", "kept": "visible"}
    assert data["items"] == [{"webhook_secret": "[redacted]"}]


def test_an_empty_batch_appends_nothing() -> None:
    with transaction.atomic():
        assert audit_append(events=[]) == []
    assert not AuditRecord.objects.exists()


@pytest.mark.parametrize(
    ("bad_event", "error"),
    [
        (AuditEvent("noverb", Actor("system", "w", "W"), Subject("t", "1", "l"), {}), AuditError),
        (AuditEvent("a.b", Actor("robot", "w", "W"), Subject("t", "1", "l"), {}), AuditError),
        (
            AuditEvent("a.b", Actor("system", "w", "W"), Subject("t", "1", "l"), {"é": 1}),
            CanonicalFormError,
        ),
        (
            AuditEvent("a.b", Actor("system", "w", "W"), Subject("t", "1", "l"), {"x": {1, 2}}),
            CanonicalFormError,
        ),
        (
            AuditEvent(
                "a.b",
                Actor("system", "w", "W"),
                Subject("t", "1", "l"),
                {"at": dt.datetime(2026, 1, 1)},
            ),
            CanonicalFormError,
        ),
    ],
    ids=["action-without-dot", "unknown-actor-type", "non-ascii-key", "set", "naive-datetime"],
)
def test_events_outside_the_rules_are_refused_and_nothing_is_written(
    bad_event: AuditEvent, error: type[Exception]
) -> None:
    append_log(1)
    with pytest.raises(error), transaction.atomic():
        audit_append(events=[event(1), bad_event])
    assert [seq for seq, *_ in stored()] == [0]
    assert head()[0] == 1


@pytest.mark.django_db(transaction=True)
def test_append_outside_a_transaction_is_refused() -> None:
    with pytest.raises(AuditError, match="inside the transaction"):
        audit_append(events=[event()])
    assert not AuditRecord.objects.exists()


class Abort(Exception):
    pass


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_leaves_no_record_and_no_gap() -> None:
    with transaction.atomic(durable=True):
        audit_append(events=[event(0)])
    with pytest.raises(Abort), transaction.atomic(durable=True):
        rolled_back = audit_append(events=[event(1), event(2)])
        assert [r.seq for r in rolled_back] == [1, 2]
        raise Abort
    assert [seq for seq, *_ in stored()] == [0]
    assert head()[0] == 1
    with transaction.atomic(durable=True):
        (after,) = audit_append(events=[event(3)])
    assert after.seq == 1  # the rolled-back seqs are taken again: no gap
    assert [json.loads(body)["data"]["n"] for *_, body in stored()] == [0, 3]
    assert verify_log().ok


@pytest.mark.django_db(transaction=True)
def test_security_event_is_committed_in_its_own_transaction() -> None:
    saved = audit_append_security_event(event=event(action="signoff.refused"))
    assert AuditRecord.objects.get().pk == saved.pk
    with pytest.raises(RuntimeError), transaction.atomic(durable=True):
        audit_append_security_event(event=event(action="signoff.refused"))  # nested: refused


def _clock(*moments: dt.datetime) -> Iterator[dt.datetime]:
    yield from moments


def test_a_clock_stepping_backwards_keeps_timestamps_non_decreasing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t0 = dt.datetime(2026, 3, 1, 12, 0, 0, 500000, tzinfo=dt.UTC)
    ticks = _clock(
        t0,
        t0 - dt.timedelta(hours=1),  # NTP stepped the clock back
        t0 - dt.timedelta(microseconds=1),
        t0 + dt.timedelta(microseconds=1),
        (t0 + dt.timedelta(seconds=2)).astimezone(dt.timezone(dt.timedelta(hours=-5))),
    )
    monkeypatch.setattr(clock, "now", lambda: next(ticks))
    append_log(5)
    stamps = [json.loads(body)["ts"] for *_, body in stored()]
    assert stamps == [
        "2026-03-01T12:00:00.500000Z",
        "2026-03-01T12:00:00.500000Z",
        "2026-03-01T12:00:00.500000Z",
        "2026-03-01T12:00:00.500001Z",
        "2026-03-01T12:00:02.500000Z",
    ]
    assert head()[2] == stamps[-1]
    assert verify_log().ok


def test_a_naive_time_from_the_clock_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    append_log(1)
    monkeypatch.setattr(clock, "now", lambda: dt.datetime(2026, 3, 1, 12, 0))
    with pytest.raises(CanonicalFormError, match="naive"), transaction.atomic():
        audit_append(events=[event(1)])
    assert [seq for seq, *_ in stored()] == [0]


def test_records_carry_no_secret(
    admin_user: User, alice: User, bob: User, ci_account: User, team: object
) -> None:
    """Every event of the accounts and registry services, then every record searched for
    every key, key hash and password hash (AUDIT_SPEC section 2, secrets)."""
    admin = Caller(user=admin_user, auth="cli")
    keys: list[str] = []
    key, _ = service_account_create(
        caller=admin,
        name="ci-fraud",
        scopes=["registry:write", "gate:read"],
        groups=["credit-risk"],
    )
    keys.append(key)
    key, row = api_key_create(caller=admin, user=ci_account, name="ci", scopes=["registry:write"])
    keys.append(key)
    api_key_revoke(caller=admin, key=row, reason="rotated")
    key, _ = api_key_create(
        caller=Caller(user=alice), user=alice, name="laptop", scopes=["gate:read"]
    )
    keys.append(key)
    ci_key, _ = api_key_create(
        caller=admin, user=ci_account, name="ci-2", scopes=["registry:write", "gate:read"]
    )
    keys.append(ci_key)

    person = Caller(user=alice)
    model = registry.model_create(
        caller=person, name="credit-score", risk_tier="high", team=team, description="PD model"
    )
    registry.model_update(caller=person, model=model, description="PD model v2", reason="clarity")
    dataset = registry.dataset_create(caller=person, name="loans", pii=True, legal_basis="contract")
    registry.dataset_version_register(
        caller=person,
        dataset=dataset,
        content_digest="sha256:" + "a" * 64,
        row_count=1000,
        schema={"age": "integer", "income": "float"},
    )
    ci = Caller(user=ci_account, api_key=ApiKey.objects.get(name="ci-2"), auth="api_key")
    version = registry.model_version_register(
        caller=ci,
        model=model,
        artifact_uri="s3://models/credit/1",
        artifact_digest="sha256:" + "b" * 64,
        parameters={"max_depth": 6, "learning_rate": 0.1},
        metrics={"auc": 0.81},
        datasets=[registry.DatasetRef(dataset="loans", version=1, role="training")],
        author=alice,
    )
    registry.model_version_set_status(
        caller=person, version=version, status="deprecated", reason="superseded"
    )
    registry.dataset_retire(caller=person, dataset=dataset, reason="replaced")
    registry.model_retire(caller=person, model=model, reason="decommissioned")

    secrets = set(keys)
    secrets |= {k.split("_", 2)[2] for k in keys}  # the random part alone
    secrets |= {hashlib.sha256(k.encode()).hexdigest() for k in keys}
    secrets |= set(ApiKey.objects.values_list("hashed_key", flat=True))
    passwords = {p for p in User.objects.values_list("password", flat=True) if p}
    secrets |= passwords
    secrets |= {p.split("$")[-1] for p in passwords if "$" in p}  # the bare hash or salt part
    assert len(ApiKey.objects.all()) == 4 and len(passwords) >= 4

    bodies = [record.body for record in AuditRecord.objects.all()]
    actions = [json.loads(body)["action"] for body in bodies]
    cast = actions.index("service_account.created")
    assert actions[:cast] == ["user.created"] * 4  # the cast: admin, alice, bob, the CI account
    assert actions[cast:] == [
        "service_account.created",
        "api_key.created",
        "api_key.created",
        "api_key.revoked",
        "api_key.created",
        "api_key.created",
        "registered_model.created",
        "registered_model.updated",
        "dataset.created",
        "dataset_version.registered",
        "model_version.registered",
        "model_version.status_changed",
        "dataset.retired",
        "registered_model.retired",
    ]
    leaked = [
        (action, s[:12])
        for body, action in zip(bodies, actions, strict=True)
        for s in secrets
        if s in body
    ]
    assert leaked == []
    # The key's public prefix is recorded (that is how an administrator identifies it).
    prefix = ci_key.split("_")[1]
    assert any(prefix in body for body in bodies)
    assert verify_log().ok

"""Appending to the audit log.

``audit_append`` is called by every service that changes governed state, as the last step of
its own transaction, so the change and its record commit or roll back together. Refused
actions append their security event with ``audit_append_security_event`` in a transaction of
their own, after the refused change has rolled back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model

from audit import clock
from audit.actions import AuditAction
from audit.alerts import CHANGE_REFUSED, alert_raise
from audit.canonical import (
    TIMESTAMP_FORMAT,
    CanonicalFormError,
    check_profile,
    dumps,
    format_timestamp,
    to_profile,
)
from audit.models import AuditRecord, LogHead
from core import context
from core.actors import SYSTEM_ACTOR, Actor

RECORD_VERSION = 1
GENESIS_PREV = "0" * 64
ACTOR_TYPES = ("user", "service", "system")
# The one redaction list: no record may carry a secret, whatever snapshot it came from.
REDACTED_KEYS = frozenset(
    {
        "password",
        "hashed_key",
        "api_key",
        "key_hash",
        "secret",
        "signing_key",
        "private_key",
        "token",
        "webhook_secret",
    }
)
REDACTED = "[redacted]"


class AuditError(RuntimeError):
    """The audit log cannot take this record (misuse, not a user error)."""


@dataclass(frozen=True)
class Subject:
    """The object an event is about, by type and id strings (never a foreign key)."""

    type: str
    id: str
    label: str


@dataclass(frozen=True)
class AuditEvent:
    """One event before it is placed in the log (no seq, prev or time yet)."""

    action: str
    actor: Actor
    object: Subject
    data: Mapping[str, Any]
    scope: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None
    context: Mapping[str, Any] | None = None


def leaf_hash(body: bytes) -> str:
    """RFC 9162 leaf hash ``SHA-256(0x00 || body)`` as hex; it is also the chain link."""
    return hashlib.sha256(b"\x00" + body).hexdigest()


def redact(value: Any) -> Any:
    """Replace the value of every key on the redaction list, at any depth."""
    if isinstance(value, Mapping):
        return {
            key: REDACTED if str(key).lower() in REDACTED_KEYS else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def _event_fields(event: AuditEvent) -> dict[str, Any]:
    if event.actor.type not in ACTOR_TYPES:
        raise AuditError(f"actor type {event.actor.type!r} is not one of {ACTOR_TYPES}")
    if not event.action or "." not in event.action:
        raise AuditError(f"action {event.action!r} must be a dotted verb like 'model.registered'")
    fields: dict[str, Any] = {
        "v": RECORD_VERSION,
        "actor": to_profile(event.actor.as_record()),
        "action": str(event.action),
        "object": to_profile(
            {"type": event.object.type, "id": event.object.id, "label": event.object.label}
        ),
        "scope": to_profile(dict(event.scope)),
        "data": to_profile(redact(dict(event.data))),
    }
    if event.reason is not None:
        fields["reason"] = to_profile(event.reason)
    event_context = event.context if event.context is not None else context.current()
    if event_context:
        fields["context"] = to_profile(dict(event_context))
    try:
        check_profile(fields)
    except CanonicalFormError as exc:
        raise CanonicalFormError(f"audit event {event.action}: {exc}") from exc
    return fields


def _index_columns(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The filter columns stored beside a body, copied from its fields."""
    return {
        "action": fields["action"],
        "actor_type": fields["actor"]["type"],
        "actor_id": fields["actor"]["id"],
        "object_type": fields["object"]["type"],
        "object_id": fields["object"]["id"],
        "scope_model": str(fields["scope"].get("model", "")),
    }


def _head_sql(using: str) -> str:
    """Read the head, locking its row where the database locks rows (SQLite's BEGIN IMMEDIATE
    already holds the write lock); written out once rather than built at every append."""
    connection = connections[using]
    quote = connection.ops.quote_name
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    table = quote(LogHead._meta.db_table)
    columns = ", ".join(f"{table}.{quote(name)}" for name in ("size", "tip", "last_ts"))
    return f"SELECT {columns} FROM {table} WHERE {table}.{quote('log')} = %s{lock}"  # noqa: S608


def _lock_head(origin: str, using: str) -> LogHead:
    sql = _head_sql(using)
    for _ in range(2):
        with connections[using].cursor() as cursor:
            cursor.execute(sql, [origin])
            row = cursor.fetchone()
        if row is not None:
            size, tip, last_ts = row
            return LogHead(log=origin, size=size, tip=tip, last_ts=last_ts)
        LogHead.objects.using(using).bulk_create([LogHead(log=origin)], ignore_conflicts=True)
    raise AuditError(f"the head of log {origin!r} cannot be created")


# A record's row, in column order: the chain's fields, then the filter copies.
_RECORD_FIELDS = (
    "log",
    "seq",
    "prev",
    "leaf",
    "body",
    "ts",
    "action",
    "actor_type",
    "actor_id",
    "object_type",
    "object_id",
    "scope_model",
)


def _fields(model: type[Model], names: Sequence[str]) -> list[Field[Any, Any]]:
    by_name = {field.name: field for field in model._meta.concrete_fields}
    return [by_name[name] for name in names]


def _insert_sql(
    connection: BaseDatabaseWrapper, records: Sequence[AuditRecord]
) -> tuple[str, list[Any]]:
    """``INSERT INTO`` the records table for ``records``, returning each row's id and seq."""
    quote = connection.ops.quote_name
    columns = _fields(AuditRecord, _RECORD_FIELDS)
    pk, seq = (quote(field.column) for field in _fields(AuditRecord, ("id", "seq")))
    names = ", ".join(quote(column.column) for column in columns)
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    # Identifiers come from the model's options; every value is a parameter.
    sql = (
        f"INSERT INTO {quote(AuditRecord._meta.db_table)} ({names}) "  # noqa: S608
        f"VALUES {', '.join([row] * len(records))} RETURNING {pk}, {seq}"
    )
    params = [
        column.get_db_prep_save(getattr(record, column.attname), connection)
        for record in records
        for column in columns
    ]
    return sql, params


def _insert_and_advance_postgresql(
    connection: BaseDatabaseWrapper, records: Sequence[AuditRecord], stamp: str
) -> list[int]:
    """One statement: insert the records and move the head to the last of them."""
    insert, params = _insert_sql(connection, records)
    quote = connection.ops.quote_name
    size, tip, last_ts, log = (
        quote(field.column) for field in _fields(LogHead, ("size", "tip", "last_ts", "log"))
    )
    pk, seq = (quote(field.column) for field in _fields(AuditRecord, ("id", "seq")))
    sql = (
        f"WITH inserted AS ({insert}) "  # noqa: S608
        f"UPDATE {quote(LogHead._meta.db_table)} SET {size} = %s, {tip} = %s, {last_ts} = %s "
        f"WHERE {log} = %s "
        f"RETURNING (SELECT array_agg({pk} ORDER BY {seq}) FROM inserted)"
    )
    with connection.cursor() as cursor:
        last = records[-1]
        cursor.execute(sql, [*params, last.seq + 1, last.leaf, stamp, last.log])
        row = cursor.fetchone()
    if row is None:
        raise AuditError(f"the head of log {last.log!r} vanished while it was locked")
    return list(row[0])


def _insert_and_advance_sqlite(
    connection: BaseDatabaseWrapper, records: Sequence[AuditRecord], stamp: str
) -> list[int]:
    """One statement: insert the records; the trigger ``audit_auditrecord_advance_head``
    (``audit.triggers``) moves the head along each row that extends it, taking the time from
    the row's own body, which carries ``stamp``."""
    sql, params = _insert_sql(connection, records)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = {seq: pk for pk, seq in cursor.fetchall()}
    return [ids[record.seq] for record in records]


_INSERT_AND_ADVANCE = {
    "postgresql": _insert_and_advance_postgresql,
    "sqlite": _insert_and_advance_sqlite,
}


def audit_append(
    *, events: Sequence[AuditEvent], using: str = DEFAULT_DB_ALIAS
) -> list[AuditRecord]:
    """Append ``events`` to the log, in order, inside the caller's open transaction.

    Bodies' fields are built, checked and redacted before the log's lock is taken. Under the
    lock: the head is read, the time taken (clamped so it never decreases), the bodies
    completed and hashed, and one statement inserts the records and advances the head.
    """
    if not events:
        return []
    connection = connections[using]
    if not connection.in_atomic_block:
        raise AuditError("audit_append must run inside the transaction of the change it records")
    insert_and_advance = _INSERT_AND_ADVANCE.get(connection.vendor)
    if insert_and_advance is None:
        raise AuditError(f"the audit log cannot be written on {connection.vendor}")
    origin: str = settings.AUDIT_LOG_ORIGIN
    prepared = [(fields, _index_columns(fields)) for fields in map(_event_fields, events)]

    head = _lock_head(origin, using)
    now = clock.now()
    stamp = format_timestamp(now)
    if head.last_ts and stamp < head.last_ts:
        stamp = head.last_ts
        now = dt.datetime.strptime(stamp, TIMESTAMP_FORMAT).replace(tzinfo=dt.UTC)
    records: list[AuditRecord] = []
    seq, prev = head.size, head.tip
    for fields, columns in prepared:
        body = dumps({**fields, "log": origin, "seq": seq, "ts": stamp, "prev": prev})
        leaf = leaf_hash(body)
        records.append(
            AuditRecord(
                log=origin,
                seq=seq,
                prev=prev,
                leaf=leaf,
                body=body.decode("utf-8"),
                ts=now,
                **columns,
            )
        )
        seq, prev = seq + 1, leaf
    ids: list[int] = []
    # One statement unless the batch is beyond what the database takes in one (SQLite's
    # parameter limit); each statement advances the head to its own last record.
    batch = connection.ops.bulk_batch_size(_fields(AuditRecord, _RECORD_FIELDS), records)
    for start in range(0, len(records), batch):
        ids.extend(insert_and_advance(connection, records[start : start + batch], stamp))
    for record, pk in zip(records, ids, strict=True):
        record.pk = pk
        record._state.adding = False
        record._state.db = using
    return records


def audit_record(
    *,
    action: str,
    actor: Actor,
    object: Subject,
    data: Mapping[str, Any],
    scope: Mapping[str, Any] | None = None,
    reason: str | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> AuditRecord:
    """Append the one event these fields describe (``audit_append`` of a single
    ``AuditEvent``, same contract: inside the caller's transaction) and return its record."""
    event = AuditEvent(
        action=action,
        actor=actor,
        object=object,
        data=data,
        scope=scope if scope is not None else {},
        reason=reason,
    )
    return audit_append(events=[event], using=using)[0]


def audit_append_security_event(
    *, event: AuditEvent, using: str = DEFAULT_DB_ALIAS, alert: str | None = None
) -> AuditRecord:
    """Record a refused action in a transaction of its own, after the refusal rolled back.
    With ``alert`` (its name outside Warden, e.g. ``signoff.signing_locked``) the record is
    also announced to the receivers of ``audit.alerts`` in that transaction."""
    with transaction.atomic(using=using, durable=True):
        record = audit_append(events=[event], using=using)[0]
        if alert is not None:
            alert_raise(event=alert, record=record)
        return record


def _inside_a_transaction(using: str) -> bool:
    # Django lets a durable block open inside a test case's transaction and nowhere else.
    return any(
        not getattr(block, "_from_testcase", False) for block in connections[using].atomic_blocks
    )


def audit_change_refused_record(
    *, table: str, operation: str, message: str, row: str | None, using: str = DEFAULT_DB_ALIAS
) -> None:
    """Record that the application refused ``operation`` on the append-only ``table``
    (``audit.change_refused``, a security event with an alert) and announce it.

    Called by the models' guards just before they raise. Outside a transaction the record is
    appended at once, in a transaction of its own; inside one (which the refusal will most
    likely roll back) it is appended when that transaction commits, as a durable block
    cannot open there. A database trigger's refusal cannot be recorded from the database:
    the scheduled full verification is what notices a change that got past both."""
    event = AuditEvent(
        action=AuditAction.AUDIT_CHANGE_REFUSED,
        actor=SYSTEM_ACTOR,
        object=Subject(type="audit_table", id=table, label=table),
        data={
            "table": table,
            "operation": operation,
            "row": row,
            "code": "append_only",
            "message": message,
            "alert": "audit_change_refused",
        },
    )

    def record() -> None:
        audit_append_security_event(event=event, using=using, alert=CHANGE_REFUSED)

    if _inside_a_transaction(using):
        transaction.on_commit(record, using=using)
    else:
        record()


def on_change_refused(
    sender: Any, *, table: str, operation: str, message: str, row: str | None, using: str, **_: Any
) -> None:
    """Receiver of ``audit.models.change_refused``: records the refusal."""
    audit_change_refused_record(
        table=table, operation=operation, message=message, row=row, using=using
    )

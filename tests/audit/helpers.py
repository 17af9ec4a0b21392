"""Helpers of the audit tests: building logs, reading them back and tampering with them.

Tampering runs as the database owner with the append-only triggers dropped for the duration
(``triggers_bypassed``), exactly what an administrator could do; the triggers are reinstalled
before the helper returns, so the verifier is what must notice.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

from audit import triggers
from audit.canonical import dumps
from audit.models import AuditRecord
from audit.services import AuditEvent, Subject, audit_append
from core.actors import SYSTEM_ACTOR

GENESIS = "0" * 64
# Non-ASCII text in every test record: an accented letter (for NFD), a BMP symbol and a
# character outside the BMP.
LABEL = "café ☕ 𝄞"


def leaf(body: bytes) -> str:
    return hashlib.sha256(b"\x00" + body).hexdigest()


def origin() -> str:
    return str(settings.AUDIT_LOG_ORIGIN)


def event(n: int = 0, *, action: str = "test.appended", **data: Any) -> AuditEvent:
    """A system event whose data names its position ``n`` and carries non-ASCII text."""
    return AuditEvent(
        action=action,
        actor=SYSTEM_ACTOR,
        object=Subject(type="test_object", id=str(n), label=f"object {n}"),
        data={"n": n, "label": LABEL, **data},
    )


def append_log(count: int) -> list[AuditRecord]:
    """Append ``count`` events, one per transaction (savepoints inside a ``db`` test)."""
    records: list[AuditRecord] = []
    for n in range(count):
        with transaction.atomic():
            records.extend(audit_append(events=[event(n)]))
    return records


def stored(log: str | None = None) -> list[tuple[int, str, str, bytes]]:
    """``(seq, prev, leaf, body)`` of every stored record of the log, in seq order."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT seq, prev, leaf, body FROM audit_auditrecord WHERE log = %s ORDER BY seq",
            [log or origin()],
        )
        return [(seq, prev, lf, body.encode("utf-8")) for seq, prev, lf, body in cursor.fetchall()]


def stored_bodies(log: str | None = None) -> list[bytes]:
    return [row[3] for row in stored(log)]


def head(log: str | None = None) -> tuple[int, str, str]:
    """``(size, tip, last_ts)`` of the log's head row."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT size, tip, last_ts FROM audit_loghead WHERE log = %s", [log or origin()]
        )
        row = cursor.fetchone()
    assert row is not None, "the log has no head row"
    return int(row[0]), str(row[1]), str(row[2])


# In-memory chains and body mutations (shared by the database and the in-memory tests) ------


def record(seq: int, prev: str, *, log: str, ts: str | None = None, **extra: Any) -> dict[str, Any]:
    """A record shaped like the ones ``audit_append`` writes."""
    fields: dict[str, Any] = {
        "v": 1,
        "log": log,
        "seq": seq,
        "ts": ts or f"2026-01-01T00:00:{seq % 60:02d}.{seq:06d}Z",
        "prev": prev,
        "actor": {"type": "system", "id": "warden", "name": "Warden"},
        "action": "test.appended",
        "object": {"type": "test_object", "id": str(seq), "label": f"object {seq}"},
        "scope": {},
        "data": {"n": seq, "label": LABEL},
    }
    fields.update(extra)
    return fields


def make_chain(count: int, *, log: str) -> list[bytes]:
    """``count`` canonical bodies forming a correct chain from genesis."""
    bodies: list[bytes] = []
    prev = GENESIS
    for seq in range(count):
        body = dumps(record(seq, prev, log=log, ts=f"2026-01-01T00:00:00.{seq:06d}Z"))
        bodies.append(body)
        prev = leaf(body)
    return bodies


def with_fields(body: bytes, **changes: Any) -> bytes:
    """The body with top-level fields changed, still canonical."""
    fields = json.loads(body)
    fields.update(changes)
    return dumps(fields)


def with_data(body: bytes, **changes: Any) -> bytes:
    fields = json.loads(body)
    fields["data"] = {**fields["data"], **changes}
    return dumps(fields)


def relink(bodies: list[bytes], start: int) -> list[bytes]:
    """Re-hash the chain after ``bodies[start]`` changed: every later ``prev`` is recomputed,
    so the chain is self-consistent again (what a careful forger does)."""
    out = list(bodies)
    for index in range(start + 1, len(out)):
        out[index] = with_fields(out[index], prev=leaf(out[index - 1]))
    return out


def _replace_once(body: bytes, old: bytes, new: bytes) -> bytes:
    assert body.count(old) >= 1, f"{old!r} not in {body!r}"
    return body.replace(old, new, 1)


_NFC = LABEL.split(maxsplit=1)[0].encode("utf-8")  # "café"
_NFD = unicodedata.normalize("NFD", LABEL.split(maxsplit=1)[0]).encode("utf-8")

# Each turns a canonical body into bytes that parse to (nearly) the same record but are not
# the canonical form (AUDIT_SPEC section 8, "non-canonical bodies").
NONCANONICAL: dict[str, Any] = {
    "whitespace": lambda b: json.dumps(json.loads(b), sort_keys=True, ensure_ascii=False).encode(),
    "key-order": lambda b: json.dumps(
        dict(sorted(json.loads(b).items(), reverse=True)), separators=(",", ":"), ensure_ascii=False
    ).encode(),
    "float-1.0": lambda b: _replace_once(b, b'"v":1}', b'"v":1.0}'),
    "duplicate-key": lambda b: _replace_once(
        b, b'{"action":', b'{"action":"forged.action","action":'
    ),
    "nfd-string": lambda b: _replace_once(b, _NFC, _NFD),
    "nan": lambda b: _replace_once(b, b'"data":{', b'"data":{"nan":NaN,'),
    "escaped-non-ascii": lambda b: _replace_once(b, "é".encode(), b"\\u00e9"),
    "escaped-solidus": lambda b: _replace_once(b, b'"object":{', b'"object":{"path":"a\\/b",'),
    "integer-beyond-2**53": lambda b: _replace_once(
        b, b'"data":{', b'"data":{"big":9007199254740992,'
    ),
    "lone-surrogate": lambda b: _replace_once(b, "☕".encode(), b"\\ud800"),
    "trailing-newline": lambda b: b + b"\n",
    "non-ascii-key": lambda b: _replace_once(b, b'"label":', '"lâbel":'.encode()),
}


@contextmanager
def triggers_bypassed() -> Iterator[CursorWrapper]:
    """Drop the append-only triggers as the owner, yield a cursor, reinstall them."""
    triggers.uninstall(connection)
    try:
        with connection.cursor() as cursor:
            yield cursor
    finally:
        triggers.install(connection)
    assert triggers.missing(connection) == []


def overwrite(bodies: dict[int, bytes], *, update_columns: bool = True) -> None:
    """Store new bodies at the given seqs; with ``update_columns`` also the ``leaf`` and
    ``prev`` columns (a consistent forger), otherwise the body alone."""
    with triggers_bypassed() as cursor:
        for seq, body in sorted(bodies.items()):
            if update_columns:
                cursor.execute(
                    "UPDATE audit_auditrecord SET body = %s, leaf = %s, prev = %s "
                    "WHERE log = %s AND seq = %s",
                    [body.decode("utf-8"), leaf(body), _prev_of(body), origin(), seq],
                )
            else:
                cursor.execute(
                    "UPDATE audit_auditrecord SET body = %s WHERE log = %s AND seq = %s",
                    [body.decode("utf-8"), origin(), seq],
                )


def _prev_of(body: bytes) -> str:
    try:
        return str(json.loads(body)["prev"])[:64]
    except (ValueError, KeyError):
        return "f" * 64


def rewrite_from(seq: int, new_body: bytes, *, move_head: bool = True) -> None:
    """Replace record ``seq`` with ``new_body`` and re-hash every later record so that the
    chain and the stored columns are consistent; ``move_head`` also updates the head's tip."""
    bodies = stored_bodies()
    bodies[seq] = new_body
    bodies = relink(bodies, seq)
    overwrite({n: body for n, body in enumerate(bodies) if n >= seq})
    if move_head:
        set_head(tip=leaf(bodies[-1]))


def delete(seq: int) -> None:
    with triggers_bypassed() as cursor:
        cursor.execute("DELETE FROM audit_auditrecord WHERE log = %s AND seq = %s", [origin(), seq])


def set_head(*, size: int | None = None, tip: str | None = None) -> None:
    """Change the head row (it has no triggers: appends update it)."""
    current_size, current_tip, _ = head()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_loghead SET size = %s, tip = %s WHERE log = %s",
            [current_size if size is None else size, tip or current_tip, origin()],
        )


def findings(report: Any) -> list[tuple[str, int | None]]:
    return [(finding.code, finding.seq) for finding in report.findings]

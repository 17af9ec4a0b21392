"""Verification (AUDIT_SPEC sections 7 and 8): ``manage.py audit_verify`` over a tampered
database, and ``audit.verifier.ChainVerifier`` over the same tampering in memory.

Tampering bypasses the triggers as the database owner would (``helpers.triggers_bypassed``).
Every test names the finding codes and the first bad seq it expects.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from audit.canonical import dumps
from audit.verification import verify_log
from audit.verifier import ChainVerifier, parse_record, verify_bodies
from tests.audit import helpers
from tests.audit.helpers import (
    GENESIS,
    NONCANONICAL,
    append_log,
    delete,
    findings,
    leaf,
    make_chain,
    overwrite,
    relink,
    rewrite_from,
    set_head,
    stored,
    stored_bodies,
    triggers_bypassed,
    with_data,
    with_fields,
)

SIZE = 6
K = 2  # the record tampered with, unless a test says otherwise
FOREIGN_LOG = "warden.example.org/prod"


def run_command(*args: str) -> tuple[int, str]:
    """The command's exit status and output. ``--no-record``: these tests run it several times
    over one tampered log, and a recorded failure would be one more record to find
    (``tests/audit/test_alerts.py`` checks what it records)."""
    out = StringIO()
    try:
        call_command("audit_verify", "--no-record", *args, stdout=out)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue()
    return 0, out.getvalue()


def assert_intact(records: int) -> None:
    report = verify_log()
    assert report.ok, report.findings
    assert report.records == records
    status, text = run_command()
    assert status == 0
    assert f"OK: {records} records verified" in text
    status, text = run_command("--json")
    assert status == 0
    machine = json.loads(text)
    assert machine["ok"] is True
    assert machine["first_bad_seq"] is None
    assert machine["findings"] == []


def assert_detected(expected: list[tuple[str, int | None]], first_bad: int) -> None:
    """The in-service check, the command and its JSON report all name the damage."""
    report = verify_log()
    assert findings(report) == expected
    assert not report.ok
    first = report.first_error
    assert first is not None
    assert first.seq == first_bad

    status, text = run_command()
    assert status == 1
    assert f"first bad seq {first_bad} ({first.code})" in text
    for code, seq in expected:
        assert f"{code} at seq {seq}" in text

    status, text = run_command("--json")
    assert status == 1
    machine = json.loads(text)
    assert machine["ok"] is False
    assert machine["first_bad_seq"] == first_bad
    assert [(f["code"], f["seq"]) for f in machine["findings"]] == expected


@pytest.fixture
def log(db: None) -> list[bytes]:
    append_log(SIZE)
    bodies = stored_bodies()
    assert_intact(SIZE)
    return bodies


@pytest.mark.django_db
def test_an_empty_log_verifies() -> None:
    assert_intact(0)


def test_an_intact_log_verifies(log: list[bytes]) -> None:
    assert verify_log().tip == leaf(log[-1])


def test_an_edited_body_is_caught_by_its_stored_leaf_and_the_next_link(log: list[bytes]) -> None:
    overwrite({K: with_data(log[K], n=99)}, update_columns=False)
    assert_detected([("E_LEAF", K), ("E_PREV", K + 1)], first_bad=K)


def test_an_edited_body_with_its_leaf_column_updated_is_caught_by_the_next_link(
    log: list[bytes],
) -> None:
    overwrite({K: with_data(log[K], n=99)})
    assert_detected([("E_PREV", K + 1)], first_bad=K + 1)


def test_an_edited_last_body_is_caught_by_the_log_head(log: list[bytes]) -> None:
    last = SIZE - 1
    overwrite({last: with_data(log[last], n=99)})
    assert_detected([("E_PREV", last)], first_bad=last)


def test_a_rewritten_chain_without_moving_the_head_is_caught_at_the_tip(log: list[bytes]) -> None:
    rewrite_from(K, with_data(log[K], n=99), move_head=False)
    assert_detected([("E_PREV", SIZE - 1)], first_bad=SIZE - 1)


def test_consistent_rewrite_is_invisible_without_checkpoints(log: list[bytes]) -> None:
    """Whoever can write the database can edit a record, re-hash everything after it and move
    the head: the in-service chain check has nothing left to compare against. That is the
    threat signed checkpoints (key outside the database) and exported checkpoints exist for
    (AUDIT_SPEC section 1, table row 2; section 5). This test pins the limit down so that
    nobody mistakes a green ``audit_verify`` for proof against the database's owners."""
    rewrite_from(K, with_data(log[K], n=99))
    assert stored_bodies() != log
    assert json.loads(stored_bodies()[K])["data"]["n"] == 99
    assert_intact(SIZE)


def test_a_deleted_record_is_a_gap(log: list[bytes]) -> None:
    delete(K)
    assert_detected([("E_SEQ_GAP", K), ("E_PREV", K + 1), ("E_TRUNCATED", SIZE - 1)], first_bad=K)


def test_a_truncated_tail_is_caught_by_the_log_head(log: list[bytes]) -> None:
    delete(SIZE - 1)
    assert_detected([("E_TRUNCATED", SIZE - 1)], first_bad=SIZE - 1)


def test_a_truncated_tail_with_the_head_rewound_is_invisible_without_checkpoints(
    log: list[bytes],
) -> None:
    """Like a consistent rewrite: detected only below a checkpoint held elsewhere."""
    delete(SIZE - 1)
    set_head(size=SIZE - 1, tip=leaf(log[SIZE - 2]))
    assert_intact(SIZE - 1)


def test_a_deleted_and_renumbered_record_breaks_the_link(log: list[bytes]) -> None:
    bodies = _renumber_after_delete(list(log))
    delete(K)
    with triggers_bypassed() as cursor:
        for seq in range(K, SIZE - 1):
            cursor.execute(
                "UPDATE audit_auditrecord SET seq = %s WHERE log = %s AND seq = %s",
                [seq, helpers.origin(), seq + 1],
            )
    overwrite({seq: body for seq, body in enumerate(bodies) if seq >= K})
    set_head(size=SIZE - 1, tip=leaf(bodies[-1]))
    assert_detected([("E_PREV", K)], first_bad=K)


def test_a_forged_record_inserted_in_the_middle_is_caught(log: list[bytes]) -> None:
    forged = with_data(log[K], n=77)  # seq K, prev = leaf(K - 1): a perfect fit on its own
    with triggers_bypassed() as cursor:
        for seq in range(SIZE - 1, K - 1, -1):
            cursor.execute(
                "UPDATE audit_auditrecord SET seq = %s WHERE log = %s AND seq = %s",
                [seq + 1, helpers.origin(), seq],
            )
        cursor.execute(
            "INSERT INTO audit_auditrecord (log, seq, prev, leaf, body, ts, action, actor_type, "
            "actor_id, object_type, object_id, scope_model) "
            "SELECT log, %s, %s, %s, %s, ts, action, actor_type, actor_id, object_type, "
            "object_id, scope_model FROM audit_auditrecord WHERE log = %s AND seq = %s",
            [K, "e" * 64, leaf(forged), forged.decode(), helpers.origin(), K + 1],
        )
    assert_detected([("E_SEQ_DUP", K), ("E_PREV", K)], first_bad=K)


def test_swapped_bodies_are_caught_at_the_first_swapped_seq(log: list[bytes]) -> None:
    overwrite({K: log[K + 1], K + 1: log[K]}, update_columns=False)
    report = verify_log()
    assert report.first_error is not None
    assert report.first_error.seq == K
    assert ("E_SEQ_GAP", K) in findings(report)
    assert ("E_SEQ_DUP", K) in findings(report)
    status, text = run_command("--json")
    assert status == 1
    assert json.loads(text)["first_bad_seq"] == K


def test_a_duplicated_record_is_caught(log: list[bytes]) -> None:
    """A replayed copy of the last record (the seq column says SIZE, the body says SIZE-1)."""
    with triggers_bypassed() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditrecord (log, seq, prev, leaf, body, ts, action, actor_type, "
            "actor_id, object_type, object_id, scope_model) "
            "SELECT log, %s, %s, leaf, body, ts, action, actor_type, actor_id, object_type, "
            "object_id, scope_model FROM audit_auditrecord WHERE log = %s AND seq = %s",
            [SIZE, "d" * 64, helpers.origin(), SIZE - 1],
        )
    assert_detected([("E_SEQ_DUP", SIZE - 1), ("E_PREV", SIZE - 1)], first_bad=SIZE - 1)


@pytest.mark.parametrize("variant", NONCANONICAL.values(), ids=NONCANONICAL.keys())
def test_a_non_canonical_body_is_caught_even_in_a_consistent_chain(
    log: list[bytes], variant: Callable[[bytes], bytes]
) -> None:
    rewrite_from(K, variant(log[K]))
    assert_detected([("E_NONCANONICAL", K)], first_bad=K)


def test_a_record_of_another_log_is_caught(log: list[bytes]) -> None:
    rewrite_from(K, with_fields(log[K], log=FOREIGN_LOG))
    assert_detected([("E_ORIGIN", K)], first_bad=K)


def test_logs_are_verified_separately(log: list[bytes]) -> None:
    with override_settings(AUDIT_LOG_ORIGIN=FOREIGN_LOG):
        foreign = append_log(2)
        assert [r.seq for r in foreign] == [0, 1]
        assert verify_log().records == 2
    assert verify_log().records == SIZE
    assert json.loads(stored(FOREIGN_LOG)[0][3])["log"] == FOREIGN_LOG


def test_an_unknown_record_version_is_caught(log: list[bytes]) -> None:
    rewrite_from(K, with_fields(log[K], v=2))
    assert_detected([("E_VERSION", K)], first_bad=K)


def test_a_timestamp_going_backwards_is_caught(log: list[bytes]) -> None:
    earlier = json.loads(log[K - 1])["ts"]
    backwards = earlier[:11] + "00:00:00.000000Z"
    assert backwards < earlier
    rewrite_from(K, with_fields(log[K], ts=backwards))
    assert_detected([("E_TS_REGRESSION", K)], first_bad=K)


def test_a_body_that_is_not_a_record_is_caught(log: list[bytes]) -> None:
    fields = json.loads(log[K])
    del fields["actor"]
    rewrite_from(K, dumps(fields))
    assert_detected([("E_PARSE", K)], first_bad=K)


ORIGIN = "warden.test/memory"


def tampered(change: Callable[[list[bytes]], list[bytes]]) -> list[tuple[str, int | None]]:
    return findings(verify_bodies(ORIGIN, change(make_chain(SIZE, log=ORIGIN))))


Tamper = Callable[[list[bytes]], list[bytes]]


def at(seq: int, mutate: Callable[[bytes], bytes], *, relinked: bool = True) -> Tamper:
    """Change body ``seq``; with ``relinked`` re-hash the chain after it, so that only the
    check aimed at the change itself can notice."""

    def change(bodies: list[bytes]) -> list[bytes]:
        bodies[seq] = mutate(bodies[seq])
        return relink(bodies, seq) if relinked else bodies

    return change


def fields_at(position: int, /, **changes: Any) -> Tamper:
    return at(position, lambda body: with_fields(body, **changes))


def test_an_intact_chain_verifies_in_memory() -> None:
    bodies = make_chain(SIZE, log=ORIGIN)
    report = verify_bodies(ORIGIN, bodies)
    assert report.ok
    assert (report.records, report.first_seq, report.last_seq) == (SIZE, 0, SIZE - 1)
    assert report.tip == leaf(bodies[-1])
    assert report.as_dict()["first_bad_seq"] is None


def test_an_empty_chain_verifies_in_memory() -> None:
    report = verify_bodies(ORIGIN, [])
    assert report.ok
    assert (report.records, report.tip) == (0, GENESIS)


def _swap(bodies: list[bytes]) -> list[bytes]:
    bodies[K], bodies[K + 1] = bodies[K + 1], bodies[K]
    return bodies


def _renumber_after_delete(bodies: list[bytes]) -> list[bytes]:
    """Delete record K, renumber the rest and re-hash forward from K: only the link across
    the hole (K's prev) still names the deleted record."""
    del bodies[K]
    renumbered = [
        with_fields(body, seq=seq) if seq >= K else body for seq, body in enumerate(bodies)
    ]
    return relink(renumbered, K)


def _insert_forged(bodies: list[bytes]) -> list[bytes]:
    bodies.insert(K, with_data(bodies[K], n=77))
    return bodies


def _signed(
    content: dict[str, Any], digest: str | None = None
) -> Callable[[list[bytes]], list[bytes]]:
    def change(bodies: list[bytes]) -> list[bytes]:
        sha = digest or hashlib.sha256(dumps(content)).hexdigest()
        bodies[K] = with_fields(bodies[K], data={"signed_content": content, "signed_sha256": sha})
        return relink(bodies, K)

    return change


SIGNED = {
    "meaning": "approved",
    "printed_name": "Rita Rossi",
    "signed_at": "2026-01-01T00:00:00.000000Z",
}

IN_MEMORY_CASES: dict[str, tuple[Tamper, list[tuple[str, int | None]]]] = {
    "edited-body": (at(K, lambda b: with_data(b, n=99), relinked=False), [("E_PREV", K + 1)]),
    "consistent-rewrite-invisible": (at(K, lambda b: with_data(b, n=99)), []),
    "deleted": (lambda b: b[:K] + b[K + 1 :], [("E_SEQ_GAP", K), ("E_PREV", K + 1)]),
    "deleted-and-renumbered": (_renumber_after_delete, [("E_PREV", K)]),
    "forged-insert": (_insert_forged, [("E_SEQ_DUP", K), ("E_PREV", K)]),
    "replayed": (lambda b: [*b[: K + 1], b[K], *b[K + 1 :]], [("E_SEQ_DUP", K), ("E_PREV", K)]),
    "swapped": (
        _swap,
        [
            ("E_SEQ_GAP", K),  # body K+1 where K belongs
            ("E_PREV", K + 1),
            ("E_SEQ_DUP", K),  # then body K
            ("E_PREV", K),
            ("E_TS_REGRESSION", K),
            ("E_SEQ_GAP", K + 1),  # re-synchronised after K, so K+1 looks missing
            ("E_PREV", K + 2),
        ],
    ),
    "tail-truncated-invisible": (lambda b: b[:-1], []),  # the head row or a checkpoint tells
    "genesis-not-zero": (fields_at(0, prev="1" * 64), [("E_PREV", 0)]),
    "starts-at-one": (fields_at(0, seq=1), [("E_SEQ_GAP", 0), ("E_SEQ_DUP", 1)]),
    "other-log": (fields_at(K, log=FOREIGN_LOG), [("E_ORIGIN", K)]),
    "version-2": (fields_at(K, v=2), [("E_VERSION", K)]),
    "version-0": (fields_at(K, v=0), [("E_VERSION", K)]),
    "ts-regression": (fields_at(K, ts="2025-12-31T23:59:59.999999Z"), [("E_TS_REGRESSION", K)]),
    "not-utf8": (at(K, lambda b: b.replace("é".encode(), b"\xe9")), [("E_PARSE", K)]),
    "not-json": (at(K, lambda _: b"{not json"), [("E_PARSE", K)]),
    "not-an-object": (at(K, lambda _: b"[]"), [("E_PARSE", K)]),
    "seq-as-string": (fields_at(K, seq=str(K)), [("E_PARSE", K)]),
    "version-as-boolean": (fields_at(K, v=True), [("E_PARSE", K)]),
    "unknown-field": (fields_at(K, extra=1), [("E_PARSE", K)]),
    "bad-ts-format": (fields_at(K, ts="2026-01-01 00:00:00"), [("E_PARSE", K)]),
    "prev-not-lowercase-hex": (fields_at(K, prev="A" * 64), [("E_PARSE", K)]),
    "signature-intact": (_signed(SIGNED), []),
    "signature-digest-wrong": (_signed(SIGNED, digest="0" * 64), [("E_ESIG", K)]),
    "signature-without-meaning": (_signed({**SIGNED, "meaning": ""}), [("E_ESIG", K)]),
    "nested-too-deeply": (at(K, lambda _: b"[" * 100_000 + b"]" * 100_000), [("E_PARSE", K)]),
    # Inside the profile, so accepted: the fast paths of the checks must not refuse these.
    "largest-safe-integers": (at(K, lambda b: with_data(b, hi=2**53 - 1, lo=-(2**53 - 1))), []),
    "digits-in-a-string": (at(K, lambda b: with_data(b, note=":-12345678901234567890")), []),
    "newline-then-combining-mark": (at(K, lambda b: with_data(b, label="\n\u0301")), []),
    **{
        f"noncanonical-{name}": (at(K, variant), [("E_NONCANONICAL", K)])
        for name, variant in NONCANONICAL.items()
    },
}


@pytest.mark.parametrize(
    ("change", "expected"), IN_MEMORY_CASES.values(), ids=IN_MEMORY_CASES.keys()
)
def test_chain_verifier_in_memory(change: Tamper, expected: list[tuple[str, int | None]]) -> None:
    assert tampered(change) == expected


def test_chain_verifier_resumes_from_a_known_position() -> None:
    bodies = make_chain(SIZE, log=ORIGIN)
    verifier = ChainVerifier(ORIGIN, start_seq=3, start_prev=leaf(bodies[2]))
    for body in bodies[3:]:
        verifier.feed(body)
    assert verifier.finish().ok
    wrong = ChainVerifier(ORIGIN, start_seq=3, start_prev=GENESIS)
    for body in bodies[3:]:
        wrong.feed(body)
    assert findings(wrong.finish()) == [("E_PREV", 3)]


def test_parse_record_names_the_code_and_the_reason() -> None:
    body = make_chain(1, log=ORIGIN)[0]
    assert parse_record(body)["seq"] == 0
    with pytest.raises(ValueError, match="duplicate key") as refused:
        parse_record(NONCANONICAL["duplicate-key"](body))
    assert refused.value.args[0] == "E_NONCANONICAL"


def test_parallel_checking_reports_exactly_what_serial_checking_does(log: list[bytes]) -> None:
    rewrite_from(4, NONCANONICAL["nfd-string"](log[4]))
    delete(1)
    serial = verify_log()
    assert findings(serial) == [
        ("E_SEQ_GAP", 1),
        ("E_PREV", 2),
        ("E_NONCANONICAL", 4),
        ("E_TRUNCATED", SIZE - 1),
    ]
    parallel = verify_log(workers=2)
    assert parallel.as_dict() == serial.as_dict()
    status, text = run_command("--json", "--workers", "2")
    assert status == 1
    assert json.loads(text) == serial.as_dict()


@pytest.mark.django_db
def test_the_command_reads_the_named_database() -> None:
    append_log(2)
    status, text = run_command("--database", connection.alias)
    assert (status, text.strip()) == (0, f"OK: 2 records verified, tip {leaf(stored_bodies()[-1])}")

"""Gate checks recorded at the same moment share one transaction: the mechanism (a group
forms while one is written; a failing check is written alone, and fails alone), and, on a
real database, concurrent checks each with their own row and record in one verifying chain."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connections

from audit.models import AuditRecord
from audit.verification import verify_log
from governance.approvals import selectors
from governance.approvals.models import Environment, GateCheck
from governance.approvals.services import gate
from tests.approvals.conftest import approve_through


def pending(name: str) -> Any:
    return gate._Pending(check=name, event=name, actor=name, facts={})  # type: ignore[arg-type]


@pytest.mark.database_free
def test_checks_arriving_while_a_group_is_written_form_the_next_group(monkeypatch):
    groups: list[list[str]] = []
    first_is_writing, release_first = threading.Event(), threading.Event()

    def write(group):
        groups.append([member.check for member in group])
        if len(groups) == 1:
            first_is_writing.set()
            assert release_first.wait(10)
        for member in group:
            member.record = SimpleNamespace(seq=len(groups))

    monkeypatch.setattr(gate, "_write", write)
    committer = gate.GroupCommit()
    with ThreadPoolExecutor(max_workers=4) as pool:
        first = pool.submit(committer.record, pending("a"))
        assert first_is_writing.wait(10)
        later = [pool.submit(committer.record, pending(name)) for name in "bcd"]
        while len(committer._waiting) < 3:
            threading.Event().wait(0.01)
        release_first.set()
        assert first.result(10).seq == 1
        assert [f.result(10).seq for f in later] == [2, 2, 2]
    assert groups[0] == ["a"] and sorted(groups[1]) == ["b", "c", "d"]


@pytest.mark.database_free
def test_a_failing_group_is_written_one_check_at_a_time(monkeypatch):
    written: list[list[str]] = []

    def write(group):
        written.append([member.check for member in group])
        if len(group) > 1 or group[0].check == "bad":
            raise RuntimeError(f"cannot write {[m.check for m in group]}")
        group[0].record = SimpleNamespace(seq=group[0].check)

    monkeypatch.setattr(gate, "_write", write)
    committer = gate.GroupCommit()
    group = [pending(name) for name in ("good", "bad", "fine")]
    committer._write_group(group)
    assert written == [["good", "bad", "fine"], ["good"], ["bad"], ["fine"]]
    assert [m.record.seq if m.record else None for m in group] == ["good", None, "fine"]
    assert isinstance(group[1].error, RuntimeError)


@pytest.mark.django_db(transaction=True)
def test_concurrent_checks_each_have_their_row_and_record_in_one_chain(alice, version, ci):
    if connections["default"].vendor != "postgresql":
        pytest.skip("concurrent writers are PostgreSQL's: SQLite serialises every writer")
    approve_through(version, "dev", alice)
    dev = Environment.objects.get(name="dev")
    decision = selectors.gate_decide(
        version=version, environment=dev, digest=version.artifact_digest
    )

    def ask(n: int) -> Any:
        try:
            return gate.gate_record(caller=ci, decision=decision, pipeline_run=f"run-{n}")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, range(24)))

    seqs = [answer.audit_seq for answer in answers]
    assert len(set(seqs)) == 24
    records = {r.seq: json.loads(r.body)["data"] for r in AuditRecord.objects.filter(seq__in=seqs)}
    for answer in answers:
        assert records[answer.audit_seq]["check_id"] == str(answer.check.check_id)
    assert GateCheck.objects.filter(check_id__in=[a.check.check_id for a in answers]).count() == 24
    assert verify_log().ok

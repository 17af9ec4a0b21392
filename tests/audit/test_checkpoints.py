"""Signed checkpoints (AUDIT_SPEC.md section 5): what the checkpointer signs, and everything it
refuses to sign. Tampering runs as the database owner with the triggers dropped
(``tests.audit.helpers``), as an administrator could; the publish directory is the
checkpointer's own copy, which such an administrator does not control.

Processes racing each other and crashes are in ``test_checkpoint_processes.py``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit import keys, merkle, triggers
from audit.checkpoints import (
    CheckpointRefused,
    ForkAlarm,
    IntegrityAlarm,
    TruncationAlarm,
    checkpoint_create,
    checkpoint_due,
    latest_checkpoint,
)
from audit.models import AppendOnlyError, AuditRecord, Checkpoint, TreeNode
from audit.notes import (
    Checkpoint as CheckpointText,
)
from audit.notes import (
    NoteError,
    Signer,
    open_checkpoint,
    parse_verifier,
    sign_checkpoint,
)
from audit.publication import PublishConflict, PublishDir
from audit.services import audit_append
from audit.tasks import checkpoint_if_due
from tests.audit.conftest import make_key
from tests.audit.helpers import (
    delete,
    event,
    origin,
    overwrite,
    rewrite_from,
    set_head,
    stored,
    stored_bodies,
    triggers_bypassed,
    with_data,
)
from tests.support import on_postgres

pytestmark = pytest.mark.django_db

NOTE_FORMAT = re.compile(
    r"(?P<origin>[^\n]+)\n(?P<size>[0-9]+)\n(?P<root>[A-Za-z0-9+/]{43}=)\n\n"
    r"(?:\u2014 (?P<name>[^ \n]+) [A-Za-z0-9+/]+=*\n)+\Z"
)


def grow(count: int) -> None:
    """Append ``count`` records in one transaction."""
    start = AuditRecord.objects.count()
    with transaction.atomic():
        audit_append(events=[event(start + n) for n in range(count)])


def leaves() -> list[bytes]:
    return [bytes.fromhex(leaf) for _, _, leaf, _ in stored()]


def signed_sizes() -> list[int]:
    return list(Checkpoint.objects.order_by("size").values_list("size", flat=True))


def forge_note(signer: Signer, size: int, root: bytes | None = None) -> bytes:
    """A note properly signed by ``signer`` for ``size``, with a root that is not the log's."""
    fake_root = root or merkle.leaf_hash(b"a different history")
    return sign_checkpoint(CheckpointText(origin(), size, fake_root), [signer])


def replace_file(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def test_a_checkpoint_commits_to_the_log_and_opens_with_the_published_key(
    signing_key: Signer, publish_dir: PublishDir
) -> None:
    grow(5)
    result = checkpoint_create()
    assert result.created
    checkpoint = result.checkpoint
    assert checkpoint is not None
    note = checkpoint.note.encode("utf-8")

    match = NOTE_FORMAT.match(checkpoint.note)
    assert match, checkpoint.note
    assert (match["origin"], match["size"], match["name"]) == (origin(), "5", "warden.test")
    [key_line] = keys.verification_key_lines()
    parsed, opened = open_checkpoint(note, [parse_verifier(key_line)])
    assert (parsed.origin, parsed.size, parsed.root) == (origin(), 5, merkle.root(leaves()))
    assert opened.key_names == ("warden.test",)
    assert (checkpoint.log, checkpoint.size, checkpoint.root) == (origin(), 5, parsed.root.hex())
    assert checkpoint.key_names == ["warden.test"]

    assert publish_dir.read(5) == note
    assert (publish_dir.path / "latest.note").read_bytes() == note
    # Checkpoints are not audit records (each would make the next one due).
    assert AuditRecord.objects.count() == 5


def test_a_note_fails_to_open_once_any_byte_of_its_body_changes(signing_key: Signer) -> None:
    grow(3)
    checkpoint = checkpoint_create().checkpoint
    assert checkpoint is not None
    note = checkpoint.note.encode("utf-8")
    trusted = keys.trusted_verifiers()
    for forged in (
        note.replace(b"\n3\n", b"\n4\n", 1),
        note.replace(origin().encode(), b"warden.test/prod", 1),
        note.replace(b"\n", b"\r\n", 1),
    ):
        with pytest.raises(NoteError):
            open_checkpoint(forged, trusted)


def test_nothing_to_sign_on_an_empty_log_or_when_it_has_not_grown(
    signing_key: Signer, publish_dir: PublishDir
) -> None:
    empty = checkpoint_create()
    assert (empty.created, empty.checkpoint) == (False, None)
    assert not publish_dir.path.exists()

    grow(2)
    first = checkpoint_create()
    again = checkpoint_create()
    assert first.created and not again.created
    assert again.checkpoint == first.checkpoint
    assert signed_sizes() == [2]


def test_a_checkpoint_signed_by_another_checkpointer_meanwhile_is_no_truncation(
    signing_key: Signer, publish_dir: PublishDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between this checkpointer's reads, another one signs a larger size of records committed
    meanwhile: that is the log growing, not shrinking; nothing is refused."""
    grow(2)
    checkpoint_create()
    grow(1)
    latest = PublishDir.latest
    raced: list[int] = []

    def another_checkpointer_first(self: PublishDir) -> Any:
        if not raced:
            raced.append(1)
            grow(2)
            raced.append(checkpoint_create().checkpoint.size)  # type: ignore[union-attr]
        return latest(self)

    monkeypatch.setattr(PublishDir, "latest", another_checkpointer_first)
    result = checkpoint_create()
    assert raced == [1, 5]
    assert result.checkpoint is not None and result.checkpoint.size == 5
    assert signed_sizes() == [2, 5]


def test_successive_checkpoints_extend_each_other_and_persist_the_tree(
    signing_key: Signer, publish_dir: PublishDir
) -> None:
    previous: tuple[int, bytes] | None = None
    for size in (3, 256, 300, 700, 1030):
        grow(size - AuditRecord.objects.count())
        checkpoint = checkpoint_create().checkpoint
        assert checkpoint is not None
        log = leaves()
        root = merkle.root(log)
        assert (checkpoint.size, checkpoint.root) == (size, root.hex())
        if previous is not None:
            old_size, old_root = previous
            proof = merkle.consistency_proof(log, old_size, size)
            assert merkle.verify_consistency(old_size, size, old_root, root, proof)
        previous = (size, root)
        assert publish_dir.read(size) == checkpoint.note.encode("utf-8")

    # Every perfect subtree of 256 leaves and more, exactly, and nothing else.
    log = leaves()
    expected = {
        (level, index): merkle.root(log[index << level : (index + 1) << level]).hex()
        for level in range(8, 11)
        for index in range(len(log) >> level)
    }
    assert {(n.level, n.index): n.hash for n in TreeNode.objects.all()} == expected
    assert signed_sizes() == [3, 256, 300, 700, 1030]
    assert (publish_dir.path / "latest.note").read_bytes() == publish_dir.read(1030)


@pytest.mark.parametrize("table", ["audit_checkpoint", "audit_treenode"])
def test_checkpoints_and_tree_nodes_are_append_only_in_the_database(
    signing_key: Signer, table: str
) -> None:
    grow(300)
    checkpoint_create()
    assert triggers.missing(connection) == []
    assert triggers.present(connection, table) >= set(triggers.expected(connection, table))
    statements = [f"UPDATE {table} SET log = 'forged'", f"DELETE FROM {table}"]
    if on_postgres():
        statements.append(f"TRUNCATE {table}")
    for statement in statements:
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    assert signed_sizes() == [300]
    assert TreeNode.objects.count() == 1


def test_checkpoints_and_tree_nodes_are_append_only_in_the_models(signing_key: Signer) -> None:
    grow(300)
    checkpoint = checkpoint_create().checkpoint
    node = TreeNode.objects.get()
    assert checkpoint is not None
    writes = [
        checkpoint.save,
        checkpoint.delete,
        node.delete,
        lambda: Checkpoint.objects.update(root="0" * 64),
        lambda: Checkpoint.objects.all().delete(),
        lambda: Checkpoint.objects.bulk_update([checkpoint], ["root"]),
        lambda: TreeNode.objects.filter(pk=node.pk).update(hash="0" * 64),
        lambda: TreeNode.objects.update_or_create(pk=node.pk, defaults={"hash": "0" * 64}),
    ]
    for write in writes:
        with pytest.raises(AppendOnlyError, match="append-only"):
            write()
    assert signed_sizes() == [300]


def _nothing_signed_beyond(size: int, publish_dir: PublishDir) -> None:
    assert signed_sizes()[-1:] == [size]
    assert sorted(p.name for p in publish_dir.path.glob("*.note")) == sorted(
        {f"{s}.note" for s in signed_sizes()} | {"latest.note"}
    )
    assert (publish_dir.path / "latest.note").read_bytes() == publish_dir.read(size)


def test_a_record_edited_after_the_last_checkpoint_is_refused(
    signing_key: Signer, publish_dir: PublishDir, caplog: pytest.LogCaptureFixture
) -> None:
    grow(10)
    checkpoint_create()
    grow(5)
    bodies = stored_bodies()
    overwrite({12: with_data(bodies[12], n=999)}, update_columns=False)

    with pytest.raises(IntegrityAlarm, match="E_LEAF at seq 12"):
        checkpoint_create()
    _nothing_signed_beyond(10, publish_dir)
    assert any(r.levelname == "CRITICAL" for r in caplog.records)


def test_a_record_rehashed_after_the_last_checkpoint_breaks_the_chain(
    signing_key: Signer, publish_dir: PublishDir
) -> None:
    """The body and its leaf column changed together: the next record's prev no longer
    matches."""
    grow(10)
    checkpoint_create()
    grow(5)
    bodies = stored_bodies()
    overwrite({12: with_data(bodies[12], n=999)})

    with pytest.raises(IntegrityAlarm, match="E_PREV at seq 13"):
        checkpoint_create()
    _nothing_signed_beyond(10, publish_dir)


def test_a_record_edited_before_the_first_checkpoint_is_refused(signing_key: Signer) -> None:
    grow(8)
    bodies = stored_bodies()
    overwrite({2: with_data(bodies[2], label="forged")}, update_columns=False)

    with pytest.raises(IntegrityAlarm, match="seq 2"):
        checkpoint_create()
    assert signed_sizes() == []


def test_a_checkpointed_history_rewritten_consistently_is_a_fork(
    signing_key: Signer, publish_dir: PublishDir
) -> None:
    """Every hash recomputed after record 3: the chain verifies on its own, but the record the
    last checkpoint ends with is no longer in its signed tree."""
    grow(10)
    checkpoint_create()
    grow(5)
    bodies = stored_bodies()
    rewrite_from(3, with_data(bodies[3], n=333))

    with pytest.raises(ForkAlarm, match="record 9 is not the one stored checkpoint 10 signed"):
        checkpoint_create()
    _nothing_signed_beyond(10, publish_dir)


def _delete_checkpoints_and_tree() -> None:
    with triggers_bypassed() as cursor:
        cursor.execute("DELETE FROM audit_checkpoint")
        cursor.execute("DELETE FROM audit_treenode")


def test_a_rewrite_with_checkpoints_and_tree_deleted_is_caught_by_the_published_copy(
    signing_key: Signer, publish_dir: PublishDir
) -> None:
    """Whoever controls the database rewrites history, recomputes every hash and deletes every
    checkpoint row and cached node: only the checkpointer's copy outside the database is left
    to notice, and it does."""
    grow(300)
    checkpoint_create()
    grow(20)
    published = publish_dir.read(300)
    rewrite_from(5, with_data(stored_bodies()[5], n=555))
    _delete_checkpoints_and_tree()

    with pytest.raises(ForkAlarm, match="does not extend published note") as alarm:
        checkpoint_create()
    assert published is not None
    assert alarm.value.notes == (published.decode("utf-8"),)
    assert signed_sizes() == []
    assert publish_dir.read(320) is None

    # The control: without that copy, nothing in the database contradicts the rewrite, and
    # the honest key signs it. Only a checkpoint held elsewhere (an export, a witness) stops
    # someone who controls both the database and the checkpointer's disk.
    shutil.rmtree(publish_dir.path)
    assert checkpoint_create().created


def test_a_tree_node_that_contradicts_the_records_is_refused(
    signing_key: Signer, publish_dir: PublishDir
) -> None:
    grow(300)
    checkpoint_create()
    grow(300)
    rewrite_from(5, with_data(stored_bodies()[5], n=555))
    with triggers_bypassed() as cursor:
        cursor.execute("DELETE FROM audit_checkpoint")
    shutil.rmtree(publish_dir.path)

    with pytest.raises(ForkAlarm, match="the stored tree does not match the records"):
        checkpoint_create()
    assert signed_sizes() == []


@pytest.mark.parametrize("rows", ["kept", "deleted"])
def test_a_log_truncated_below_a_checkpoint_is_refused(
    signing_key: Signer, publish_dir: PublishDir, rows: str
) -> None:
    grow(10)
    checkpoint_create()
    for seq in (9, 8, 7):
        delete(seq)
    set_head(size=7, tip=stored()[-1][2])
    if rows == "deleted":
        _delete_checkpoints_and_tree()
    grow(1)  # appends continue at seq 7

    with pytest.raises(TruncationAlarm, match="covers 10 records, the log holds 8"):
        checkpoint_create()


def test_a_different_root_already_published_for_the_size_is_a_fork_alarm(
    signing_key: Signer, publish_dir: PublishDir
) -> None:
    grow(4)
    checkpoint_create()
    grow(3)
    forged = forge_note(signing_key, 7)
    publish_dir.path.joinpath("7.note").write_bytes(forged)

    with pytest.raises(ForkAlarm, match="has root") as alarm:
        checkpoint_create()
    assert alarm.value.notes == (forged.decode("utf-8"),)
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("audit_checkpoint", stdout=io.StringIO(), stderr=err)
    assert exit_.value.code == 2
    assert forged.decode("utf-8") in err.getvalue()
    assert signed_sizes() == [4]
    assert publish_dir.read(7) == forged  # never replaced


def test_the_command_exits_2_and_prints_both_notes_on_a_fork(
    signing_key: Signer, publish_dir: PublishDir
) -> None:
    """The stored checkpoint and the published note of the same size disagree."""
    grow(4)
    real = checkpoint_create().checkpoint
    assert real is not None
    forged = forge_note(signing_key, 4)
    replace_file(publish_dir.note_path(4), forged)
    grow(2)

    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("audit_checkpoint", stdout=out, stderr=err)
    assert exit_.value.code == 2
    assert "ForkAlarm" in err.getvalue()
    assert real.note in err.getvalue()
    assert forged.decode("utf-8") in err.getvalue()
    assert signed_sizes() == [4]


def test_a_stored_checkpoint_signed_by_an_unknown_key_is_refused(
    signing_key: Signer, tmp_path: Path
) -> None:
    grow(6)
    _, stranger = make_key(tmp_path, "warden.test")  # same name, another key
    root = merkle.root(leaves())
    Checkpoint.objects.create(
        log=origin(),
        size=6,
        root=root.hex(),
        note=forge_note(stranger, 6, root).decode("utf-8"),
        key_names=["warden.test"],
    )
    grow(1)
    with pytest.raises(IntegrityAlarm, match="stored checkpoint 6 does not verify"):
        checkpoint_create()


def test_notes_signed_by_a_retired_key_need_its_verification_key(
    settings: Any, tmp_path: Path
) -> None:
    old_path, old = make_key(tmp_path, "warden.test")
    new_path, _ = make_key(tmp_path, "warden.test/2027")
    settings.AUDIT_SIGNING_KEY_AUTOGENERATE = False
    settings.AUDIT_SIGNING_KEY_FILE = [str(old_path)]
    settings.AUDIT_VERIFICATION_KEYS = []
    grow(2)
    checkpoint_create()
    grow(1)
    settings.AUDIT_SIGNING_KEY_FILE = [str(new_path)]  # the old key dropped without overlap

    with pytest.raises(IntegrityAlarm, match=r"E_NO_TRUSTED_SIG.*AUDIT_VERIFICATION_KEYS"):
        checkpoint_create()
    settings.AUDIT_VERIFICATION_KEYS = [old.verifier().key_string()]
    assert checkpoint_create().created


def test_a_publish_dir_of_another_log_is_refused(
    signing_key: Signer, publish_dir: PublishDir
) -> None:
    grow(2)
    checkpoint_create()
    other = sign_checkpoint(CheckpointText("warden.test/other", 2, b"\x01" * 32), [signing_key])
    replace_file(publish_dir.path / "latest.note", other)
    grow(1)
    with pytest.raises(CheckpointRefused, match=re.escape("not 'warden.test/test'")):
        checkpoint_create()


def test_a_note_published_but_not_stored_is_signed_again_identically(
    signing_key: Signer, publish_dir: PublishDir
) -> None:
    """What a checkpointer killed between publishing and committing leaves behind (the
    process-level version is in test_checkpoint_processes.py)."""
    grow(5)
    note = forge_note(signing_key, 5, merkle.root(leaves()))  # the real root
    publish_dir.publish(5, note)

    result = checkpoint_create()
    assert result.created
    assert result.checkpoint is not None
    assert result.checkpoint.note.encode("utf-8") == note
    assert publish_dir.read(5) == note


def test_a_stored_checkpoint_missing_from_the_publish_dir_is_published_again(
    signing_key: Signer, publish_dir: PublishDir
) -> None:
    grow(3)
    checkpoint = checkpoint_create().checkpoint
    assert checkpoint is not None
    shutil.rmtree(publish_dir.path)

    result = checkpoint_create()
    assert not result.created
    assert publish_dir.read(3) == checkpoint.note.encode("utf-8")
    assert (publish_dir.path / "latest.note").read_bytes() == checkpoint.note.encode("utf-8")


def test_a_published_note_is_never_replaced_and_latest_only_moves_forward(
    signing_key: Signer, publish_dir: PublishDir
) -> None:
    five, seven = forge_note(signing_key, 5), forge_note(signing_key, 7)
    publish_dir.publish(7, seven)
    publish_dir.publish(5, five)
    assert (publish_dir.path / "latest.note").read_bytes() == seven
    publish_dir.publish(5, five)  # the same bytes again: accepted
    with pytest.raises(PublishConflict):
        publish_dir.publish(5, forge_note(signing_key, 5, b"\x02" * 32))
    assert publish_dir.read(5) == five
    assert {p.name for p in publish_dir.path.iterdir()} == {"5.note", "7.note", "latest.note"}


def test_latest_note_is_a_file_of_its_own(signing_key: Signer, publish_dir: PublishDir) -> None:
    grow(3)
    checkpoint_create()
    latest = publish_dir.path / "latest.note"
    assert not latest.samefile(publish_dir.note_path(3))
    assert oct(latest.stat().st_mode & 0o777) == oct(0o644)


def test_checkpoint_if_due_signs_after_the_interval_or_enough_records(
    signing_key: Signer, settings: Any
) -> None:
    settings.AUDIT_CHECKPOINT_INTERVAL_SECONDS = 60
    settings.AUDIT_CHECKPOINT_EVERY_RECORDS = 5
    assert checkpoint_if_due.apply().get() == {"created": False, "size": None}  # empty log

    grow(2)
    assert checkpoint_if_due.apply().get() == {"created": True, "size": 2}  # the first one

    grow(2)
    assert not checkpoint_due()
    assert checkpoint_if_due.apply().get() == {"created": False, "size": None}
    assert checkpoint_due(now=timezone.now() + dt.timedelta(seconds=61))

    grow(3)  # 5 records behind the checkpoint of size 2
    assert checkpoint_if_due.apply().get() == {"created": True, "size": 7}
    assert not checkpoint_due(now=timezone.now() + dt.timedelta(hours=1))  # nothing new


def test_beat_runs_the_checkpointer_task_every_10_seconds() -> None:
    from governance.celery import app

    entry = app.conf.beat_schedule["audit-checkpoint-if-due"]
    assert (entry["task"], entry["schedule"]) == ("audit.tasks.checkpoint_if_due", 10.0)
    app.loader.import_default_modules()
    assert "audit.tasks.checkpoint_if_due" in app.tasks


def test_a_rotation_is_recorded_and_overlap_notes_carry_both_signatures(
    settings: Any, tmp_path: Path
) -> None:
    old_path, old = make_key(tmp_path, "warden.test")
    new_path, new = make_key(tmp_path, "warden.test/2027")
    settings.AUDIT_SIGNING_KEY_AUTOGENERATE = False
    settings.AUDIT_VERIFICATION_KEYS = []
    settings.AUDIT_SIGNING_KEY_FILE = [str(old_path)]
    grow(3)
    checkpoint_create()

    settings.AUDIT_SIGNING_KEY_FILE = [str(old_path), str(new_path)]
    out = io.StringIO()
    call_command(
        "audit_rotate_key", "--new-key-file", str(new_path), "--reason", "yearly", stdout=out
    )

    record = AuditRecord.objects.get(action="audit.key_rotated")
    body = json.loads(record.body)
    assert body["object"]["id"] == "warden.test/2027"
    assert body["data"] == {
        "old_key_names": ["warden.test"],
        "new_key_name": "warden.test/2027",
        "old_verifier_keys": [old.verifier().key_string()],
        "new_verifier_key": new.verifier().key_string(),
    }
    assert body["reason"] == "yearly"
    checkpoint = latest_checkpoint()
    assert checkpoint is not None
    assert checkpoint.size == record.seq + 1  # the rotation record is anchored at once
    assert checkpoint.key_names == ["warden.test", "warden.test/2027"]
    assert f"checkpoint {checkpoint.size} signed by warden.test, warden.test/2027" in out.getvalue()
    for only in (old, new):  # each key alone verifies an overlap note
        open_checkpoint(checkpoint.note.encode("utf-8"), [only.verifier()])

    grow(1)
    overlap = checkpoint_create().checkpoint
    assert overlap is not None
    assert overlap.key_names == ["warden.test", "warden.test/2027"]

    # The overlap ends: the old file goes, its verification key stays trusted.
    settings.AUDIT_SIGNING_KEY_FILE = [str(new_path)]
    settings.AUDIT_VERIFICATION_KEYS = [old.verifier().key_string()]
    grow(1)
    after = checkpoint_create().checkpoint
    assert after is not None
    assert after.key_names == ["warden.test/2027"]
    with pytest.raises(NoteError, match="E_NO_TRUSTED_SIG"):
        open_checkpoint(after.note.encode("utf-8"), [old.verifier()])


def test_a_rotation_needs_a_configured_new_key_with_a_new_name(
    settings: Any, tmp_path: Path
) -> None:
    old_path, _ = make_key(tmp_path, "warden.test")
    new_path, _ = make_key(tmp_path, "warden.test/2027")
    same_name_path, _ = make_key(tmp_path / "again", "warden.test")
    settings.AUDIT_SIGNING_KEY_AUTOGENERATE = False
    settings.AUDIT_VERIFICATION_KEYS = []
    settings.AUDIT_SIGNING_KEY_FILE = [str(old_path)]
    grow(1)

    with pytest.raises(CommandError, match="is not in AUDIT_SIGNING_KEY_FILE"):
        call_command("audit_rotate_key", "--new-key-file", str(new_path))
    settings.AUDIT_SIGNING_KEY_FILE = [str(new_path)]
    with pytest.raises(CommandError, match="keep the old key"):
        call_command("audit_rotate_key", "--new-key-file", str(new_path))
    settings.AUDIT_SIGNING_KEY_FILE = [str(old_path), str(same_name_path)]
    with pytest.raises(CommandError, match=re.escape("also named 'warden.test'")):
        call_command("audit_rotate_key", "--new-key-file", str(same_name_path))
    assert not AuditRecord.objects.filter(action="audit.key_rotated").exists()

    settings.AUDIT_SIGNING_KEY_FILE = [str(old_path), str(new_path)]
    call_command("audit_rotate_key", "--new-key-file", str(new_path), stdout=io.StringIO())
    with pytest.raises(CommandError, match="already recorded"):
        call_command("audit_rotate_key", "--new-key-file", str(new_path))
    assert AuditRecord.objects.filter(action="audit.key_rotated").count() == 1


def test_the_command_prints_size_root_and_note(signing_key: Signer) -> None:
    grow(3)
    out = io.StringIO()
    call_command("audit_checkpoint", stdout=out)
    checkpoint = latest_checkpoint()
    assert checkpoint is not None
    assert out.getvalue() == (
        f"signed the log at size 3\nsize 3\nroot {checkpoint.root}\n\n{checkpoint.note}"
    )


def test_the_command_without_a_key_is_a_configuration_error(settings: Any) -> None:
    settings.AUDIT_SIGNING_KEY_FILE = []
    grow(1)
    with pytest.raises(CommandError, match="no checkpoint signing key"):
        call_command("audit_checkpoint")

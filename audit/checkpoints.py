"""The checkpointer: signs C2SP checkpoints of the log (AUDIT_SPEC.md section 5).

``checkpoint_create`` signs the log at its current size, after proving that the new tree
extends every checkpoint already signed, so that the honest key never signs a rewritten
history:

1. the latest checkpoint in the database and the latest note in the publish directory (the
   checkpointer's own copy, outside the database) must verify with the trusted keys, must not
   cover more records than the log holds (``TruncationAlarm``), and must agree with each
   other and with any other copy of the same size (``ForkAlarm``);
2. the last record the stored checkpoint covers must be included in its signed root, and
   every record after it is re-hashed: canonical bytes, seq, chain from that record, stored
   leaf column (``IntegrityAlarm``);
3. the tree (``audit.tree``: cached nodes, extended with the new records, every recomputed
   node compared with its cached copy) must be consistent with both checkpoints
   (RFC 9162 consistency proofs; ``ForkAlarm`` otherwise).

Only then is the note signed (with every configured key), stored with the new tree nodes,
and published as ``<size>.note`` and ``latest.note``. The slow part (steps 1-3) runs without
any lock; the short commit then takes the checkpointer lock (``pg_advisory_xact_lock`` on
PostgreSQL, SQLite's ``BEGIN IMMEDIATE`` write lock), re-reads the latest checkpoint and
starts over if another checkpointer moved it, and relies on ``UNIQUE(log, size)`` as the
last word. No network call happens under the lock.

Ed25519 is deterministic: re-signing after a crash gives the identical note, and a
``<size>.note`` already published with the same root is accepted as it is. Checkpoints are
not audit records (each would make the next checkpoint due); a key rotation is one
(``signing_key_rotate``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.utils import timezone

from audit import alerts, keys
from audit.actions import AuditAction
from audit.merkle import MerkleStore, verify_consistency, verify_inclusion
from audit.models import AuditRecord, Checkpoint, LogHead
from audit.notes import Checkpoint as CheckpointText
from audit.notes import NoteError, Signer, Verifier, open_checkpoint, sign_checkpoint
from audit.publication import PublishConflict, PublishDir
from audit.services import Subject, audit_record
from audit.tree import save_nodes, tree_store
from audit.verifier import ChainVerifier, leaf_hash
from core.actors import SYSTEM_ACTOR

logger = logging.getLogger(__name__)

GENESIS_PREV = "0" * 64
_CHUNK = 20_000
_ATTEMPTS = 5
_NO_GROWTH = "nothing to sign: the log has not grown"


class CheckpointRefused(RuntimeError):
    """The checkpointer refused to sign; nothing was signed, stored or published.

    ``notes`` holds the signed notes that show the problem (for a fork: the one already
    signed for the size), to be printed beside the message.
    """

    def __init__(self, message: str, *, notes: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.notes = tuple(notes)


class IntegrityAlarm(CheckpointRefused):
    """Records, tree nodes or checkpoints do not verify: changed behind the log's back."""


class ForkAlarm(IntegrityAlarm):
    """A second, different root for a size already signed, or a tree that does not extend a
    signed checkpoint (history rewritten, or an old backup restored and appended to)."""


class TruncationAlarm(IntegrityAlarm):
    """A signed checkpoint covers more records than the log now holds."""


@dataclass(frozen=True)
class CheckpointResult:
    """What ``checkpoint_create`` did: ``created`` when this call stored a new checkpoint;
    ``checkpoint`` is the log's latest checkpoint afterwards (None while the log is empty)."""

    created: bool
    checkpoint: Checkpoint | None
    detail: str


@dataclass(frozen=True)
class _Anchor:
    """A verified checkpoint: where it came from, its size and root, its exact note."""

    source: str
    size: int
    root: bytes
    note: str


@dataclass(frozen=True)
class _Plan:
    """Everything the short, locked commit needs."""

    base_size: int
    size: int
    root: bytes
    note: str | None  # None: nothing new to sign (the log has not grown)
    key_names: tuple[str, ...]
    nodes: list[tuple[int, int, bytes]]
    republish: _Anchor | None
    store: MerkleStore


class _Raced(Exception):
    """The stored checkpoints changed in a way the preparation cannot build on: start over."""


def _alarm(error: CheckpointRefused) -> CheckpointRefused:
    """Log an alarm at CRITICAL (with the notes that show it) and hand it back to raise."""
    logger.critical(
        "audit checkpoint refused (%s): %s%s",
        type(error).__name__,
        error.message,
        "".join(f"\n{note}" for note in error.notes),
    )
    return error


def _origin() -> str:
    return str(settings.AUDIT_LOG_ORIGIN)


def _publish_dir() -> PublishDir:
    return PublishDir(Path(settings.AUDIT_CHECKPOINT_PUBLISH_DIR))


def _head_size(origin: str, using: str) -> int:
    size = LogHead.objects.using(using).filter(log=origin).values_list("size", flat=True).first()
    return int(size or 0)


def latest_checkpoint(*, using: str = DEFAULT_DB_ALIAS) -> Checkpoint | None:
    """The largest checkpoint stored for this installation's log."""
    return Checkpoint.objects.using(using).filter(log=_origin()).order_by("-size").first()


def _open(note: bytes, source: str, origin: str, verifiers: Sequence[Verifier]) -> _Anchor:
    try:
        parsed, _ = open_checkpoint(note, verifiers)
    except NoteError as exc:
        hint = " (keep retired keys in AUDIT_VERIFICATION_KEYS)" if exc.code != "E_NOTE" else ""
        raise _alarm(IntegrityAlarm(f"{source} does not verify: {exc}{hint}")) from exc
    if parsed.origin != origin:
        raise _alarm(
            CheckpointRefused(f"{source} is a checkpoint of {parsed.origin!r}, not {origin!r}")
        )
    return _Anchor(source, parsed.size, parsed.root, note.decode("utf-8"))


def _stored_anchor(row: Checkpoint, origin: str, verifiers: Sequence[Verifier]) -> _Anchor:
    anchor = _open(row.note.encode("utf-8"), f"stored checkpoint {row.size}", origin, verifiers)
    if anchor.size != row.size or anchor.root.hex() != row.root:
        raise _alarm(
            IntegrityAlarm(
                f"stored checkpoint {row.size}: its columns disagree with its signed note",
                notes=[row.note],
            )
        )
    return anchor


def _check_same_size(first: _Anchor, second: _Anchor) -> None:
    if first.size == second.size and first.root != second.root:
        raise _alarm(
            ForkAlarm(
                f"two different roots for size {first.size}: {first.source} has "
                f"{first.root.hex()}, {second.source} has {second.root.hex()}",
                notes=[first.note, second.note],
            )
        )


def _rows(origin: str, start: int, end: int, using: str) -> Iterator[tuple[int, str, bytes]]:
    """``(seq, leaf column, body)`` of records ``start .. end - 1`` in seq order, in chunks."""
    position = start
    with connections[using].cursor() as cursor:
        while position < end:
            cursor.execute(
                "SELECT seq, leaf, body FROM audit_auditrecord WHERE log = %s AND seq >= %s "
                "AND seq < %s ORDER BY seq LIMIT %s",
                [origin, position, end, _CHUNK],
            )
            rows = cursor.fetchall()
            if not rows:
                return
            for seq, leaf, body in rows:
                yield seq, leaf, body.encode("utf-8") if isinstance(body, str) else bytes(body)
            position = rows[-1][0] + 1


def _rehash(origin: str, start: int, end: int, tip: str, using: str) -> None:
    """Re-check records ``start .. end - 1``: canonical, contiguous, chained from ``tip``, and
    their leaf column equal to the hash of their body. Raises ``IntegrityAlarm``."""
    verifier = ChainVerifier(origin, start_seq=start, start_prev=tip)
    problems: list[str] = []
    expected = start
    for seq, leaf_column, body in _rows(origin, start, end, using):
        if verifier.feed(body, position=seq) != leaf_column:
            problems.append(f"E_LEAF at seq {seq}: the stored leaf hash does not match the body")
        expected = seq + 1
    if expected != end or verifier.report.records != end - start:
        problems.append(
            f"E_TRUNCATED: the log head says {end} records, seq {start}..{end - 1} are not all "
            "stored"
        )
    problems.extend(
        f"{finding.code} at seq {finding.seq}: {finding.message}"
        for finding in verifier.report.findings
        if finding.is_error
    )
    if problems:
        raise _alarm(
            IntegrityAlarm(
                f"{len(problems)} problem(s) in the records since the last checkpoint; first: "
                f"{problems[0]}"
            )
        )


def _authenticated_tip(origin: str, anchor: _Anchor, store: MerkleStore, using: str) -> str:
    """The leaf hash of the last record ``anchor`` covers, proven to be in its signed tree."""
    row = (
        AuditRecord.objects.using(using)
        .filter(log=origin, seq=anchor.size - 1)
        .values_list("leaf", "body")
        .first()
    )
    if row is None:
        raise _alarm(TruncationAlarm(f"record {anchor.size - 1} of {anchor.source} is missing"))
    leaf_column, body = row
    try:
        proof = store.inclusion_proof(anchor.size - 1, anchor.size)
        included = verify_inclusion(
            bytes.fromhex(leaf_column), anchor.size - 1, anchor.size, proof, anchor.root
        )
    except ValueError:
        included = False
    if not included or leaf_hash(body.encode("utf-8")) != leaf_column:
        raise _alarm(
            ForkAlarm(
                f"record {anchor.size - 1} is not the one {anchor.source} signed: the log was "
                "rewritten",
                notes=[anchor.note],
            )
        )
    return str(leaf_column)


def _prepare(
    origin: str,
    using: str,
    signers: Sequence[Signer],
    verifiers: Sequence[Verifier],
    publish: PublishDir,
) -> _Plan:
    """Steps 1-3 of the module docstring, without a lock; raises the alarms."""
    stored_row = Checkpoint.objects.using(using).filter(log=origin).order_by("-size").first()
    stored = _stored_anchor(stored_row, origin, verifiers) if stored_row else None
    found = publish.latest()
    published = _open(found[1], f"published note {found[0]}", origin, verifiers) if found else None
    # The log's size is read after the checkpoints: another checkpointer may sign a larger
    # size meanwhile, of records committed before it, so a size read first could be smaller
    # than an honest checkpoint and look like a truncation.
    size = _head_size(origin, using)
    anchors = [anchor for anchor in (stored, published) if anchor is not None]

    for anchor in anchors:
        if anchor.size > size:
            raise _alarm(
                TruncationAlarm(
                    f"{anchor.source} covers {anchor.size} records, the log holds {size}",
                    notes=[anchor.note],
                )
            )
    if published is not None:
        same_size = Checkpoint.objects.using(using).filter(log=origin, size=published.size).first()
        if same_size is not None:
            _check_same_size(_stored_anchor(same_size, origin, verifiers), published)
    if stored is not None:
        stored_copy = publish.read(stored.size)
        if stored_copy is not None:
            _check_same_size(
                stored,
                _open(
                    stored_copy,
                    f"published note {publish.note_path(stored.size)}",
                    origin,
                    verifiers,
                ),
            )
    elif published is not None:
        logger.warning(
            "no checkpoint in the database, but %s covers %d records: checking against it",
            published.source,
            published.size,
        )

    base = stored.size if stored else 0
    store = tree_store(origin, base, using)
    tip = _authenticated_tip(origin, stored, store, using) if stored else GENESIS_PREV
    _rehash(origin, base, size, tip, using)
    try:
        nodes = store.extend(size)
        root = store.root(size)
        proofs = {a.size: store.consistency_proof(a.size, size) for a in anchors if a.size < size}
        nodes += store.take_new_nodes()
    except ValueError as exc:
        raise _alarm(
            ForkAlarm(
                f"the stored tree does not match the records ({exc}): the log was rewritten",
                notes=[a.note for a in anchors],
            )
        ) from exc
    for anchor in anchors:
        if anchor.size == size:
            consistent = anchor.root == root
        else:
            consistent = verify_consistency(
                anchor.size, size, anchor.root, root, proofs[anchor.size]
            )
        if not consistent:
            raise _alarm(
                ForkAlarm(
                    f"the log's tree of size {size} (root {root.hex()}) does not extend "
                    f"{anchor.source} (size {anchor.size}, root {anchor.root.hex()}): the log "
                    "was rewritten or forked",
                    notes=[anchor.note],
                )
            )

    if size == base:
        behind = published is None or published.size < base
        return _Plan(base, size, root, None, (), nodes, stored if behind else None, store)

    signed = sign_checkpoint(CheckpointText(origin, size, root), signers)
    note, key_names = signed.decode("utf-8"), tuple(signer.name for signer in signers)
    published_copy = publish.read(size)
    if published_copy is not None and published_copy != signed:
        copy = _open(published_copy, f"published note {publish.note_path(size)}", origin, verifiers)
        if copy.size != size or copy.root != root:
            raise _alarm(
                ForkAlarm(
                    f"{copy.source} has root {copy.root.hex()}, the log's tree of size {size} "
                    f"has {root.hex()}",
                    notes=[copy.note],
                )
            )
        # The same root signed by another set of keys (a run that stopped before committing,
        # then a key change): keep the published note, never replace it.
        note, key_names = copy.note, open_checkpoint(published_copy, verifiers)[1].key_names
    return _Plan(base, size, root, note, key_names, nodes, None, store)


def _lock(using: str, origin: str) -> None:
    """Take the checkpointer lock for the rest of the transaction (PostgreSQL); on SQLite
    the ``BEGIN IMMEDIATE`` of the transaction already holds the database's write lock."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        digest = hashlib.sha256(f"warden-audit-checkpoint\n{origin}".encode()).digest()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest[:8], "big", signed=True)]
            )


def _overtaken(
    plan: _Plan, latest: Checkpoint, origin: str, using: str, verifiers: Sequence[Verifier]
) -> CheckpointResult | None:
    """Another checkpointer committed ``latest`` after this one prepared. Returns the result
    when it covers this plan's size already; otherwise checks that this plan's tree extends
    it (ForkAlarm if not), so that the plan can still be committed."""
    if latest.size >= plan.size:
        same = Checkpoint.objects.using(using).filter(log=origin, size=plan.size).first()
        if same is not None and same.root != plan.root.hex():
            raise _alarm(
                ForkAlarm(
                    f"another checkpointer signed size {plan.size} with root {same.root}, this "
                    f"one computed {plan.root.hex()}",
                    notes=[same.note],
                )
            )
        return CheckpointResult(False, latest, "another checkpointer signed this size already")
    anchor = _stored_anchor(latest, origin, verifiers)
    try:
        proof = plan.store.consistency_proof(anchor.size, plan.size)
    except ValueError as exc:
        raise _Raced from exc
    if not verify_consistency(anchor.size, plan.size, anchor.root, plan.root, proof):
        raise _alarm(
            ForkAlarm(
                f"another checkpointer signed size {anchor.size} with a root this one's tree of "
                f"size {plan.size} does not extend",
                notes=[anchor.note],
            )
        )
    return None


def _commit(
    plan: _Plan, origin: str, using: str, publish: PublishDir, verifiers: Sequence[Verifier]
) -> CheckpointResult:
    with transaction.atomic(using=using, durable=True):
        _lock(using, origin)
        latest = Checkpoint.objects.using(using).filter(log=origin).order_by("-size").first()
        latest_size = latest.size if latest else 0
        if latest_size < plan.base_size:
            raise _Raced  # checkpoints disappeared meanwhile: look again
        if latest is not None and latest_size > plan.base_size:
            done = _overtaken(plan, latest, origin, using, verifiers)
            if done is not None:
                return done
        if plan.note is None:
            if plan.republish is not None:
                publish.publish(plan.republish.size, plan.republish.note.encode("utf-8"))
            return CheckpointResult(False, latest, _NO_GROWTH)
        save_nodes(origin, [*plan.nodes, *plan.store.take_new_nodes()], using)
        checkpoint = Checkpoint(
            log=origin,
            size=plan.size,
            root=plan.root.hex(),
            note=plan.note,
            key_names=list(plan.key_names),
        )
        checkpoint.save(using=using)
        # Published before the commit: a crash in between leaves a note that the next run
        # signs again byte for byte (or finds already published) and stores.
        try:
            publish.publish(plan.size, plan.note.encode("utf-8"))
        except PublishConflict as exc:
            raise _alarm(
                ForkAlarm(
                    f"{exc.path} appeared with other content while signing size {plan.size} "
                    f"(root {plan.root.hex()})",
                    notes=[exc.existing.decode("utf-8", "replace")],
                )
            ) from exc
    return CheckpointResult(True, checkpoint, f"signed the log at size {plan.size}")


def _alarm_announce(error: IntegrityAlarm, using: str) -> None:
    """Announce an alarm (``audit.checkpoint_alarm``) once per kind of alarm and stored
    checkpoint: the beat runs the checkpointer every few seconds, and an alarm persists until
    someone acts. Not an audit record: appending would move the log the alarm is about."""
    kind = type(error).__name__
    last = latest_checkpoint(using=using)
    size = last.size if last is not None else 0
    with transaction.atomic(using=using):
        alerts.alert_raise(
            event=alerts.CHECKPOINT_ALARM,
            data={
                "kind": kind,
                "message": error.message,
                "notes": list(error.notes),
                "log": _origin(),
                "checkpoint_size": size,
            },
            key=f"{_origin()}:{kind}:{size}",
        )


def checkpoint_create(
    *, using: str = DEFAULT_DB_ALIAS, signers: Sequence[Signer] | None = None
) -> CheckpointResult:
    """Sign, store and publish a checkpoint of the log at its current size, if it grew (see
    ``_checkpoint_create``). An alarm is also alerted (``audit.checkpoint_alarm``, once per
    kind and stored checkpoint)."""
    try:
        return _checkpoint_create(using=using, signers=signers)
    except IntegrityAlarm as error:
        _alarm_announce(error, using)
        raise


def _checkpoint_create(
    *, using: str = DEFAULT_DB_ALIAS, signers: Sequence[Signer] | None = None
) -> CheckpointResult:
    """Sign, store and publish a checkpoint of the log at its current size, if it grew.

    ``signers`` defaults to every configured signing key. Raises ``ForkAlarm``,
    ``TruncationAlarm`` or ``IntegrityAlarm`` (logged at CRITICAL; nothing signed) when the
    log or a checkpoint does not verify, ``CheckpointRefused`` for a publish directory of
    another log, and ``keys.KeyConfigurationError`` without a usable key. Idempotent: with
    nothing new it stores nothing (re-publishing the latest note if the publish directory
    lacks it); when another checkpointer wins the same size, its checkpoint is returned.
    """
    origin = _origin()
    chosen = list(signers) if signers is not None else keys.signers()
    if not chosen:
        raise keys.KeyConfigurationError("no checkpoint signing key")
    verifiers = keys.trusted_verifiers(extra=chosen)
    publish = _publish_dir()
    for _ in range(_ATTEMPTS):
        plan = _prepare(origin, using, chosen, verifiers, publish)
        if plan.size == 0:
            return CheckpointResult(False, None, "nothing to sign: the log is empty")
        if plan.note is None and plan.republish is None:
            return CheckpointResult(False, latest_checkpoint(using=using), _NO_GROWTH)
        try:
            return _commit(plan, origin, using, publish, verifiers)
        except (_Raced, IntegrityError):
            # UNIQUE(log, size) refused a checkpoint signed without the lock, or the stored
            # checkpoints went back: prepare again from what is stored now.
            continue
    raise CheckpointRefused(f"gave up after {_ATTEMPTS} attempts racing other checkpointers")


def checkpoint_due(*, using: str = DEFAULT_DB_ALIAS, now: dt.datetime | None = None) -> bool:
    """Whether the log holds records no checkpoint covers and the last checkpoint is at least
    ``AUDIT_CHECKPOINT_INTERVAL_SECONDS`` old or ``AUDIT_CHECKPOINT_EVERY_RECORDS`` behind."""
    origin = _origin()
    size = _head_size(origin, using)
    last = latest_checkpoint(using=using)
    if size == 0 or (last is not None and last.size >= size):
        return False
    if last is None:
        return True
    age = (now or timezone.now()) - last.created_at
    return (
        size - last.size >= settings.AUDIT_CHECKPOINT_EVERY_RECORDS
        or age.total_seconds() >= settings.AUDIT_CHECKPOINT_INTERVAL_SECONDS
    )


KEY_ROTATED = AuditAction.AUDIT_KEY_ROTATED


def signing_key_rotate(
    *, new_key_file: Path, reason: str | None = None, using: str = DEFAULT_DB_ALIAS
) -> tuple[AuditRecord, CheckpointResult]:
    """Record that ``new_key_file``'s key takes over from the other configured signing keys,
    then sign a checkpoint covering that record with all of them (the overlap period).

    The new key must already be one of ``AUDIT_SIGNING_KEY_FILE`` (with the old ones still
    there) and have a new name; a rotation to it must not be recorded already. Raises
    ``keys.KeyConfigurationError`` otherwise. Afterwards, once every verifier trusts the new
    key, remove the old key files from ``AUDIT_SIGNING_KEY_FILE`` and keep their verification
    keys in ``AUDIT_VERIFICATION_KEYS``.
    """
    new = keys.read_signer_file(new_key_file)
    configured = keys.signers()
    if (new.name, new.key_id) not in {(s.name, s.key_id) for s in configured}:
        raise keys.KeyConfigurationError(
            f"{new_key_file} is not in AUDIT_SIGNING_KEY_FILE: add it after the current key "
            "(comma-separated) so that notes carry both signatures, then rotate"
        )
    old = [signer for signer in configured if signer.name != new.name]
    if len(old) != len(configured) - 1:
        raise keys.KeyConfigurationError(f"another configured key is also named {new.name!r}")
    if not old:
        raise keys.KeyConfigurationError(
            "no other signing key is configured: keep the old key in AUDIT_SIGNING_KEY_FILE "
            "during the overlap"
        )
    origin = _origin()
    records = AuditRecord.objects.using(using).filter(
        log=origin, action=KEY_ROTATED, object_id=new.name
    )
    if records.exists():
        raise keys.KeyConfigurationError(f"the rotation to {new.name!r} is already recorded")
    with transaction.atomic(using=using, durable=True):
        record = audit_record(
            action=KEY_ROTATED,
            actor=SYSTEM_ACTOR,
            object=Subject(
                type="audit_signing_key", id=new.name, label=new.verifier().key_string()
            ),
            data={
                "old_key_names": [signer.name for signer in old],
                "new_key_name": new.name,
                "old_verifier_keys": [signer.verifier().key_string() for signer in old],
                "new_verifier_key": new.verifier().key_string(),
            },
            reason=reason,
            using=using,
        )
    return record, checkpoint_create(using=using, signers=configured)

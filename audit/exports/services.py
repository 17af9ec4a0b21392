"""Writing export bundles and running the export jobs of the API, each recorded in the log
(``docs/audit-exports.md`` tells the steps)."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import getpass
import hashlib
import json
import logging
import os
import tempfile
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils import timezone

from audit import keys
from audit.actions import AuditAction
from audit.canonical import format_timestamp
from audit.checkpoints import CheckpointRefused, IntegrityAlarm, checkpoint_create
from audit.exports.format import (
    CONSISTENCY,
    FORMAT,
    INCLUSION,
    MANIFEST,
    RECORDS,
    Bundle,
    BundleWriter,
    ExportFilter,
    export_filter,
    json_line,
    statement,
)
from audit.exports.selectors import (
    EXPORT_PERMISSION,
    check_request,
    checkpoint_notes,
    export_permitted,
    log_origin,
    records_matching,
)
from audit.merkle import verify_consistency, verify_inclusion
from audit.models import AuditExport, AuditExportStatus, AuditRecord, Checkpoint
from audit.services import Subject, audit_record
from audit.tree import prove, tree_store
from core.actors import Actor
from core.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from core.tasks import send_on_commit

# The task that runs the export job, by its registered name (its module imports this one).
EXPORT_BUNDLE = "audit.tasks.export_bundle"

if TYPE_CHECKING:
    from core.accounts.models import User

logger = logging.getLogger(__name__)

EXPORTED = AuditAction.AUDIT_EXPORTED
EXPORT_REQUESTED = AuditAction.AUDIT_EXPORT_REQUESTED
EXPORT_FAILED = AuditAction.AUDIT_EXPORT_FAILED
_BUNDLE_MODE = 0o640  # the whole log: not for every user of the machine
_COPY_CHUNK = 1 << 20
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


class ExportFailed(RuntimeError):
    """No bundle could be written: no signing key in this process, the checkpointer refused
    (``alarm``: a fork, a truncation, records that do not verify; ``notes`` show it), a proof
    that does not verify, or the file system failed. Nothing is recorded, no file is left."""

    def __init__(self, message: str, *, alarm: bool = False, notes: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.alarm = alarm
        self.notes = tuple(notes)


def _alarm(message: str) -> ExportFailed:
    """Log a proof that does not verify at CRITICAL, and hand back the error to raise."""
    logger.critical("audit export refused: %s", message)
    return ExportFailed(message, alarm=True)


def _checkpoint_first(using: str) -> Checkpoint:
    """Sign the log now (or take the latest checkpoint when it has not grown)."""
    try:
        result = checkpoint_create(using=using)
    except keys.KeyConfigurationError as exc:
        raise ExportFailed(
            f"cannot export without signing a checkpoint first: {exc} (exports run where the "
            "checkpointer's key is: the `checkpoints` queue)"
        ) from exc
    except CheckpointRefused as exc:
        raise ExportFailed(
            f"the checkpointer refused to sign, so nothing was exported: {exc.message}",
            alarm=isinstance(exc, IntegrityAlarm),
            notes=exc.notes,
        ) from exc
    if result.checkpoint is None:
        raise Conflict("the audit log is empty: there is nothing to export yet")
    return result.checkpoint


class _Prover:
    """Inclusion proofs in checkpoint ``size`` from the cached tree, each checked against the
    signed root; one store for the whole export (about ``2 * n / 256`` cached nodes)."""

    def __init__(self, origin: str, checkpoint: Checkpoint, using: str) -> None:
        self.size = checkpoint.size
        self.root = bytes.fromhex(checkpoint.root)
        self.store = tree_store(origin, checkpoint.size, using)

    def line(self, seq: int, leaf_hex: str) -> bytes:
        try:
            proof = self.store.inclusion_proof(seq, self.size)
            leaf = bytes.fromhex(leaf_hex)
        except ValueError as exc:
            message = f"inclusion proof of record {seq} in checkpoint {self.size}: {exc}"
            raise _alarm(message) from exc
        if not verify_inclusion(leaf, seq, self.size, proof, self.root):
            raise _alarm(
                f"record {seq} is not in checkpoint {self.size} as stored (the tree cache or "
                "the leaf column was changed)"
            )
        return json_line({"seq": seq, "size": self.size, "proof": [node.hex() for node in proof]})


def _consistency_line(origin: str, prior: Checkpoint, checkpoint: Checkpoint, using: str) -> bytes:
    try:
        proof = prove(origin, checkpoint.size, lambda s: s.consistency_proof(prior.size), using)
    except ValueError as exc:
        raise _alarm(f"consistency proof {prior.size} -> {checkpoint.size}: {exc}") from exc
    old_root, new_root = bytes.fromhex(prior.root), bytes.fromhex(checkpoint.root)
    if not verify_consistency(prior.size, checkpoint.size, old_root, new_root, proof):
        raise _alarm(f"checkpoints {prior.size} and {checkpoint.size} are not consistent")
    return json_line({"from": prior.size, "to": checkpoint.size, "proof": [n.hex() for n in proof]})


def _open_new(path: Path) -> IO[bytes]:
    """``path`` created for writing, mode 0640; ``Conflict`` if it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _BUNDLE_MODE)
    except FileExistsError:
        raise Conflict(f"{path} exists: an export never overwrites a file") from None
    return os.fdopen(fd, "wb")


def _sha256_of(path: Path) -> tuple[str, int]:
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
        return digest.hexdigest(), handle.tell()


def bundle_write(
    *,
    path: Path,
    actor: Actor,
    model: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    prior_size: int | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> Bundle:
    """Sign a checkpoint, then write the bundle at ``path`` (a new file; ``Conflict`` if it
    exists) exactly as ``docs/audit-bundle.md`` says: full without a filter, partial with one.

    ``actor`` is who exports (the manifest's ``exported_by``). Does not record the export:
    ``bundle_export`` and ``audit_export_run`` do, once the file is where it belongs.
    Raises ``InvalidInput`` / ``NotFound`` for a bad request (nothing signed),
    ``Conflict`` on an empty log, ``ExportFailed`` when no bundle can be written; the partial
    file is removed on any error. The steps are in ``docs/audit-exports.md``.
    """
    selection = export_filter(model=model, since=since, until=until)
    check_request(selection, prior_size, using)
    checkpoint = _checkpoint_first(using)
    origin = log_origin()
    prior = None
    if prior_size is not None:
        prior = Checkpoint.objects.using(using).get(log=origin, size=prior_size)
        if prior.size > checkpoint.size:  # checkpoints only grow; kept for clarity
            raise InvalidInput(f"prior_size {prior_size} is beyond checkpoint {checkpoint.size}")
    exported_at = timezone.now()
    handle = _open_new(path)
    try:
        with handle:
            written = _write_zip(
                handle,
                directory=path.parent,
                origin=origin,
                selection=selection,
                checkpoint=checkpoint,
                prior=prior,
                actor=actor,
                exported_at=exported_at,
                using=using,
            )
            handle.flush()
            os.fsync(handle.fileno())
        sha256, size_bytes = _sha256_of(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise
    return Bundle(
        path=path,
        selection=selection,
        checkpoint_size=checkpoint.size,
        checkpoint_root=checkpoint.root,
        prior_size=prior.size if prior else None,
        records=written.records,
        first_seq=written.first_seq,
        last_seq=written.last_seq,
        sha256=sha256,
        size_bytes=size_bytes,
        manifest=written.manifest,
    )


@dataclass(frozen=True)
class _Written:
    records: int
    first_seq: int | None
    last_seq: int | None
    manifest: dict[str, Any]


def _write_zip(
    handle: IO[bytes],
    *,
    directory: Path,
    origin: str,
    selection: ExportFilter,
    checkpoint: Checkpoint,
    prior: Checkpoint | None,
    actor: Actor,
    exported_at: dt.datetime,
    using: str,
) -> _Written:
    full = not selection.is_partial
    utc = exported_at.astimezone(dt.UTC)
    date_time = (utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second)
    records = 0
    first_seq: int | None = None
    last_seq: int | None = None
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        writer = BundleWriter(archive, date_time)
        # Proof lines wait in an unnamed file on the bundle's disk: one member at a time.
        with tempfile.TemporaryFile(dir=directory) as spool:
            prover = None if full else _Prover(origin, checkpoint, using)
            with writer.member(RECORDS, large=True) as out:
                for seq, leaf, body in records_matching(origin, checkpoint.size, selection, using):
                    out.write(body + b"\n")
                    if prover is not None:
                        spool.write(prover.line(seq, leaf))
                    records += 1
                    first_seq = seq if first_seq is None else first_seq
                    last_seq = seq
            if prover is not None:
                spool.seek(0)
                with writer.member(INCLUSION, large=True) as out:
                    while data := spool.read(_COPY_CHUNK):
                        out.write(data)
        notes = 0
        for size, note in checkpoint_notes(origin, checkpoint, prior, full, using):
            writer.put(f"checkpoints/{size}.note", note)
            notes += 1
        consistency = 0
        if prior is not None:
            writer.put(CONSISTENCY, _consistency_line(origin, prior, checkpoint, using))
            consistency = 1
        span = None if first_seq is None else {"first_seq": first_seq, "last_seq": last_seq}
        manifest = {
            "format": FORMAT,
            "origin": origin,
            "kind": selection.kind,
            "filter": selection.as_dict(),
            "range": span,
            "counts": {
                "records": records,
                "checkpoints": notes,
                "inclusion_proofs": 0 if full else records,
                "consistency_proofs": consistency,
            },
            "checkpoint": {"size": checkpoint.size, "root": checkpoint.root},
            "prior_size": prior.size if prior else None,
            "keys": keys.verification_key_lines(),
            "exported_at": format_timestamp(exported_at),
            "exported_by": {"type": actor.type, "id": actor.id, "name": actor.name},
            "statement": statement(selection, checkpoint.size, records),
            "files": dict(writer.files),
        }
        document = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        writer.put(MANIFEST, document.encode("utf-8"))
    return _Written(records, first_seq, last_seq, manifest)


def _export_subject(export_id: uuid.UUID, selection: ExportFilter) -> Subject:
    return Subject(
        type="audit_export",
        id=str(export_id),
        label=f"{selection.kind} export ({selection.describe()})",
    )


def _record_exported(
    *, bundle: Bundle, actor: Actor, export_id: uuid.UUID, file_name: str, using: str
) -> AuditRecord:
    """Record ``audit.exported``: who exported what, and the bundle's digest and size."""
    return audit_record(
        action=EXPORTED,
        actor=actor,
        object=_export_subject(export_id, bundle.selection),
        data={
            "kind": bundle.kind,
            "filter": bundle.selection.as_dict(),
            "checkpoint_size": bundle.checkpoint_size,
            "prior_size": bundle.prior_size,
            "records": bundle.records,
            "sha256": bundle.sha256,
            "bytes": bundle.size_bytes,
            "file": file_name,
        },
        using=using,
    )


def _link_new(source: Path, target: Path) -> None:
    """Give ``source`` the name ``target`` unless ``target`` exists (``Conflict``)."""
    try:
        os.link(source, target)
    except FileExistsError:
        raise Conflict(f"{target} exists: an export never overwrites a file") from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        # A file system without hard links: check, then rename (a race here can only
        # replace a file created in the last instant by someone else).
        if target.exists() or target.is_symlink():
            raise Conflict(f"{target} exists: an export never overwrites a file") from None
        os.rename(source, target)


def operator_actor() -> Actor:
    """The actor of a command run without ``--as``: the operating-system user, as a system
    actor (``auth`` ``cli``)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # a container user without a name
        name = f"uid-{os.getuid()}"
    return Actor(type="system", id=name, name=name, auth="cli")


def bundle_export(
    *,
    out: Path,
    actor: Actor,
    model: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    prior_size: int | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> tuple[Bundle, AuditRecord]:
    """Write a bundle to ``out`` and record it (``audit.exported``); the command line's export.

    The bundle is written to a temporary file next to ``out`` and then linked to its name, so
    ``out`` is either absent or complete, and never overwritten (``Conflict`` if it exists,
    before or after writing; ``InvalidInput`` if its directory does not exist). The record is
    appended once the file is in place; if that fails the file is removed again. Other errors
    as ``bundle_write``.
    """
    out = Path(out)
    if out.exists() or out.is_symlink():
        raise Conflict(f"{out} exists: an export never overwrites a file")
    if not out.parent.is_dir():
        raise InvalidInput(f"directory {out.parent} does not exist")
    export_id = uuid.uuid4()
    temporary = out.parent / f".{out.name}.{export_id.hex}.part"
    try:
        bundle = bundle_write(
            path=temporary,
            actor=actor,
            model=model,
            since=since,
            until=until,
            prior_size=prior_size,
            using=using,
        )
        _link_new(temporary, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    bundle = replace(bundle, path=out)
    try:
        with transaction.atomic(using=using, durable=True):
            record = _record_exported(
                bundle=bundle, actor=actor, export_id=export_id, file_name=out.name, using=using
            )
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            out.unlink()
        raise
    logger.info(
        "exported %s (%s, %d records, checkpoint %d, sha256 %s), recorded as seq %d",
        out,
        bundle.kind,
        bundle.records,
        bundle.checkpoint_size,
        bundle.sha256,
        record.seq,
    )
    return bundle, record


def audit_export_request(
    *,
    requested_by: User,
    actor: Actor,
    model: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    prior_size: int | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> AuditExport:
    """Create a queued export and record the request (``audit.export_requested``), in one
    transaction, and send ``audit.tasks.export_bundle`` once it commits: the API, the admin
    and commands enqueue alike.

    ``actor`` is how ``requested_by`` appears in the log (and, later, in the bundle's
    ``exported_by``). Raises ``Forbidden`` without ``audit.export_auditrecord``, and the
    request errors of ``bundle_write`` (``InvalidInput``, ``NotFound``) before writing
    anything.
    """
    if not export_permitted(requested_by):
        raise Forbidden(f"exporting the audit log needs the {EXPORT_PERMISSION} permission")
    selection = export_filter(model=model, since=since, until=until)
    check_request(selection, prior_size, using)
    with transaction.atomic(using=using, durable=True):
        export = AuditExport(
            requested_by=requested_by,
            actor=actor.as_record(),
            model_name=selection.model or "",
            since=selection.since,
            until=selection.until,
            prior_size=prior_size,
        )
        export.save(using=using)
        audit_record(
            action=EXPORT_REQUESTED,
            actor=actor,
            object=_export_subject(export.id, selection),
            data={
                "kind": selection.kind,
                "filter": selection.as_dict(),
                "prior_size": prior_size,
            },
            using=using,
        )
        send_on_commit(EXPORT_BUNDLE, str(export.id), using=using)
    return export


def _selection_of(export: AuditExport) -> ExportFilter:
    return ExportFilter(model=export.model_name or None, since=export.since, until=export.until)


def _export_fail(export: AuditExport, actor: Actor, message: str, using: str) -> AuditExport:
    """End a running export as failed and record ``audit.export_failed``."""
    with transaction.atomic(using=using, durable=True):
        locked = AuditExport.objects.using(using).select_for_update().get(pk=export.pk)
        if locked.status != AuditExportStatus.RUNNING:
            return locked  # another run of the same export ended it first
        locked.status = AuditExportStatus.FAILED
        locked.error = message
        locked.finished_at = timezone.now()
        locked.save(using=using, update_fields=["status", "error", "finished_at"])
        audit_record(
            action=EXPORT_FAILED,
            actor=actor,
            object=_export_subject(locked.id, _selection_of(locked)),
            data={"error": message[:2000]},
            using=using,
        )
    logger.warning("audit export %s failed: %s", export.id, message)
    return locked


def _export_finish(
    export: AuditExport, actor: Actor, bundle: Bundle, directory: Path, using: str
) -> AuditExport:
    """Move the bundle to ``<id>.zip``, mark the export done and record ``audit.exported``."""
    final = directory / f"{export.id}.zip"
    with transaction.atomic(using=using, durable=True):
        locked = AuditExport.objects.using(using).select_for_update().get(pk=export.pk)
        if locked.status != AuditExportStatus.RUNNING:
            return locked  # another run of the same export ended it first; keep its file
        # Replacing is safe: only an earlier run of this export, which never reached this
        # commit, can have left a file of this name.
        os.replace(bundle.path, final)
        locked.status = AuditExportStatus.DONE
        locked.error = ""
        locked.file_name = final.name
        locked.sha256 = bundle.sha256
        locked.size_bytes = bundle.size_bytes
        locked.record_count = bundle.records
        locked.checkpoint_size = bundle.checkpoint_size
        locked.finished_at = timezone.now()
        locked.save(using=using)
        _record_exported(
            bundle=replace(bundle, path=final),
            actor=actor,
            export_id=locked.id,
            file_name=final.name,
            using=using,
        )
    return locked


def audit_export_run(*, export_id: uuid.UUID | str, using: str = DEFAULT_DB_ALIAS) -> AuditExport:
    """Write the bundle of a requested export into ``AUDIT_EXPORT_DIR`` as ``<id>.zip`` and
    end the job: ``done`` with ``audit.exported``, or ``failed`` (the reason in ``error``)
    with ``audit.export_failed``.

    Idempotent: a done or failed export is returned as it is; a running one (a redelivery
    after a worker was lost) is written again, and when two runs race, the first to commit
    wins and the other discards its file. ``NotFound`` for an unknown id. Expected failures
    (``ExportFailed``, a domain error, a file system error) end the job and return it; an
    unexpected exception ends it too and is re-raised.
    """
    with transaction.atomic(using=using, durable=True):
        export = AuditExport.objects.using(using).select_for_update().filter(pk=export_id).first()
        if export is None:
            raise NotFound(f"no audit export {export_id}")
        if export.status in (AuditExportStatus.DONE, AuditExportStatus.FAILED):
            return export
        export.status = AuditExportStatus.RUNNING
        export.started_at = timezone.now()
        export.save(using=using, update_fields=["status", "started_at"])
    actor = Actor(**export.actor)
    directory = Path(settings.AUDIT_EXPORT_DIR)
    temporary = directory / f".{export.id}.{uuid.uuid4().hex}.part"
    selection = _selection_of(export)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        bundle = bundle_write(
            path=temporary,
            actor=actor,
            model=selection.model,
            since=selection.since,
            until=selection.until,
            prior_size=export.prior_size,
            using=using,
        )
        return _export_finish(export, actor, bundle, directory, using)
    except (ExportFailed, DomainError) as exc:
        return _export_fail(export, actor, exc.message, using)
    except OSError as exc:
        return _export_fail(export, actor, f"cannot write the bundle: {exc}", using)
    except Exception as exc:
        _export_fail(export, actor, f"unexpected error: {type(exc).__name__}: {exc}", using)
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()

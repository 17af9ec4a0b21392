"""The audit log's tables: the records, one head row per log, the signed checkpoints, the
cached Merkle tree nodes, and the export jobs of the API.

A record stores its exact canonical bytes in a text column (never ``jsonb``, which reorders
keys). The indexed columns beside the body (``action``, ``actor_id``...) are copies taken from
the body when it is appended, for filtering; the verifier trusts only the body.

Records, checkpoints and tree nodes are append-only: the models refuse changes here (and
record each refusal as ``audit.change_refused``, an alert), database triggers refuse them
below (``audit.triggers``), and in production the application's role holds only INSERT and
SELECT on them (``audit/sql/app_role.sql``).
"""

from __future__ import annotations

import uuid
from typing import Any, NoReturn, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, models
from django.dispatch import Signal
from django.utils import timezone

_M = TypeVar("_M", bound=models.Model)


class AppendOnlyError(RuntimeError):
    """An attempt to change or delete a row of an append-only audit table."""


# Sent (with ``table``, ``operation``, ``message``, ``row``, ``using``) before a change to an
# append-only row is refused; ``audit.services`` records it as a security event, connected
# in ``AuditConfig.ready`` so that these models never import the services that use them.
change_refused = Signal()


def _refused(
    model: type[models.Model], operation: str, message: str, row: Any, using: str | None
) -> NoReturn:
    """Announce the refused change (recorded as a security event), then raise."""
    change_refused.send(
        sender=model,
        table=model._meta.db_table,
        operation=operation,
        message=message,
        row=None if row is None else str(row),
        using=using or DEFAULT_DB_ALIAS,
    )
    raise AppendOnlyError(message)


class AppendOnlyQuerySet(models.QuerySet[_M]):
    """Rows can be read and inserted, never changed or deleted in bulk."""

    def _refuse(self, what: str) -> NoReturn:
        plural = self.model._meta.verbose_name_plural
        _refused(self.model, what, f"{plural} are append-only: {what} refused", None, self.db)

    def update(self, **kwargs: Any) -> NoReturn:
        self._refuse("update()")

    def delete(self) -> NoReturn:
        self._refuse("delete()")

    def bulk_update(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._refuse("bulk_update()")

    def update_or_create(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._refuse("update_or_create()")

    def _raw_delete(self, using: Any) -> NoReturn:
        self._refuse("delete")


class AuditRecordQuerySet(AppendOnlyQuerySet["AuditRecord"]):
    """Records can be read and appended, never changed in bulk."""


class AppendOnlyModel(models.Model):
    """A row that is inserted once and never saved again nor deleted."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            _refused(
                type(self),
                "save()",
                f"{self._meta.verbose_name_plural} are append-only: save() of a stored row",
                self.pk,
                self._state.db,
            )
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refused(
            type(self),
            "delete()",
            f"{self._meta.verbose_name_plural} are append-only: delete() refused",
            self.pk,
            self._state.db,
        )


class LogHead(models.Model):
    """The tip of one log: its size, the leaf hash of its last record and that record's time.

    Appends lock this row (``SELECT ... FOR UPDATE``; on SQLite the ``BEGIN IMMEDIATE`` write
    lock), which serialises writers of the same log.
    """

    log = models.CharField(primary_key=True, max_length=200)
    size = models.BigIntegerField(default=0)
    tip = models.CharField(max_length=64, default="0" * 64)
    last_ts = models.CharField(max_length=27, default="", blank=True)

    class Meta:
        verbose_name = "log head"

    def __str__(self) -> str:
        return f"{self.log} @ {self.size}"


class AuditRecord(AppendOnlyModel):
    """One event, as its canonical bytes; append-only at the model, trigger and role level."""

    log = models.CharField(max_length=200)
    seq = models.BigIntegerField()
    prev = models.CharField(max_length=64)
    leaf = models.CharField(max_length=64, help_text="SHA-256(0x00 || body), hex")
    body = models.TextField(help_text="the exact canonical UTF-8 JSON of the record")
    ts = models.DateTimeField(db_index=True)
    action = models.CharField(max_length=100, db_index=True)
    actor_type = models.CharField(max_length=20)
    actor_id = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=200)
    scope_model = models.CharField(max_length=200, blank=True, db_index=True)

    objects = AuditRecordQuerySet.as_manager()

    class Meta:
        ordering = ["log", "seq"]
        permissions = [("export_auditrecord", "Can export the audit log")]
        constraints = [
            models.UniqueConstraint(fields=["log", "seq"], name="audit_record_unique_seq"),
            models.UniqueConstraint(fields=["log", "prev"], name="audit_record_unique_prev"),
        ]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_record_object")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action}"


class CheckpointQuerySet(AppendOnlyQuerySet["Checkpoint"]):
    """Checkpoints can be read and inserted, never changed."""


class Checkpoint(AppendOnlyModel):
    """A signed commitment to the first ``size`` records of a log (AUDIT_SPEC section 5).

    ``note`` is the exact C2SP signed note that was published (``<size>.note``); ``root`` and
    ``key_names`` are copies of what it says, for queries. ``UNIQUE(log, size)`` is the
    compare-and-swap between checkpointers: one root per size, ever.
    """

    log = models.CharField(max_length=200)
    size = models.BigIntegerField()
    root = models.CharField(max_length=64, help_text="Merkle tree hash (RFC 9162), hex")
    note = models.TextField(help_text="the exact signed note (C2SP tlog-checkpoint)")
    key_names = models.JSONField(default=list, help_text="names of the keys that signed")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = CheckpointQuerySet.as_manager()

    class Meta:
        ordering = ["log", "size"]
        get_latest_by = "size"
        constraints = [
            models.UniqueConstraint(fields=["log", "size"], name="audit_checkpoint_unique_size"),
        ]

    def __str__(self) -> str:
        return f"{self.log} @ {self.size}"


class TreeNodeQuerySet(AppendOnlyQuerySet["TreeNode"]):
    """Tree nodes can be read and inserted, never changed."""


class TreeNode(AppendOnlyModel):
    """The hash of one aligned perfect subtree of a log's Merkle tree: leaves
    ``[index * 2**level, (index + 1) * 2**level)``, ``level >= 8`` (blocks of 256 leaves).

    A cache of ``audit.merkle.MerkleStore``, written by the checkpointer in the transaction of
    the checkpoint that first covered the subtree, so that a proof in a log of millions of
    records reads ``O(log n)`` nodes and at most a few hundred leaves. A subtree of an
    append-only log never changes, so neither does its row; the checkpointer re-derives the
    nodes it extends from and refuses to sign when one contradicts the records.
    """

    log = models.CharField(max_length=200)
    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.CharField(max_length=64, help_text="SHA-256 node hash, hex")

    objects = TreeNodeQuerySet.as_manager()

    class Meta:
        ordering = ["log", "level", "index"]
        constraints = [
            models.UniqueConstraint(
                fields=["log", "level", "index"], name="audit_treenode_unique_node"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.log} ({self.level}, {self.index})"


class AuditExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class AuditExport(models.Model):
    """An export bundle requested through the API, and the job that writes it.

    Not an audit table: the row is the job's bookkeeping (status, where the file is), while
    what matters is in the log (``audit.exports``: ``audit.export_requested`` when the row is
    created, ``audit.exported`` or ``audit.export_failed`` when the job ends, each in the
    transaction that changes the row). ``queued -> running -> done | failed``; a done or
    failed export is never run again. ``file_name`` is relative to ``AUDIT_EXPORT_DIR``.
    ``actor`` is the audit actor of the request (how the requester authenticated), used for
    the records the worker appends later.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="audit_exports"
    )
    actor = models.JSONField(help_text="the audit actor of the request")
    model_name = models.CharField(
        max_length=200, blank=True, help_text="filter: records whose scope.model is this name"
    )
    since = models.DateTimeField(null=True, blank=True, help_text="filter: records at or after")
    until = models.DateTimeField(null=True, blank=True, help_text="filter: records before")
    prior_size = models.BigIntegerField(
        null=True, blank=True, help_text="an earlier checkpoint to prove consistency from"
    )
    status = models.CharField(
        max_length=10, choices=AuditExportStatus.choices, default=AuditExportStatus.QUEUED
    )
    error = models.TextField(blank=True)
    file_name = models.CharField(max_length=200, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, help_text="of the whole zip, hex")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    record_count = models.BigIntegerField(null=True, blank=True)
    checkpoint_size = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["requested_by", "-created_at"], name="audit_export_requester")
        ]

    def __str__(self) -> str:
        return f"export {self.id} ({self.status})"

    @property
    def is_partial(self) -> bool:
        """Whether a filter applies (a partial export), rather than the whole log."""
        return bool(self.model_name) or self.since is not None or self.until is not None

"""The audit log's tables: the records themselves and one head row per log.

A record stores its exact canonical bytes in a text column (never ``jsonb``, which reorders
keys). The indexed columns beside the body (``action``, ``actor_id``...) are copies taken from
the body when it is appended, for filtering; the verifier trusts only the body.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models


class AppendOnlyError(RuntimeError):
    """An attempt to change or delete an audit record."""


class AuditRecordQuerySet(models.QuerySet["AuditRecord"]):
    """Records can be read and appended, never changed in bulk."""

    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit records are append-only: update() refused")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("audit records are append-only: delete() refused")

    def bulk_update(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit records are append-only: bulk_update() refused")

    def update_or_create(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit records are append-only: update_or_create() refused")

    def _raw_delete(self, using: Any) -> NoReturn:
        raise AppendOnlyError("audit records are append-only: delete refused")


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


class AuditRecord(models.Model):
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

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("audit records are append-only: save() of a stored record")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit records are append-only: delete() refused")

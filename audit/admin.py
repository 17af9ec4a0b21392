"""The audit log in the Django admin: browse and search, never change.

Records, log heads, checkpoints, tree nodes and export jobs are read-only for everyone,
superusers included: there is no add, change or delete permission and no action (the
database refuses such writes to the log anyway; export jobs change only through
``audit.exports``).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from audit.models import AuditExport, AuditRecord, Checkpoint, LogHead, TreeNode


class ReadOnlyAdmin(admin.ModelAdmin):
    actions = None

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {}


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "seq",
        "ts",
        "action",
        "actor_id",
        "object_type",
        "object_id",
        "scope_model",
    )
    list_filter = ("action", "actor_type")
    search_fields = ("action", "actor_id", "object_type", "object_id", "scope_model")
    date_hierarchy = "ts"
    ordering = ("-seq",)
    fields = (
        "log",
        "seq",
        "ts",
        "action",
        "actor_type",
        "actor_id",
        "object_type",
        "object_id",
        "scope_model",
        "prev",
        "leaf",
        "pretty_body",
        "body",
    )
    readonly_fields = fields

    @admin.display(description="record (indented for reading; the hash covers `body`)")
    def pretty_body(self, obj: AuditRecord) -> str:
        return format_html(
            "<pre>{}</pre>", json.dumps(json.loads(obj.body), indent=2, ensure_ascii=False)
        )


@admin.register(LogHead)
class LogHeadAdmin(ReadOnlyAdmin):
    list_display = ("log", "size", "tip", "last_ts")
    fields = ("log", "size", "tip", "last_ts")
    readonly_fields = fields


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ("size", "created_at", "root", "signed_by")
    ordering = ("-size",)
    date_hierarchy = "created_at"
    fields = ("log", "size", "root", "signed_by", "created_at", "pretty_note")
    readonly_fields = fields

    @admin.display(description="signed by")
    def signed_by(self, obj: Checkpoint) -> str:
        return ", ".join(obj.key_names)

    @admin.display(description="signed note (C2SP tlog-checkpoint)")
    def pretty_note(self, obj: Checkpoint) -> str:
        return format_html("<pre>{}</pre>", obj.note)


@admin.register(TreeNode)
class TreeNodeAdmin(ReadOnlyAdmin):
    list_display = ("log", "level", "index", "hash")
    list_filter = ("level",)
    fields = ("log", "level", "index", "hash")
    readonly_fields = fields


@admin.register(AuditExport)
class AuditExportAdmin(ReadOnlyAdmin):
    """Export jobs, to look at: requested through the API (``audit.exports``), never here."""

    list_display = ("id", "requested_by", "status", "model_name", "records", "created_at")
    list_filter = ("status",)
    search_fields = ("id", "requested_by__username", "model_name", "sha256")
    date_hierarchy = "created_at"
    fields = (
        "id",
        "requested_by",
        "actor",
        "model_name",
        "since",
        "until",
        "prior_size",
        "status",
        "error",
        "file_name",
        "sha256",
        "size_bytes",
        "record_count",
        "checkpoint_size",
        "created_at",
        "started_at",
        "finished_at",
    )
    readonly_fields = fields

    @admin.display(description="records", ordering="record_count")
    def records(self, obj: AuditExport) -> int | None:
        return obj.record_count

"""The audit log in the Django admin: browse and search, never change.

Records, log heads, checkpoints, tree nodes and export jobs are read-only for everyone,
superusers included: there is no add, change or delete permission and no action (the
database refuses such writes to the log anyway; export jobs change only through
``audit.exports``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Concat
from django.http import HttpRequest
from django.utils.html import format_html

from audit.models import AuditExport, AuditRecord, Checkpoint, LogHead, TreeNode
from core.accounts.models import User

# Actor types whose id is a user's primary key (people and service accounts).
USER_ACTOR_TYPES = ("user", "service")
# Most people a name search matches; more means the search words are too vague to be useful.
NAME_SEARCH_LIMIT = 200


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


def actor_names(records: Iterable[AuditRecord]) -> dict[str, str]:
    """Printed names of the users who acted in ``records``, by actor id, in one query."""
    ids = {r.actor_id for r in records if r.actor_type in USER_ACTOR_TYPES and r.actor_id.isdigit()}
    users = User.objects.filter(pk__in=[int(pk) for pk in ids])
    return {str(user.pk): user.printed_name for user in users}


class AuditRecordChangeList(ChangeList):
    """The list of records, each knowing its actor's printed name (one query per page)."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        names = actor_names(self.result_list)
        for record in self.result_list:
            record.actor_name = names.get(record.actor_id, "")


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyAdmin):
    """The log, newest first; actors by printed name, and a search finds a person's records
    by their name or username as well as by action, object or model."""

    list_display = (
        "seq",
        "ts",
        "action",
        "actor",
        "object_type",
        "object_id",
        "scope_model",
    )
    list_filter = ("action", "actor_type")
    search_fields = ("action", "actor_id", "object_type", "object_id", "scope_model")
    search_help_text = "Action, object, model, or the actor's name or username."
    date_hierarchy = "ts"
    ordering = ("-seq",)
    fields = (
        "log",
        "seq",
        "ts",
        "action",
        "actor",
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

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return AuditRecordChangeList

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[AuditRecord], search_term: str
    ) -> tuple[QuerySet[AuditRecord], bool]:
        found, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if not term:
            return found, duplicates
        people = (
            User.objects.annotate(full=Concat("first_name", Value(" "), "last_name"))
            .filter(Q(username__icontains=term) | Q(full__icontains=term))
            .values_list("pk", flat=True)[:NAME_SEARCH_LIMIT]
        )
        ids = [str(pk) for pk in people]
        if ids:
            found = found | queryset.filter(actor_type__in=USER_ACTOR_TYPES, actor_id__in=ids)
        return found, duplicates

    @admin.display(description="actor", ordering="actor_id")
    def actor(self, obj: AuditRecord) -> str:
        name = getattr(obj, "actor_name", None)
        if name is None:  # a record's own page: not resolved with a list of rows
            name = actor_names([obj]).get(obj.actor_id, "")
        if name:
            return name
        return (
            obj.actor_id
            if obj.actor_type in USER_ACTOR_TYPES
            else f"{obj.actor_id} ({obj.actor_type})"
        )

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

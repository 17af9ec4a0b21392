"""Admin for people, groups (roles and teams), service accounts and API keys.

Who holds power is a governed fact: every save here goes through
``governance.accounts.services`` with the admin user as the caller, asks for a reason, and
records the before/after of groups, permissions and flags in one transaction. Nothing is
deleted (users are deactivated, keys revoked); keys are created by command and shown once.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.http import HttpRequest, HttpResponse

from core.accounts.models import ApiKey, User
from core.admin import ServiceAdmin, admin_caller, reason_field
from core.errors import DomainError
from core.reasons import MAX_REASON
from governance.accounts import services


def _reason_field() -> forms.CharField:
    return reason_field(MAX_REASON)


class RecordedAdmin(ServiceAdmin):
    """The shared service admin; the services save many-to-many fields themselves."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Many-to-many fields were saved by the service with the rest of the change."""


class RecordedUserChangeForm(UserChangeForm):
    reason = _reason_field()


class RecordedUserCreationForm(AdminUserCreationForm):
    reason = _reason_field()


@admin.register(User)
class WardenUserAdmin(RecordedAdmin, UserAdmin):
    form = RecordedUserChangeForm
    add_form = RecordedUserCreationForm
    list_display = ("username", "get_full_name", "kind", "is_active", "is_staff")
    list_filter = ("kind", "is_active", "is_staff", "groups")
    fieldsets = (
        *UserAdmin.fieldsets,  # type: ignore[misc]
        ("Warden", {"fields": ("kind",)}),
        ("Why", {"fields": ("reason",)}),
    )
    add_fieldsets = (
        *UserAdmin.add_fieldsets,
        ("Why", {"fields": ("reason",)}),
    )
    readonly_fields = ("last_login", "date_joined")

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # As changeform_view: the service's durable transaction must not be nested.
        return self._add_view(request, form_url, extra_context)  # type: ignore[attr-defined]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        data = form.cleaned_data
        try:
            if not change:
                usable = data.get("usable_password", "true") != "false"
                saved = services.user_create(
                    caller=admin_caller(request),
                    username=data["username"],
                    password=data.get("password1") if usable else None,
                    reason=data["reason"],
                )
                obj.pk = saved.pk
                return
            fields = {
                name: data[name]
                for name in (*services.USER_PROFILE_FIELDS, *services.USER_FLAGS)
                if name in data
            }
            services.user_change(
                caller=admin_caller(request),
                user=User.objects.get(pk=obj.pk),
                reason=data["reason"],
                groups=data.get("groups", None),
                user_permissions=data.get("user_permissions", None),
                **fields,
            )
        except DomainError as error:
            self.refuse(request, error)


class RecordedGroupForm(forms.ModelForm):
    members = forms.ModelMultipleChoiceField(
        queryset=User.objects.filter(is_active=True).order_by("username"),
        required=False,
        widget=FilteredSelectMultiple("members", is_stacked=False),
    )
    reason = _reason_field()

    class Meta:
        model = Group
        fields = ("name", "permissions")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["members"].initial = list(self.instance.user_set.all())


admin.site.unregister(Group)


@admin.register(Group)
class WardenGroupAdmin(RecordedAdmin, GroupAdmin):
    form = RecordedGroupForm
    fields = ("name", "permissions", "members", "reason")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        data = form.cleaned_data
        try:
            if not change:
                saved = services.group_create(
                    caller=admin_caller(request),
                    name=data["name"],
                    permissions=data["permissions"],
                    members=data["members"],
                    reason=data["reason"],
                )
                obj.pk = saved.pk
                return
            services.group_change(
                caller=admin_caller(request),
                group=Group.objects.get(pk=obj.pk),
                name=data["name"],
                permissions=data["permissions"],
                members=data["members"],
                reason=data["reason"],
            )
        except DomainError as error:
            self.refuse(request, error)


class ApiKeyForm(forms.ModelForm):
    revoke = forms.BooleanField(
        required=False, help_text="Revoke the key now: its later requests are refused."
    )
    reason = _reason_field()

    class Meta:
        model = ApiKey
        fields = ("name", "scopes", "expires_at", "rate_limit")


@admin.register(ApiKey)
class ApiKeyAdmin(RecordedAdmin):
    form = ApiKeyForm
    list_display = (
        "name",
        "prefix",
        "user",
        "scopes",
        "rate_limit",
        "created_at",
        "expires_at",
        "revoked_at",
    )
    list_filter = ("revoked_at",)
    readonly_fields = ("user", "prefix", "created_at", "revoked_at")
    fields = (
        "user",
        "prefix",
        "name",
        "scopes",
        "expires_at",
        "rate_limit",
        "created_at",
        "revoked_at",
    )
    search_fields = ("name", "prefix", "user__username")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and obj.revoked_at is None:
            return (*self.fields, "revoke", "reason")
        return self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and obj.revoked_at is not None:
            return self.fields  # a revoked key stays as it was
        return self.readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # `manage.py create_service_account` shows a new key once

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        data = form.cleaned_data
        key = ApiKey.objects.get(pk=obj.pk)
        try:
            if data.get("revoke"):
                services.api_key_revoke(
                    caller=admin_caller(request), key=key, reason=data["reason"]
                )
                return
            services.api_key_change(
                caller=admin_caller(request),
                key=key,
                name=data["name"],
                scopes=data["scopes"],
                expires_at=data["expires_at"],
                rate_limit=data["rate_limit"],
                reason=data["reason"],
            )
        except DomainError as error:
            self.refuse(request, error)

"""Admin for people, groups (roles and teams), service accounts and API keys.

Who holds power is a governed fact: every save here goes through
``governance.accounts.services`` with the admin user as the caller, asks for a reason, and
records the before/after of groups, permissions and flags in one transaction. Nothing is
deleted (users are deactivated, keys revoked); keys are created by command and shown once.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import csrf_protect_m
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from governance.accounts import services
from governance.accounts.callers import Caller
from governance.accounts.models import ApiKey, User
from governance.common.errors import DomainError
from governance.common.reasons import MAX_REASON

REASON_HELP = "Required: recorded in the audit log with the change."


def _reason_field() -> forms.CharField:
    return forms.CharField(
        max_length=MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text=REASON_HELP,
    )


def _caller(request: HttpRequest) -> Caller:
    return Caller(user=cast(User, request.user), auth="session")


class RecordedAdmin(admin.ModelAdmin):
    """Saves through services (subclasses implement ``save_model``); a refusal is shown as
    an error and nothing is saved, logged or announced."""

    @csrf_protect_m
    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # Services open their own durable transaction, which the admin's usual atomic block
        # around the view would nest.
        return self._changeform_view(  # type: ignore[attr-defined]
            request, object_id, form_url, extra_context
        )

    def refuse(self, request: HttpRequest, error: DomainError) -> None:
        request._warden_refused = True  # type: ignore[attr-defined]
        self.message_user(request, error.message, messages.ERROR)

    @staticmethod
    def refused(request: HttpRequest) -> bool:
        return bool(getattr(request, "_warden_refused", False))

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Many-to-many fields were saved by the service with the rest of the change."""

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return None if self.refused(request) else super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return None if self.refused(request) else super().log_change(request, obj, message)

    def response_add(
        self, request: HttpRequest, obj: Any, post_url_continue: str | None = None
    ) -> HttpResponse:
        if self.refused(request):
            return HttpResponseRedirect(request.get_full_path())
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request: HttpRequest, obj: Any) -> HttpResponse:
        if self.refused(request):
            return HttpResponseRedirect(request.get_full_path())
        return super().response_change(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


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
                    caller=_caller(request),
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
                caller=_caller(request),
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
                    caller=_caller(request),
                    name=data["name"],
                    permissions=data["permissions"],
                    members=data["members"],
                    reason=data["reason"],
                )
                obj.pk = saved.pk
                return
            services.group_change(
                caller=_caller(request),
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
        fields = ("name", "scopes", "expires_at")


@admin.register(ApiKey)
class ApiKeyAdmin(RecordedAdmin):
    form = ApiKeyForm
    list_display = ("name", "prefix", "user", "scopes", "created_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at",)
    readonly_fields = ("user", "prefix", "created_at", "revoked_at")
    fields = ("user", "prefix", "name", "scopes", "expires_at", "created_at", "revoked_at")
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
                services.api_key_revoke(caller=_caller(request), key=key, reason=data["reason"])
                return
            services.api_key_change(
                caller=_caller(request),
                key=key,
                name=data["name"],
                scopes=data["scopes"],
                expires_at=data["expires_at"],
                reason=data["reason"],
            )
        except DomainError as error:
            self.refuse(request, error)

"""Admin for people, service accounts and API keys (keys are created by command, shown once)."""

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from governance.accounts.models import ApiKey, User


@admin.register(User)
class WardenUserAdmin(UserAdmin):
    list_display = ("username", "get_full_name", "kind", "is_active", "is_staff")
    list_filter = ("kind", "is_active", "is_staff", "groups")
    fieldsets = (*UserAdmin.fieldsets, ("Warden", {"fields": ("kind",)}))  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deactivate instead: signatures and records point at users


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "user", "scopes", "created_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at",)
    readonly_fields = ("prefix", "hashed_key", "created_at")
    search_fields = ("name", "prefix", "user__username")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # `manage.py create_service_account` shows a new key once

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

"""What every Warden admin shares: saves go through services, nothing is deleted, and a
service's refusal is shown as an error with nothing saved, logged or announced.

The accounts admin and the registry admin (and any later one) subclass ``ServiceAdmin``;
``admin_caller`` is the admin user as the services' caller, and ``reason_field`` the
"why" every recorded change asks for.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import csrf_protect_m
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from core.accounts.callers import Caller
from core.accounts.models import User
from core.errors import DomainError

REASON_HELP = "Required: recorded in the audit log with the change."


def admin_caller(request: HttpRequest) -> Caller:
    """The signed-in admin user, as the caller of a service."""
    return Caller(user=cast(User, request.user), auth="session")


def reason_field(
    max_length: int, *, help_text: str = REASON_HELP, rows: int = 2
) -> forms.CharField:
    """The reason a change form asks for; the service records it with the change."""
    return forms.CharField(
        max_length=max_length,
        widget=forms.Textarea(attrs={"rows": rows, "cols": 60}),
        help_text=help_text,
    )


class ServiceAdmin(admin.ModelAdmin):
    """Saves through services (subclasses implement ``save_model`` and call ``refuse`` with a
    service's ``DomainError``); never deletes: governed rows are retired or deactivated."""

    @csrf_protect_m
    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # Services open their own durable transaction; the admin's usual atomic block around
        # the whole view would nest it, which a durable block refuses.
        return self._changeform_view(  # type: ignore[attr-defined]
            request, object_id, form_url, extra_context
        )

    def refuse(self, request: HttpRequest, error: DomainError) -> None:
        """Show ``error`` and mark the request, so that nothing is logged or announced."""
        request._warden_refused = True  # type: ignore[attr-defined]
        self.message_user(request, error.message, messages.ERROR)

    @staticmethod
    def refused(request: HttpRequest) -> bool:
        """Whether a service refused this request's save."""
        return bool(getattr(request, "_warden_refused", False))

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

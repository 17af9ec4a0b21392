"""Sign-off and deployments in the Django admin: read-mostly.

Requests are signed, withdrawn and revoked through admin actions that call
``governance.approvals.services`` with the admin user as the caller, so separation of duties,
re-authentication and the audit records are exactly those of the API. Policies, sign-offs,
gate checks and deployments are read-only (a policy change is a new version, published
through ``signoff_policy_publish``).
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from core.accounts.callers import Caller
from core.accounts.models import User
from core.errors import DomainError
from core.reasons import MAX_REASON
from governance.approvals import selectors, services
from governance.approvals.models import (
    Deployment,
    DeploymentRequest,
    Environment,
    Finding,
    GateCheck,
    SignOff,
    SignOffPolicy,
)
from governance.approvals.workflow import Decision
from registry.admin import reason_action

SIGN_TEMPLATE = "admin/approvals/sign.html"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown to holders of the view permission; nothing is added, changed or deleted here."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(Environment)
class EnvironmentAdmin(ReadOnlyAdmin):
    list_display = ("name", "position", "description")


@admin.register(SignOffPolicy)
class SignOffPolicyAdmin(ReadOnlyAdmin):
    list_display = ("environment", "risk_tier", "version", "approval_expiry_days", "published_at")
    list_filter = ("environment", "risk_tier")


class SignForm(forms.Form):
    """The admin's signature: its meaning is each request's current step's."""

    decision = forms.ChoiceField(choices=Decision.choices)
    comment = forms.CharField(
        required=False,
        max_length=MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required to reject.",
    )
    acknowledge_evidence = forms.BooleanField(
        required=False,
        label="I acknowledge the evidence that is missing or not passing",
        help_text="Required to approve a request whose required evidence is missing, failed "
        "or stale; what was not passing is kept with the signature.",
    )
    password = forms.CharField(
        widget=forms.PasswordInput, help_text="Your password, to sign (re-authentication)."
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("decision") == Decision.REJECT and not cleaned.get("comment", "").strip():
            self.add_error("comment", "Say why you reject the request.")
        return cleaned


class SignOffInline(admin.TabularInline):
    model = SignOff
    extra = 0
    can_delete = False
    fields = (
        "step",
        "printed_name",
        "decision",
        "meaning",
        "signed_at",
        "evidence_acknowledged",
        "signed_sha256",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DeploymentRequest)
class DeploymentRequestAdmin(ReadOnlyAdmin):
    """Requests of the models the user may see; signed through the "Sign" action."""

    list_display = ("id", "model_version", "environment", "state", "requester_name", "created_at")
    list_filter = ("state", "environment")
    inlines = [SignOffInline]
    actions = ["sign_requests", "withdraw_requests", "revoke_requests"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[DeploymentRequest]:
        return selectors.deployment_request_list(user=cast(User, request.user))

    @admin.display(description="requester", ordering="requester__last_name")
    def requester_name(self, obj: DeploymentRequest) -> str:
        return obj.requester.printed_name

    # Staff see the requests of the models they may see (the selector scopes the list), so a
    # team's data scientists can review and sign here without a global view permission.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not (request.user.is_active and request.user.is_staff):
            return False
        return obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()

    @admin.action(description="Sign selected requests (approve or reject)")
    def sign_requests(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        form = SignForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            caller = Caller(user=cast(User, request.user), auth="session")
            for obj in queryset:
                try:
                    services.signoff_sign(
                        caller=caller,
                        request=obj,
                        decision=form.cleaned_data["decision"],
                        comment=form.cleaned_data["comment"],
                        password=form.cleaned_data["password"],
                        acknowledge_evidence=form.cleaned_data["acknowledge_evidence"],
                    )
                except DomainError as error:
                    self.message_user(
                        request, f"{obj}: {error.message} ({error.code})", messages.ERROR
                    )
                else:
                    self.message_user(request, f"{obj}: signed.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Sign",
            "opts": self.model._meta,
            "queryset": queryset,
            "form": form,
            "action": request.POST.get("action", ""),
            "checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, SIGN_TEMPLATE, context)

    @admin.action(description="Withdraw selected requests (their requester)")
    def withdraw_requests(self, request: HttpRequest, queryset: QuerySet) -> Any:
        return reason_action(
            self,
            request,
            queryset,
            title="Withdraw",
            apply=lambda caller, obj, reason: services.deployment_request_withdraw(
                caller=caller, request=obj, reason=reason
            ),
        )

    @admin.action(description="Revoke selected approvals (risk or compliance officers)")
    def revoke_requests(self, request: HttpRequest, queryset: QuerySet) -> Any:
        return reason_action(
            self,
            request,
            queryset,
            title="Revoke",
            apply=lambda caller, obj, reason: services.deployment_request_revoke(
                caller=caller, request=obj, reason=reason
            ),
        )


@admin.register(SignOff)
class SignOffAdmin(ReadOnlyAdmin):
    list_display = ("request", "step", "printed_name", "decision", "meaning", "signed_at")


@admin.register(GateCheck)
class GateCheckAdmin(ReadOnlyAdmin):
    list_display = ("check_id", "model_version", "environment", "allowed", "status", "asked_at")
    list_filter = ("allowed", "environment")


@admin.register(Deployment)
class DeploymentAdmin(ReadOnlyAdmin):
    list_display = ("model_version", "environment", "event", "occurred_at", "unchecked")
    list_filter = ("environment", "event", "unchecked")


@admin.register(Finding)
class FindingAdmin(ReadOnlyAdmin):
    """Findings, read-only here: they are raised and resolved through the API (validators
    and officers), where separation of duties and the audit record apply."""

    list_display = ("id", "model_version", "title", "severity", "status", "owner_name", "due_date")
    list_filter = ("status", "severity")
    search_fields = (
        "title",
        "model_version__model__name",
        "owner__username",
        "owner__first_name",
        "owner__last_name",
    )
    list_select_related = ("model_version__model", "owner")

    @admin.display(description="owner", ordering="owner__last_name")
    def owner_name(self, obj: Finding) -> str:
        return obj.owner.printed_name

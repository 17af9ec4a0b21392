"""The registry in the Django admin, for risk officers and administrators.

Every write goes through ``registry.services`` with the admin user as the caller, so the
admin, the API and the commands share the same permission checks and leave the same audit
records. Nothing is deleted here (retire instead); versions and lineage are read-only; the
risk tier and sensitive attributes change only through ``model_change_risk``, with a reason.
A refusal from a service is shown as an error message and nothing is saved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from core.accounts.callers import Caller
from core.admin import ServiceAdmin, admin_caller
from core.errors import DomainError
from core.reasons import MAX_REASON
from core.roles import Role, has_role
from registry import selectors, services
from registry.models import (
    Dataset,
    DatasetUsage,
    DatasetVersion,
    ModelVersion,
    RegisteredModel,
    VersionStatus,
)

RISK_FIELDS = ("risk_tier", "sensitive_attributes")
REASON_TEMPLATE = "admin/registry/action_reason.html"


def _may(request: HttpRequest, perm: str, obj: Any = None) -> bool:
    user = request.user
    return user.has_perm(perm) or (obj is not None and user.has_perm(perm, obj))


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Recorded in the audit log with each change.",
    )


def reason_action(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    title: str,
    apply: Callable[[Caller, Any, str], Any],
) -> TemplateResponse | None:
    """An admin action that first asks for a reason on an intermediate page, then calls a
    service once per selected object; each refusal is reported and the others go on."""
    form = ReasonForm(request.POST if "apply" in request.POST else None)
    if form.is_valid():
        caller = admin_caller(request)
        done = 0
        for obj in queryset:
            try:
                apply(caller, obj, form.cleaned_data["reason"])
            except DomainError as error:
                modeladmin.message_user(request, f"{obj}: {error.message}", messages.ERROR)
            else:
                done += 1
        if done:
            modeladmin.message_user(request, f"{title}: {done} done.", messages.SUCCESS)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "opts": modeladmin.model._meta,
        "queryset": queryset,
        "form": form,
        "action": request.POST.get("action", ""),
        "checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, REASON_TEMPLATE, context)


class ReadOnlyInline(admin.TabularInline):
    """Lineage and versions shown inside a parent the user may already view."""

    extra = 0
    can_delete = False
    show_change_link = True

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields or ()

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True


def _require_reason(form: forms.ModelForm, cleaned: dict[str, Any], needing: Any) -> None:
    """On a change form: a change of a field in ``needing`` is refused without a reason."""
    governed = sorted(set(form.changed_data) & set(needing))
    if form.instance.pk is not None and governed and not (cleaned.get("reason") or "").strip():
        form.add_error("reason", f"A reason is required to change {', '.join(governed)}.")


class RegisteredModelForm(forms.ModelForm):
    reason = forms.CharField(
        required=False,
        max_length=MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text=(
            "Required to change the intended use, the risk tier or sensitive attributes; "
            "always recorded."
        ),
    )

    class Meta:
        model = RegisteredModel
        # The admin narrows these per user and per add/change (get_fieldsets).
        fields = ("name", "owner", "team", *services.MODEL_DESCRIPTIVE_FIELDS, *RISK_FIELDS)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        changed = set(self.changed_data)
        if self.instance.pk is not None and changed & set(RISK_FIELDS):
            if changed & set(services.MODEL_DESCRIPTIVE_FIELDS):
                raise forms.ValidationError(
                    "Save a risk change on its own: change the risk tier or sensitive "
                    "attributes, or the descriptive fields, not both at once."
                )
            if not (cleaned.get("reason") or "").strip():
                self.add_error(
                    "reason", "A reason is required to change the risk tier or attributes."
                )
        _require_reason(self, cleaned, services.MODEL_FIELDS_NEEDING_REASON)
        return cleaned


class ModelVersionInline(ReadOnlyInline):
    model = ModelVersion
    fk_name = "model"
    fields = ("version", "status", "artifact_digest", "framework", "author", "created_at")
    ordering = ("-version",)


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ServiceAdmin):
    form = RegisteredModelForm
    list_display = ("name", "risk_tier", "status", "owner", "team", "next_review")
    list_filter = ("risk_tier", "status", "owner", "team")
    search_fields = ("name", "description", "intended_use")
    inlines = [ModelVersionInline]
    actions = ["retire_models"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[RegisteredModel]:
        return selectors.model_list(user=admin_caller(request).user)

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        return self.inlines if obj is not None else []

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may(request, "registry.view_registeredmodel", obj) or (
            obj is None and request.user.has_module_perms("registry")
        )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_describe(request, obj) or self._may_change_risk(request)

    def has_retire_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, Role.RISK_OFFICER) or request.user.has_perm(
            "registry.retire_registeredmodel"
        )

    @admin.display(description="Signing grants")
    def signing_grants(self, obj: RegisteredModel) -> str:
        grants = selectors.signing_grant_list(model=obj)
        if not grants:
            return "none: only role group members sign"
        return "; ".join(
            f"{grant.user.get_username() if grant.user else f'team {grant.group}'} "
            f"({Role(grant.role).label})"
            for grant in grants
        )

    @staticmethod
    def _may_describe(request: HttpRequest, obj: Any) -> bool:
        return _may(request, "registry.change_registeredmodel", obj)

    @staticmethod
    def _may_change_risk(request: HttpRequest) -> bool:
        return has_role(request.user, Role.RISK_OFFICER)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return [
                (None, {"fields": ("name", "risk_tier", "owner", "team")}),
                (
                    "Description",
                    {
                        "fields": (
                            "description",
                            "intended_use",
                            "limitations",
                            "sensitive_attributes",
                            "next_review",
                        )
                    },
                ),
            ]
        fieldsets: list[Any] = [
            (
                None,
                {"fields": ("name", "owner", "team", "status", "last_validated", "created_at")},
            ),
            ("Description", {"fields": services.MODEL_DESCRIPTIVE_FIELDS}),
            ("Risk", {"fields": RISK_FIELDS}),
            (
                "Signing",
                {
                    "fields": ("signing_grants",),
                    "description": (
                        "Besides the members of each step's role group, these people and teams "
                        "may sign this model's requests in the role named. Risk officers and "
                        "administrators grant and revoke through the API "
                        "(/api/v1/models/&lt;name&gt;/signing-grants); every change is in the "
                        "audit log."
                    ),
                },
            ),
        ]
        if self._may_describe(request, obj) or self._may_change_risk(request):
            fieldsets.append(("Why", {"fields": ("reason",)}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        fixed = ["name", "owner", "team", "status", "last_validated", "created_at"]
        fixed.append("signing_grants")
        if not self._may_describe(request, obj):
            fixed += services.MODEL_DESCRIPTIVE_FIELDS
        if not self._may_change_risk(request):
            fixed += RISK_FIELDS
        return fixed

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None and "owner" in form.base_fields:
            form.base_fields["owner"].required = False
            form.base_fields[
                "owner"
            ].help_text = (
                "A data scientist or ML engineer on the team; leave empty to own it yourself."
            )
        return form

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        data = form.cleaned_data
        caller = admin_caller(request)
        try:
            if not change:
                saved = services.model_create(
                    caller=caller,
                    name=data["name"],
                    risk_tier=data["risk_tier"],
                    description=data.get("description", ""),
                    owner=data.get("owner"),
                    team=data.get("team"),
                    intended_use=data.get("intended_use", ""),
                    limitations=data.get("limitations", ""),
                    sensitive_attributes=data.get("sensitive_attributes") or [],
                    next_review=data.get("next_review"),
                )
                obj.pk = saved.pk
                return
            current = RegisteredModel.objects.get(pk=obj.pk)
            changed = set(form.changed_data)
            reason = data.get("reason") or None
            if changed & set(RISK_FIELDS):
                services.model_change_risk(
                    caller=caller,
                    model=current,
                    reason=reason or "",
                    risk_tier=data["risk_tier"] if "risk_tier" in changed else None,
                    sensitive_attributes=(
                        data["sensitive_attributes"] if "sensitive_attributes" in changed else None
                    ),
                )
            descriptive = {
                name: data[name] for name in services.MODEL_DESCRIPTIVE_FIELDS if name in changed
            }
            if descriptive:
                services.model_update(caller=caller, model=current, reason=reason, **descriptive)
        except DomainError as error:
            self.refuse(request, error)

    @admin.action(description="Retire selected models", permissions=["retire"])
    def retire_models(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        return reason_action(
            self,
            request,
            queryset,
            title="Retire selected models",
            apply=lambda caller, model, reason: services.model_retire(
                caller=caller, model=model, reason=reason
            ),
        )


class DatasetUsageInline(ReadOnlyInline):
    model = DatasetUsage
    fk_name = "model_version"
    fields = ("dataset_version", "role")
    verbose_name = "dataset used"
    verbose_name_plural = "lineage: datasets used"


@admin.register(ModelVersion)
class ModelVersionAdmin(ServiceAdmin):
    """Versions are immutable after registration (CI registers them through the API); only
    their status changes, through the actions."""

    list_display = ("model", "version", "status", "framework", "author", "created_at")
    list_filter = ("status", "framework")
    search_fields = ("model__name", "artifact_digest", "source_commit", "training_run_id")
    list_select_related = ("model", "author")
    inlines = [DatasetUsageInline]
    actions = ["deprecate_versions", "retire_versions"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModelVersion]:
        visible = selectors.model_list(user=admin_caller(request).user)
        return ModelVersion.objects.filter(model__in=visible).select_related("model", "author")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [field.name for field in ModelVersion._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The queryset holds only versions of models the user may see.
        return request.user.has_module_perms("registry")

    def has_set_status_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, Role.RISK_OFFICER) or request.user.has_perm(
            "registry.change_registeredmodel"
        )

    def _set_status(self, request: HttpRequest, queryset: QuerySet, status: str, title: str) -> Any:
        return reason_action(
            self,
            request,
            queryset,
            title=title,
            apply=lambda caller, version, reason: services.model_version_set_status(
                caller=caller, version=version, status=status, reason=reason
            ),
        )

    @admin.action(description="Deprecate selected versions", permissions=["set_status"])
    def deprecate_versions(self, request: HttpRequest, queryset: QuerySet) -> Any:
        return self._set_status(
            request, queryset, VersionStatus.DEPRECATED, "Deprecate selected versions"
        )

    @admin.action(description="Retire selected versions", permissions=["set_status"])
    def retire_versions(self, request: HttpRequest, queryset: QuerySet) -> Any:
        return self._set_status(
            request, queryset, VersionStatus.RETIRED, "Retire selected versions"
        )


class DatasetVersionInline(ReadOnlyInline):
    model = DatasetVersion
    fk_name = "dataset"
    fields = ("version", "content_digest", "row_count", "pii", "created_by", "created_at")
    ordering = ("-version",)


class DatasetForm(forms.ModelForm):
    reason = forms.CharField(
        required=False,
        max_length=MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Why the change was made; required to change pii or the legal basis.",
    )

    class Meta:
        model = Dataset
        fields = ("name", *services.DATASET_DESCRIPTIVE_FIELDS)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        _require_reason(self, cleaned, services.DATASET_FIELDS_NEEDING_REASON)
        return cleaned


@admin.register(Dataset)
class DatasetAdmin(ServiceAdmin):
    form = DatasetForm
    list_display = ("name", "owner", "pii", "status", "created_at")
    list_filter = ("status", "pii")
    search_fields = ("name", "description", "source_uri")
    inlines = [DatasetVersionInline]
    actions = ["retire_datasets"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Dataset]:
        return selectors.dataset_list(user=admin_caller(request).user)

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        return self.inlines if obj is not None else []

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # As the service decides: the owner, or the permission globally or on this dataset.
        return _may(request, "registry.change_dataset", obj) or (
            obj is not None and obj.owner_id == request.user.pk
        )

    def has_retire_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("registry.change_dataset") or request.user.has_perm(
            "registry.add_dataset"
        )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        descriptive = ("description", "source_uri", "pii", "legal_basis")
        if obj is None:
            return [(None, {"fields": ("name", *descriptive)})]
        fieldsets: list[Any] = [
            (None, {"fields": ("name", "owner", "status", "created_at")}),
            ("Description", {"fields": descriptive}),
        ]
        if self.has_change_permission(request, obj):
            fieldsets.append(("Why", {"fields": ("reason",)}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return ("name", "owner", "status", "created_at")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        data = form.cleaned_data
        caller = admin_caller(request)
        try:
            if not change:
                saved = services.dataset_create(
                    caller=caller,
                    name=data["name"],
                    description=data.get("description", ""),
                    source_uri=data.get("source_uri", ""),
                    pii=data.get("pii", False),
                    legal_basis=data.get("legal_basis", ""),
                )
                obj.pk = saved.pk
                return
            fields = {
                name: data[name]
                for name in services.DATASET_DESCRIPTIVE_FIELDS
                if name in form.changed_data
            }
            if fields:
                services.dataset_update(
                    caller=caller,
                    dataset=Dataset.objects.get(pk=obj.pk),
                    reason=data.get("reason") or None,
                    **fields,
                )
        except DomainError as error:
            self.refuse(request, error)

    @admin.action(description="Retire selected datasets", permissions=["retire"])
    def retire_datasets(self, request: HttpRequest, queryset: QuerySet) -> Any:
        return reason_action(
            self,
            request,
            queryset,
            title="Retire selected datasets",
            apply=lambda caller, dataset, reason: services.dataset_retire(
                caller=caller, dataset=dataset, reason=reason
            ),
        )


class UsedByInline(ReadOnlyInline):
    model = DatasetUsage
    fk_name = "dataset_version"
    fields = ("model_version", "role")
    verbose_name = "model version fed"
    verbose_name_plural = "lineage: model versions that used this snapshot"

    def get_queryset(self, request: HttpRequest) -> QuerySet[DatasetUsage]:
        visible = selectors.model_list(user=admin_caller(request).user)
        return (
            super()
            .get_queryset(request)
            .filter(model_version__model__in=visible)
            .select_related("model_version__model")
        )


@admin.register(DatasetVersion)
class DatasetVersionAdmin(ServiceAdmin):
    """Dataset snapshots are immutable; they are registered through the API."""

    list_display = ("dataset", "version", "row_count", "pii", "created_by", "created_at")
    list_filter = ("pii",)
    search_fields = ("dataset__name", "content_digest")
    list_select_related = ("dataset", "created_by")
    inlines = [UsedByInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[DatasetVersion]:
        visible = selectors.dataset_list(user=admin_caller(request).user)
        return DatasetVersion.objects.filter(dataset__in=visible).select_related("dataset")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [field.name for field in DatasetVersion._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

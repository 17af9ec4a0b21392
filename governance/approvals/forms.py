"""Forms of the approval pages. They parse input only: every write goes through
``governance.approvals.services``, which checks permissions, separation of duties and the
workflow, so the forms, the API and the admin refuse exactly the same things."""

from __future__ import annotations

from typing import Any

from django import forms

from governance.accounts.models import User
from governance.approvals import selectors, services
from governance.approvals.workflow import Decision, Meaning, RequestState
from governance.common.errors import DomainError
from registry import selectors as registry_selectors
from registry.models import ModelVersion


class RequestFilterForm(forms.Form):
    """Filters of the request list (GET)."""

    state = forms.ChoiceField(
        required=False, choices=[("", "Any state"), *RequestState.choices], label="State"
    )
    environment = forms.ChoiceField(required=False, label="Environment")
    awaiting = forms.BooleanField(required=False, label="Awaiting my signature")

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = selectors.environment_list(user=user).values_list("name", flat=True)
        self.fields["environment"].choices = [  # type: ignore[attr-defined]
            ("", "Any environment"),
            *((name, name) for name in names),
        ]


class VersionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        version: ModelVersion = obj
        return f"{version.model.name} v{version.version} ({version.artifact_digest[:19]}…)"


class DeploymentRequestForm(forms.Form):
    """Request a deployment of a version the user may see to an environment."""

    model_version = VersionChoiceField(
        queryset=ModelVersion.objects.none(),
        label="Model version",
        empty_label="Choose a model version",
    )
    environment = forms.ChoiceField(label="Environment")
    reason = forms.CharField(
        label="Justification",
        max_length=services.MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Why this version should go to this environment (recorded in the audit log).",
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model_version"].queryset = (  # type: ignore[attr-defined]
            ModelVersion.objects.filter(model__in=registry_selectors.model_list(user=user))
            .select_related("model")
            .order_by("model__name", "-version")
        )
        self.fields["environment"].choices = [  # type: ignore[attr-defined]
            (env.name, f"{env.name} — {env.description}" if env.description else env.name)
            for env in selectors.environment_list(user=user)
        ]


class SignForm(forms.Form):
    """A signature on the current step: decision, meaning, comment and the signer's password
    (re-authentication at the moment of signing, 21 CFR 11.200)."""

    decision = forms.ChoiceField(
        choices=Decision.choices, widget=forms.RadioSelect, label="Decision"
    )
    meaning = forms.ChoiceField(choices=Meaning.choices, widget=forms.RadioSelect, label="Meaning")
    comment = forms.CharField(
        required=False,
        max_length=services.MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Comment",
        help_text="Optional; recorded with your signature.",
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Enter your password again to sign.",
    )


class ReasonForm(forms.Form):
    """The reason given when withdrawing or revoking a request."""

    reason = forms.CharField(
        label="Reason",
        max_length=services.MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Recorded in the audit log.",
    )


def add_domain_error(form: forms.Form, error: DomainError) -> None:
    """Put a service's refusal on the form: its message on the form (the reason the page
    announces), and the field messages it names on those fields."""
    form.add_error(None, error.message)
    for name, messages in error.fields.items():
        if name in form.fields:
            for message in messages:
                form.add_error(name, message)

"""Forms of the approval pages. They parse input only: every write goes through
``governance.approvals.services``, which checks permissions, separation of duties and the
workflow, so the forms, the API and the admin refuse exactly the same things."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from django import forms

from core.accounts.models import User
from core.errors import DomainError
from core.reasons import MAX_REASON
from governance.approvals import selectors
from governance.approvals.models import FindingSeverity
from governance.approvals.readable import meaning_text
from governance.approvals.workflow import Decision, RequestState
from registry import selectors as registry_selectors
from registry.models import ModelVersion

SHA256_HEX = re.compile(r"[0-9a-f]{64}")


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
        max_length=MAX_REASON,
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


class ShownContentField(forms.Field):
    """Hidden values, one per input (``MultipleHiddenInput``), kept as a list of strings."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[str]:
        return [str(item) for item in value or []]


class SignForm(forms.Form):
    """A signature on the current step: decision, comment and the signer's password
    (re-authentication at the moment of signing, 21 CFR 11.200). The meaning is the step's:
    the page shows it and offers no choice (a posted meaning other than the step's is
    refused). A rejection needs a comment; approving while evidence the policy requires is
    missing, failed or stale needs the explicit ``acknowledge_evidence`` (the service's
    refusals land on those fields)."""

    decision = forms.ChoiceField(
        choices=Decision.choices, widget=forms.RadioSelect, label="Decision"
    )
    meaning = forms.CharField(required=False, widget=forms.HiddenInput)
    comment = forms.CharField(
        required=False,
        max_length=MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Comment",
        help_text="Required to reject: say why. Optional to approve. Recorded with your signature.",
    )
    acknowledge_evidence = forms.BooleanField(required=False, label="I acknowledge")
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Enter your password again to sign.",
    )
    # The SHA-256 of the content shown, one ``decision:meaning:<hex>`` per choice the page
    # offers, so the choice made binds the signature to what was shown without scripts.
    shown_content = ShownContentField(
        error_messages={
            "required": "The page did not say what it showed you: reload it and review it."
        }
    )

    def __init__(
        self,
        *args: Any,
        step_meaning: str | None = None,
        shortfalls: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.step_meaning = step_meaning
        self.shortfalls = list(shortfalls)
        if self.shortfalls:
            self.fields["acknowledge_evidence"].label = (
                "I have seen that this evidence is not passing and approve regardless: "
                + "; ".join(self.shortfalls)
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        decision = cleaned.get("decision")
        meaning = cleaned.get("meaning") or self.step_meaning or ""
        if self.step_meaning and meaning != self.step_meaning:
            self.add_error(
                None,
                f"A signature on this step means “{meaning_text(self.step_meaning)}”; it "
                f"cannot mean “{meaning_text(meaning)}”.",
            )
            return cleaned
        cleaned["meaning"] = meaning
        # A rejection without a comment and an approval without the acknowledgement are
        # refused by the service, after it has checked who may sign (as the API is).
        if decision and meaning and "shown_content" in cleaned:
            prefix = f"{decision}:{meaning}:"
            chosen = [v[len(prefix) :] for v in cleaned["shown_content"] if v.startswith(prefix)]
            if len(chosen) != 1 or not SHA256_HEX.fullmatch(chosen[0]):
                self.add_error(
                    None, "The page did not say what it showed you: reload it and review it."
                )
            else:
                cleaned["expected_content_sha256"] = chosen[0]
        return cleaned


def shown_content_values(digests: dict[tuple[str, str], str]) -> list[str]:
    """The hidden ``shown_content`` values of the sign form for (decision, meaning) -> SHA-256."""
    return [f"{decision}:{meaning}:{digest}" for (decision, meaning), digest in digests.items()]


class EmergencyForm(forms.Form):
    """Break-glass: deploy a version without sign-off (holders of the break-glass permission,
    the risk officers by default), with a mandatory justification and the password."""

    model_version = VersionChoiceField(
        queryset=ModelVersion.objects.none(),
        label="Model version",
        empty_label="Choose a model version",
    )
    environment = forms.ChoiceField(label="Environment")
    reason = forms.CharField(
        label="Justification",
        max_length=MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Why this cannot wait for sign-off (recorded; the retrospective reads it).",
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Enter your password again to break the glass.",
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model_version"].queryset = (  # type: ignore[attr-defined]
            ModelVersion.objects.filter(model__in=registry_selectors.model_list(user=user))
            .select_related("model")
            .order_by("model__name", "-version")
        )
        self.fields["environment"].choices = [  # type: ignore[attr-defined]
            (env.name, env.name) for env in selectors.environment_list(user=user)
        ]


class RetrospectiveForm(forms.Form):
    """The retrospective review of a break-glass deployment: decision, comment (required to
    reject), password."""

    decision = forms.ChoiceField(
        choices=Decision.choices,
        widget=forms.RadioSelect,
        label="Finding",
        initial=Decision.APPROVE,
        help_text="Approve: the emergency deployment was justified. Reject: it was not "
        "(recorded as the review's finding).",
    )
    comment = forms.CharField(
        required=False,
        max_length=MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Comment",
        help_text="Required to reject: say why the emergency deployment was not justified.",
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Enter your password again to sign.",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("decision") == Decision.REJECT and not cleaned.get("comment", "").strip():
            self.add_error("comment", "Say why you reject it: a rejection needs a comment.")
        return cleaned


class ReasonForm(forms.Form):
    """The reason given when withdrawing or revoking a request."""

    reason = forms.CharField(
        label="Reason",
        max_length=MAX_REASON,
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


class PersonChoiceField(forms.ModelChoiceField):
    """A person, shown by printed name and username."""

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.printed_name} ({obj.username})"


class FindingForm(forms.Form):
    """A finding against one version of a model: what is wrong, how severe, who must address
    it and by when (the fields of ``POST /api/v1/models/{name}/versions/{v}/findings``)."""

    title = forms.CharField(max_length=200, label="Finding")
    severity = forms.ChoiceField(
        choices=FindingSeverity.choices,
        label="Severity",
        help_text="An open high or critical finding blocks the gate for the version.",
    )
    owner = PersonChoiceField(
        queryset=User.objects.none(), label="Owner", help_text="Who must address it."
    )
    due_date = forms.DateField(
        required=False,
        label="Due date",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    description = forms.CharField(
        required=False, max_length=5000, label="Description", widget=forms.Textarea
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ModelChoiceField)
        owner.queryset = User.objects.filter(is_active=True, kind=User.Kind.PERSON).order_by(
            "first_name", "last_name", "username"
        )

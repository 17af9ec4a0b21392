"""The form of "request a report" on a model version: a fairness, drift or lineage report
on the version's registered dataset versions.

The form only collects; the API's serializer (``ReportRequestSerializer``) validates what it
collected, so the page and the API accept and refuse the same requests with the same
messages. Field names are the serializer's, so its errors land on the fields they name.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from django import forms

from governance.reports.models import ReportKind
from registry.models import DatasetUsage, DatasetVersion, LineageRole, ModelVersion

# The kinds a person requests from the pages (the regulator's PDF has its own page).
PAGE_KINDS = (ReportKind.FAIRNESS, ReportKind.DRIFT, ReportKind.LINEAGE)
DATASET_FIELDS = {
    ReportKind.FAIRNESS: ("evaluation_dataset_version",),
    ReportKind.DRIFT: ("reference_dataset_version", "current_dataset_version"),
    ReportKind.LINEAGE: (),
}
PARAMETER_FIELDS = {
    ReportKind.FAIRNESS: (
        "label",
        "prediction",
        "sensitive",
        "positive_label",
        "prediction_positive",
        "favorable_label",
        "privileged",
    ),
    ReportKind.DRIFT: ("columns", "exclude"),
    ReportKind.LINEAGE: (),
}
OVERRIDE_FIELDS = {
    ReportKind.FAIRNESS: ("min_impact_ratio", "max_equalized_odds_difference", "min_group_size"),
    ReportKind.DRIFT: ("drift_share", "threshold"),
    ReportKind.LINEAGE: (),
}
OVERRIDE_HINT = (
    "Leave empty to use the policy's value ({value}). A report computed with an override "
    "never counts as sign-off evidence."
)


def _rows(count: int) -> str:
    return f"{count:,} row" + ("" if count == 1 else "s")


def _usage_label(usage: DatasetUsage) -> str:
    found = usage.dataset_version
    return f"{found} · {usage.get_role_display().lower()} data · {_rows(found.row_count)}"


class ReportRequestForm(forms.Form):
    """The inputs and parameters of one kind of report on ``version``: dataset versions are
    chosen among those registered for the version (drift's current data also among the other
    dataset versions the person may see); ``thresholds`` (the policy's) are shown as the
    defaults the overrides replace."""

    evaluation_dataset_version = forms.TypedChoiceField(
        label="Evaluation data",
        coerce=int,
        help_text="A dataset version registered for this version. It counts as evidence only "
        "when it is the version's validation or test data.",
    )
    reference_dataset_version = forms.TypedChoiceField(
        label="Reference data",
        coerce=int,
        help_text="A dataset version registered for this version (it counts as evidence only "
        "then), usually its training or reference data.",
    )
    current_dataset_version = forms.TypedChoiceField(
        label="Current data",
        coerce=int,
        help_text="The data compared with the reference, for example a recent production sample.",
    )
    label = forms.CharField(label="Label column", max_length=200, help_text="The true outcome.")
    prediction = forms.CharField(
        label="Prediction column", max_length=200, help_text="The model's prediction."
    )
    sensitive = forms.CharField(
        label="Sensitive attributes",
        max_length=2000,
        help_text="Columns, separated by commas. It counts as evidence only if it covers every "
        "sensitive attribute the model declares.",
    )
    positive_label = forms.CharField(label="Positive label value", max_length=200, required=False)
    prediction_positive = forms.CharField(
        label="Positive prediction values",
        max_length=2000,
        required=False,
        help_text="Values of the prediction column read as positive, separated by commas.",
    )
    favorable_label = forms.CharField(
        label="Favorable outcome value", max_length=200, required=False
    )
    privileged = forms.CharField(
        label="Privileged groups",
        max_length=2000,
        required=False,
        help_text="COLUMN=VALUE pairs separated by commas.",
    )
    columns = forms.CharField(
        label="Columns and their types",
        max_length=10000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="COLUMN:numerical|categorical|ignore, separated by commas. Leave empty to "
        "compare every column, with types inferred.",
    )
    exclude = forms.CharField(
        label="Columns to leave out",
        max_length=10000,
        required=False,
        help_text="Columns separated by commas.",
    )
    min_impact_ratio = forms.DecimalField(
        label="Minimum four-fifths impact ratio", required=False, max_digits=6, decimal_places=4
    )
    max_equalized_odds_difference = forms.DecimalField(
        label="Maximum equalized-odds difference", required=False, max_digits=6, decimal_places=4
    )
    min_group_size = forms.IntegerField(label="Minimum group size", required=False)
    drift_share = forms.DecimalField(
        label="Share of drifted columns that means dataset drift",
        required=False,
        max_digits=6,
        decimal_places=4,
    )
    threshold = forms.DecimalField(
        label="One threshold for every column's drift test",
        required=False,
        max_digits=12,
        decimal_places=10,
    )

    def __init__(
        self,
        data: Any = None,
        *,
        kind: str,
        version: ModelVersion,
        others: list[DatasetVersion],
        thresholds: dict[str, str],
    ) -> None:
        super().__init__(data)
        self.kind = ReportKind(kind)
        usages = list(version.dataset_usages.all())
        registered = [(u.dataset_version.pk, _usage_label(u)) for u in usages]
        evaluation = [
            (u.dataset_version.pk, _usage_label(u))
            for u in usages
            if u.role in (LineageRole.VALIDATION, LineageRole.TEST)
        ]
        registered_ids = {u.dataset_version.pk for u in usages}
        elsewhere = [
            (found.pk, f"{found} · not registered for this version · {_rows(found.row_count)}")
            for found in others
            if found.pk not in registered_ids
        ]
        choose: list[tuple[Any, str]] = [("", "Choose a dataset version")]
        cast(forms.ChoiceField, self.fields["evaluation_dataset_version"]).choices = choose + (
            evaluation + [c for c in registered if c not in evaluation]
        )
        cast(forms.ChoiceField, self.fields["reference_dataset_version"]).choices = (
            choose + registered
        )
        cast(forms.ChoiceField, self.fields["current_dataset_version"]).choices = (
            choose + registered + elsewhere
        )
        if evaluation:
            self.fields["evaluation_dataset_version"].initial = evaluation[0][0]
        reference = [u for u in usages if u.role == LineageRole.REFERENCE] or [
            u for u in usages if u.role == LineageRole.TRAINING
        ]
        if reference:
            self.fields["reference_dataset_version"].initial = reference[0].dataset_version.pk
        declared = version.model.sensitive_attributes or []
        if declared:
            self.fields["sensitive"].initial = ", ".join(declared)
        for name in OVERRIDE_FIELDS[self.kind]:
            default = thresholds.get(name)
            field = self.fields[name]
            field.help_text = OVERRIDE_HINT.format(
                value=default if default is not None else "each column's default test"
            )
            if default is not None:
                field.widget.attrs["placeholder"] = default
        wanted = (
            set(DATASET_FIELDS[self.kind])
            | set(PARAMETER_FIELDS[self.kind])
            | set(OVERRIDE_FIELDS[self.kind])
        )
        for name in list(self.fields):
            if name not in wanted:
                del self.fields[name]

    def dataset_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in DATASET_FIELDS[self.kind]]

    def parameter_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in PARAMETER_FIELDS[self.kind]]

    def override_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in OVERRIDE_FIELDS[self.kind]]

    def request_data(self, *, model: str, version: int) -> dict[str, Any]:
        """What the API would receive for this request (valid form only): empty optional
        fields are left out, as an API client leaves them out."""
        data: dict[str, Any] = {"kind": self.kind.value, "model": model, "version": version}
        for name, value in self.cleaned_data.items():
            if value in (None, ""):
                continue
            data[name] = str(value) if isinstance(value, Decimal) else value
        return data

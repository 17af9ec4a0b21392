"""Report request and report representations for the API."""

from __future__ import annotations

import json
from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from governance.reports.engine.options import ColumnType
from governance.reports.models import Report, ReportKind
from governance.reports.summary import result_summary

LINEAGE_FIELDS = frozenset({"kind", "model", "version"})
REGULATOR_FIELDS = frozenset({"kind", "export"})


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class ReportRequestSerializer(serializers.Serializer):
    """``multipart/form-data`` (or JSON for a lineage report): the kind, the model version,
    the inputs (a file or a registered dataset version id per role: ``evaluation`` for
    fairness, ``reference`` and ``current`` for drift; a lineage report takes none: it is
    assembled from the registry, the sign-offs and the deployments), the columns, and optional
    threshold overrides (a report with overrides never counts as sign-off evidence). Lists are
    comma-separated."""

    kind = serializers.ChoiceField(choices=ReportKind.choices)
    model = serializers.CharField(max_length=100, required=False)
    version = serializers.IntegerField(min_value=1, required=False)
    export = serializers.UUIDField(
        required=False, help_text="regulator_export: the id of one of your done audit exports"
    )
    evaluation = serializers.FileField(required=False, allow_empty_file=True)
    reference = serializers.FileField(required=False, allow_empty_file=True)
    current = serializers.FileField(required=False, allow_empty_file=True)
    evaluation_dataset_version = serializers.IntegerField(required=False, min_value=1)
    reference_dataset_version = serializers.IntegerField(required=False, min_value=1)
    current_dataset_version = serializers.IntegerField(required=False, min_value=1)
    label = serializers.CharField(required=False, max_length=200)  # type: ignore[assignment]
    prediction = serializers.CharField(required=False, max_length=200)
    sensitive = serializers.CharField(required=False, max_length=2000, help_text="COL[,COL...]")
    positive_label = serializers.CharField(required=False, max_length=200)
    prediction_positive = serializers.CharField(
        required=False, max_length=2000, help_text="V[,V...]"
    )
    favorable_label = serializers.CharField(required=False, max_length=200)
    privileged = serializers.CharField(
        required=False, max_length=2000, help_text="COL=VALUE[,COL=VALUE...]"
    )
    columns = serializers.CharField(required=False, max_length=10000, help_text="COL:TYPE,...")
    exclude = serializers.CharField(required=False, max_length=10000, help_text="COL,...")
    min_impact_ratio = serializers.DecimalField(
        required=False, max_digits=6, decimal_places=4, min_value=0, max_value=1
    )
    max_equalized_odds_difference = serializers.DecimalField(
        required=False, max_digits=6, decimal_places=4, min_value=0, max_value=1
    )
    min_group_size = serializers.IntegerField(required=False, min_value=1)
    drift_share = serializers.DecimalField(
        required=False, max_digits=6, decimal_places=4, min_value=0, max_value=1
    )
    threshold = serializers.DecimalField(
        required=False, max_digits=12, decimal_places=10, min_value=0,
        help_text="one threshold for every column's drift method",
    )  # fmt: skip

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["kind"] == ReportKind.REGULATOR_EXPORT:
            extra = sorted(name for name in attrs if name not in REGULATOR_FIELDS)
            problems = {name: ["a regulator export takes only the export's id"] for name in extra}
            if "export" not in attrs:
                problems["export"] = ["required for a regulator export"]
            if problems:
                raise serializers.ValidationError(problems)
            return attrs
        missing = [name for name in ("model", "version") if name not in attrs]
        if missing:
            raise serializers.ValidationError(
                {name: ["This field is required."] for name in missing}
            )
        if "export" in attrs:
            raise serializers.ValidationError({"export": ["only for a regulator export"]})
        if attrs["kind"] == ReportKind.LINEAGE:
            extra = sorted(name for name in attrs if name not in LINEAGE_FIELDS)
            if extra:
                raise serializers.ValidationError(
                    {name: ["a lineage report takes no inputs or parameters"] for name in extra}
                )
        if attrs["kind"] == ReportKind.FAIRNESS:
            missing = [f for f in ("label", "prediction", "sensitive") if not attrs.get(f)]
            if missing:
                raise serializers.ValidationError(
                    {name: ["required for a fairness report"] for name in missing}
                )
        if attrs.get("drift_share") is not None and attrs["drift_share"] <= 0:
            raise serializers.ValidationError({"drift_share": ["must be in (0, 1]"]})
        return attrs

    def parameters(self) -> dict[str, Any]:
        """The engine's parameters of the request (what the report records)."""
        data = self.validated_data
        if data["kind"] in (ReportKind.LINEAGE, ReportKind.REGULATOR_EXPORT):
            return {}
        if data["kind"] == ReportKind.FAIRNESS:
            privileged: dict[str, str] = {}
            for item in _split(data.get("privileged", "")):
                column, sep, value = item.partition("=")
                if not sep or not column.strip():
                    raise serializers.ValidationError(
                        {"privileged": [f"{item!r}: expected COL=VALUE"]}
                    )
                privileged[column.strip()] = value.strip()
            return {
                "label": data["label"],
                "prediction": data["prediction"],
                "sensitive": _split(data["sensitive"]),
                "positive_label": data.get("positive_label"),
                "prediction_positive": _split(data.get("prediction_positive", "")) or None,
                "favorable_label": data.get("favorable_label"),
                "privileged": privileged,
            }
        types: dict[str, str] = {}
        for item in _split(data.get("columns", "")):
            column, sep, kind = item.rpartition(":")
            if not sep or not column or kind not in {t.value for t in ColumnType}:
                raise serializers.ValidationError(
                    {"columns": [f"{item!r}: expected COL:numerical|categorical|ignore"]}
                )
            types[column] = kind
        return {
            "column_types": types,
            "columns": list(types) or None,
            "exclude": _split(data.get("exclude", "")),
        }

    def overrides(self) -> dict[str, Any]:
        data = self.validated_data
        if data["kind"] in (ReportKind.LINEAGE, ReportKind.REGULATOR_EXPORT):
            return {}
        names = (
            ("min_impact_ratio", "max_equalized_odds_difference", "min_group_size")
            if data["kind"] == ReportKind.FAIRNESS
            else ("drift_share", "threshold")
        )
        return {name: data[name] for name in names if data.get(name) is not None}


class ReportInputSerializer(serializers.Serializer):
    role = serializers.CharField()
    name = serializers.CharField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    dataset_version = serializers.IntegerField(source="dataset_version_id", allow_null=True)


class ReportSerializer(serializers.ModelSerializer):
    """A report: status and progress while it runs; the verdict, a summary of the metrics,
    the PDF's SHA-256 and the audit seq at generation once done; ``error`` (``{code, message}``,
    as the API's error format has them) when failed."""

    model = serializers.SerializerMethodField()
    version = serializers.SerializerMethodField()
    export = serializers.UUIDField(source="audit_export_id", allow_null=True)
    progress = serializers.SerializerMethodField()
    stage = serializers.SerializerMethodField()
    inputs = ReportInputSerializer(many=True)
    requested_by = serializers.CharField(source="requested_by.username")
    summary = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = [
            "id", "kind", "model", "version", "export", "status", "progress", "stage", "verdict",
            "summary", "thresholds", "thresholds_overridden", "policy_label", "inputs",
            "parameters", "pdf_sha256", "audit_seq", "error", "attempts", "requested_by",
            "created_at", "started_at", "finished_at", "links",
        ]  # fmt: skip

    def get_model(self, report: Report) -> str | None:
        return report.model_version.model.name if report.model_version else None

    def get_version(self, report: Report) -> int | None:
        return report.model_version.version if report.model_version else None

    def get_progress(self, report: Report) -> int:
        return int(report.job.progress) if hasattr(report, "job") else 0

    def get_stage(self, report: Report) -> str:
        return str(report.job.stage) if hasattr(report, "job") else ""

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_summary(self, report: Report) -> dict[str, Any] | None:
        if not report.result_json:
            return None
        return result_summary(json.loads(report.result_json))

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"],
        }
    )
    def get_error(self, report: Report) -> dict[str, str] | None:
        """Why a failed report failed, as the API's error format has it; null otherwise."""
        if not report.error:
            return None
        return {"code": report.error_code or "invalid", "message": report.error}

    @extend_schema_field(
        {"type": "object", "properties": {"self": {"type": "string"}, "pdf": {"type": "string"}}}
    )
    def get_links(self, report: Report) -> dict[str, str | None]:
        done = report.status == "done"
        return {
            "self": reverse("reports:report-detail", args=[report.pk]),
            "pdf": reverse("reports:report-pdf", args=[report.pk]) if done else None,
        }

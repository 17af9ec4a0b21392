"""Input and output shapes of the registry API.

Input serializers check types, lengths and formats only; every business rule (who may,
which transitions, duplicates) stays in ``registry.services``. Output serializers name
people by username and related rows by name and number, never by database id.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import Group
from rest_framework import serializers

from core.accounts.models import User
from core.jsonvalues import FreeFormJSONField
from core.reasons import MAX_REASON
from registry.models import (
    DIGEST_PATTERN,
    SLUG_PATTERN,
    Dataset,
    DatasetVersion,
    LineageRole,
    ModelVersion,
    RegisteredModel,
    RiskTier,
    VersionStatus,
)
from registry.services import DatasetRef

DIGEST_MESSAGE = "Must be 'sha256:' followed by 64 lowercase hex digits."
SLUG_MESSAGE = "Lowercase letters, digits and hyphens, starting and ending alphanumeric."
MAX_TEXT = 5000
# Versions and row counts are stored in 64-bit signed columns.
MAX_BIGINT = 2**63 - 1


class TextField(serializers.CharField):
    """A JSON string and nothing else (DRF's CharField would turn 12 into "12")."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class WholeNumberField(serializers.IntegerField):
    """A JSON integer and nothing else (not "12", 12.0 or true)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class TruthField(serializers.BooleanField):
    """A JSON boolean and nothing else (not "yes" or 1)."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def _digest_field(**kwargs: Any) -> serializers.RegexField:
    # Not trimmed: a digest is compared byte for byte, so stray whitespace is an error.
    return serializers.RegexField(
        DIGEST_PATTERN,
        max_length=71,
        trim_whitespace=False,
        error_messages={"invalid": DIGEST_MESSAGE},
        **kwargs,
    )


def _reason_field(*, required: bool) -> serializers.CharField:
    return TextField(
        max_length=MAX_REASON, required=required, allow_blank=not required, trim_whitespace=True
    )


class StrictInputSerializer(serializers.Serializer):
    """Refuses fields it does not know, naming them, instead of silently ignoring them.

    ``redirect_fields`` maps a known-but-wrong field to the message telling where it goes.
    """

    redirect_fields: ClassVar[dict[str, str]] = {}

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            errors: dict[str, list[str]] = {}
            for name in data:
                if name in self.fields:
                    continue
                hint = self.redirect_fields.get(str(name))
                errors[str(name)] = [hint or "Unknown field; it cannot be set here."]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


def _usernames() -> Any:
    return User.objects.filter(is_active=True)


class ModelCreateSerializer(StrictInputSerializer):
    name = serializers.RegexField(
        SLUG_PATTERN, max_length=100, error_messages={"invalid": SLUG_MESSAGE}
    )
    risk_tier = serializers.ChoiceField(choices=RiskTier.choices)
    description = TextField(max_length=MAX_TEXT, required=False, allow_blank=True)
    intended_use = TextField(max_length=MAX_TEXT, required=False, allow_blank=True)
    limitations = TextField(max_length=MAX_TEXT, required=False, allow_blank=True)
    sensitive_attributes = serializers.ListField(
        child=TextField(max_length=100), required=False, max_length=100
    )
    next_review = serializers.DateField(required=False, allow_null=True)
    team: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="name", queryset=Group.objects.all(), required=False, allow_null=True
    )
    owner: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", queryset=_usernames(), required=False, allow_null=True
    )


class ModelUpdateSerializer(StrictInputSerializer):
    """The descriptive fields; risk tier and sensitive attributes have their own endpoint."""

    redirect_fields: ClassVar[dict[str, str]] = {
        "risk_tier": "Changed only through POST /api/v1/models/{name}/risk, with a reason.",
        "sensitive_attributes": (
            "Changed only through POST /api/v1/models/{name}/risk, with a reason."
        ),
        "status": "Retire a model with POST /api/v1/models/{name}/retire.",
    }

    description = TextField(max_length=MAX_TEXT, required=False, allow_blank=True)
    intended_use = TextField(max_length=MAX_TEXT, required=False, allow_blank=True)
    limitations = TextField(max_length=MAX_TEXT, required=False, allow_blank=True)
    next_review = serializers.DateField(required=False, allow_null=True)
    reason = _reason_field(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not set(attrs) - {"reason"}:
            raise serializers.ValidationError("Name at least one field to change.")
        return attrs


class ModelRiskSerializer(StrictInputSerializer):
    risk_tier = serializers.ChoiceField(choices=RiskTier.choices, required=False)
    sensitive_attributes = serializers.ListField(
        child=TextField(max_length=100), required=False, max_length=100
    )
    reason = _reason_field(required=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "risk_tier" not in attrs and "sensitive_attributes" not in attrs:
            raise serializers.ValidationError(
                "Name risk_tier or sensitive_attributes (or both) to change."
            )
        return attrs


class ReasonSerializer(StrictInputSerializer):
    reason = _reason_field(required=True)


class RegisteredModelSerializer(serializers.ModelSerializer):
    owner: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    team: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="name", read_only=True, allow_null=True
    )
    sensitive_attributes = serializers.ListField(child=TextField(), read_only=True)

    class Meta:
        model = RegisteredModel
        fields = [
            "name",
            "description",
            "owner",
            "team",
            "risk_tier",
            "intended_use",
            "limitations",
            "sensitive_attributes",
            "last_validated",
            "next_review",
            "status",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class DatasetRefSerializer(StrictInputSerializer):
    dataset = TextField(max_length=100)
    version = WholeNumberField(min_value=1, max_value=MAX_BIGINT)
    role = serializers.ChoiceField(choices=LineageRole.choices)


class ModelVersionRegisterSerializer(StrictInputSerializer):
    artifact_uri = TextField(max_length=1000)
    artifact_digest = _digest_field()
    framework = TextField(max_length=100, required=False, allow_blank=True)
    parameters = FreeFormJSONField(required=False)
    metrics = FreeFormJSONField(required=False)
    source_commit = TextField(max_length=100, required=False, allow_blank=True)
    training_run_id = TextField(max_length=200, required=False, allow_blank=True)
    environment_digest = TextField(max_length=200, required=False, allow_blank=True)
    random_seed = WholeNumberField(
        required=False, allow_null=True, min_value=-MAX_BIGINT - 1, max_value=MAX_BIGINT
    )
    parent_version = WholeNumberField(
        required=False, allow_null=True, min_value=1, max_value=MAX_BIGINT
    )
    datasets = DatasetRefSerializer(many=True, required=False)
    author: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", queryset=_usernames(), required=False, allow_null=True
    )
    version = WholeNumberField(required=False, allow_null=True, min_value=1, max_value=MAX_BIGINT)

    def service_arguments(self) -> dict[str, Any]:
        """The validated input as ``model_version_register`` keyword arguments."""
        data = dict(self.validated_data)
        data["datasets"] = [
            DatasetRef(dataset=ref["dataset"], version=ref["version"], role=ref["role"])
            for ref in data.get("datasets", [])
        ]
        return data


class StatusChangeSerializer(StrictInputSerializer):
    status = serializers.ChoiceField(choices=VersionStatus.choices)
    reason = _reason_field(required=True)


class DatasetUsageSerializer(serializers.Serializer):
    dataset = TextField(source="dataset_version.dataset.name")
    version = WholeNumberField(source="dataset_version.version")
    content_digest = TextField(source="dataset_version.content_digest")
    role = TextField()


class ModelVersionSerializer(serializers.ModelSerializer):
    model: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="name", read_only=True
    )
    parent_version = WholeNumberField(
        source="parent.version", read_only=True, allow_null=True, default=None
    )
    author: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    created_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    parameters = serializers.DictField(read_only=True)
    metrics = serializers.DictField(read_only=True)
    datasets = DatasetUsageSerializer(source="dataset_usages", many=True, read_only=True)

    class Meta:
        model = ModelVersion
        fields = [
            "model",
            "version",
            "artifact_uri",
            "artifact_digest",
            "framework",
            "parameters",
            "metrics",
            "source_commit",
            "training_run_id",
            "environment_digest",
            "random_seed",
            "parent_version",
            "author",
            "created_by",
            "created_at",
            "status",
            "datasets",
        ]
        read_only_fields = fields


class LineageNodeSerializer(serializers.Serializer):
    id = TextField()
    kind = serializers.ChoiceField(choices=["model_version", "dataset_version"])
    version = WholeNumberField()
    model = TextField(required=False)
    dataset = TextField(required=False)
    artifact_digest = TextField(required=False)
    content_digest = TextField(required=False)
    source_commit = TextField(required=False)
    status = TextField(required=False)
    created_at = TextField(required=False)
    row_count = WholeNumberField(required=False)
    pii = TruthField(required=False)


class LineageEdgeSerializer(serializers.Serializer):
    # "from" is a Python keyword, so the field is declared under another name and renamed.
    from_ = TextField()
    to = TextField()
    role = TextField()

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


class LineageSerializer(serializers.Serializer):
    """The data -> model graph of one version (``registry.selectors.lineage_get``)."""

    model = TextField()
    version = WholeNumberField()
    nodes = LineageNodeSerializer(many=True)
    edges = LineageEdgeSerializer(many=True)


class DatasetCreateSerializer(StrictInputSerializer):
    name = serializers.RegexField(
        SLUG_PATTERN, max_length=100, error_messages={"invalid": SLUG_MESSAGE}
    )
    description = TextField(max_length=MAX_TEXT, required=False, allow_blank=True)
    source_uri = TextField(max_length=1000, required=False, allow_blank=True)
    pii = TruthField(required=False)
    legal_basis = TextField(max_length=2000, required=False, allow_blank=True)


class DatasetUpdateSerializer(StrictInputSerializer):
    redirect_fields: ClassVar[dict[str, str]] = {
        "status": "Retire a dataset with POST /api/v1/datasets/{name}/retire.",
    }

    description = TextField(max_length=MAX_TEXT, required=False, allow_blank=True)
    source_uri = TextField(max_length=1000, required=False, allow_blank=True)
    pii = TruthField(required=False)
    legal_basis = TextField(max_length=2000, required=False, allow_blank=True)
    reason = _reason_field(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not set(attrs) - {"reason"}:
            raise serializers.ValidationError("Name at least one field to change.")
        return attrs


class DatasetVersionRegisterSerializer(StrictInputSerializer):
    content_digest = _digest_field()
    row_count = WholeNumberField(min_value=0, max_value=MAX_BIGINT)
    schema = FreeFormJSONField(child=TextField(max_length=100))
    pii = TruthField(required=False, allow_null=True)
    source_uri = TextField(max_length=1000, required=False, allow_blank=True)


class DatasetSerializer(serializers.ModelSerializer):
    owner: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = Dataset
        fields = [
            "name",
            "description",
            "source_uri",
            "owner",
            "pii",
            "legal_basis",
            "status",
            "created_at",
        ]
        read_only_fields = fields


class DatasetVersionSerializer(serializers.ModelSerializer):
    dataset: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="name", read_only=True
    )
    created_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    schema = serializers.DictField(child=TextField(), read_only=True)

    class Meta:
        model = DatasetVersion
        fields = [
            "dataset",
            "version",
            "source_uri",
            "content_digest",
            "row_count",
            "schema",
            "pii",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields

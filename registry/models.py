"""The model inventory: registered models, versions, datasets, dataset versions, lineage.

Rows change only through ``registry.services``. Nothing here is hard-deleted: models and
datasets are retired; a model version is immutable after registration except for its status.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import RegexValidator
from django.db import models

from core.roles import signing_permissions

DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}\Z"
SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?\Z"

digest_validator = RegexValidator(
    DIGEST_PATTERN, "must be 'sha256:' followed by 64 lowercase hex digits"
)
slug_validator = RegexValidator(
    SLUG_PATTERN, "lowercase letters, digits and hyphens, starting and ending alphanumeric"
)


class GovernedModel(models.Model):
    """Base of governed rows: deleting one is refused (retire it instead)."""

    class Meta:
        abstract = True

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError(f"{type(self).__name__} is governed: retire it, never delete it")


class RiskTier(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class ModelStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


class RegisteredModel(GovernedModel):
    """A model under governance; its risk tier and sensitive attributes choose the policy."""

    name = models.CharField(max_length=100, unique=True, validators=[slug_validator])
    description = models.TextField(blank=True, max_length=5000)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_models"
    )
    team = models.ForeignKey(
        Group, on_delete=models.PROTECT, null=True, blank=True, related_name="models"
    )
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices)
    intended_use = models.TextField(blank=True, max_length=5000)
    limitations = models.TextField(blank=True, max_length=5000)
    sensitive_attributes = models.JSONField(default=list, blank=True)
    last_validated = models.DateField(null=True, blank=True)
    next_review = models.DateField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=ModelStatus.choices, default=ModelStatus.ACTIVE
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("register_version_registeredmodel", "Can register versions of the model"),
            ("retire_registeredmodel", "Can retire the model"),
            ("change_risk_registeredmodel", "Can change risk tier and sensitive attributes"),
            *signing_permissions(),
        ]

    def __str__(self) -> str:
        return self.name


class VersionStatus(models.TextChoices):
    REGISTERED = "registered", "Registered"
    VALIDATED = "validated", "Validated"
    DEPRECATED = "deprecated", "Deprecated"
    RETIRED = "retired", "Retired"


class ModelVersion(GovernedModel):
    """One trained artifact of a model, immutable after registration except ``status``."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    artifact_uri = models.CharField(max_length=1000)
    artifact_digest = models.CharField(max_length=71, validators=[digest_validator])
    framework = models.CharField(max_length=100, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    source_commit = models.CharField(max_length=100, blank=True)
    training_run_id = models.CharField(max_length=200, blank=True)
    environment_digest = models.CharField(
        max_length=200, blank=True, help_text="container image or dependency lock digest"
    )
    random_seed = models.BigIntegerField(null=True, blank=True)
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="authored_versions"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="registered_versions"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(
        max_length=12, choices=VersionStatus.choices, default=VersionStatus.REGISTERED
    )

    class Meta:
        ordering = ["model__name", "version"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="model_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"


class DatasetStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


class Dataset(GovernedModel):
    """A named source of data; described by digests and schemas, never copied into Warden."""

    name = models.CharField(max_length=100, unique=True, validators=[slug_validator])
    description = models.TextField(blank=True, max_length=5000)
    source_uri = models.CharField(max_length=1000, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_datasets"
    )
    pii = models.BooleanField(default=False, help_text="contains personal data")
    legal_basis = models.TextField(blank=True, max_length=2000, help_text="and retention note")
    status = models.CharField(
        max_length=10, choices=DatasetStatus.choices, default=DatasetStatus.ACTIVE
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("register_version_dataset", "Can register versions of the dataset"),
        ]

    def __str__(self) -> str:
        return self.name


class DatasetVersion(GovernedModel):
    """An immutable snapshot of a dataset: content digest, row count, schema."""

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    source_uri = models.CharField(max_length=1000, blank=True)
    content_digest = models.CharField(max_length=71, validators=[digest_validator])
    row_count = models.BigIntegerField()
    schema = models.JSONField(default=dict, help_text="column -> type")
    pii = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="registered_datasets"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset__name", "version"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "version"], name="dataset_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.name} v{self.version}"


class LineageRole(models.TextChoices):
    TRAINING = "training", "Training"
    VALIDATION = "validation", "Validation"
    TEST = "test", "Test"
    REFERENCE = "reference", "Reference"


class DatasetUsage(GovernedModel):
    """Lineage: a dataset version used by a model version in a role; fixed at registration."""

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="dataset_usages"
    )
    dataset_version = models.ForeignKey(
        DatasetVersion, on_delete=models.PROTECT, related_name="usages"
    )
    role = models.CharField(max_length=12, choices=LineageRole.choices)

    class Meta:
        ordering = ["model_version", "role", "dataset_version"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "dataset_version", "role"], name="dataset_usage_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dataset_version} as {self.role} of {self.model_version}"

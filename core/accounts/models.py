"""People and service accounts, and the API keys they authenticate with.

Users are deactivated, never deleted: signers, owners and authors point at them with PROTECT.
API keys are random 32-byte secrets shown once and stored as SHA-256 hashes; each may carry its
own rate limit.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.contrib.auth.models import AbstractUser
from django.core.validators import MinValueValidator
from django.db import models


class User(AbstractUser):
    """A person, or a service account used by a CI pipeline (``kind``)."""

    class Kind(models.TextChoices):
        PERSON = "person", "Person"
        SERVICE = "service", "Service account"

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PERSON)

    class Meta:
        verbose_name = "user"
        verbose_name_plural = "users"
        swappable = "AUTH_USER_MODEL"

    @property
    def is_service_account(self) -> bool:
        return self.kind == self.Kind.SERVICE

    @property
    def printed_name(self) -> str:
        """The name shown on records and signatures."""
        return self.get_full_name() or self.username

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError("users are deactivated, never deleted")


class ApiKeyScope(models.TextChoices):
    """What a key may be used for. A scope only narrows what the key's account may do through
    its role and per-object grants; it grants nothing by itself. Whatever its scopes, no key
    signs, rejects, revokes, retires, changes a risk tier, grants signing, raises or resolves
    a finding, breaks the glass or publishes a policy (``core.permissions``)."""

    GATE_READ = "gate:read", "Ask the deployment gate (and read requests and findings)"
    REGISTRY_READ = "registry:read", "Read models, versions, datasets, lineage and reports"
    REGISTRY_WRITE = (
        "registry:write",
        "Register models, versions, datasets and dataset versions, change their descriptions "
        "(and read them)",
    )
    DEPLOYMENTS_WRITE = (
        "deployments:write",
        "Request deployments, withdraw one's own pending request, report deployments",
    )
    AUDIT_READ = "audit:read", "Read, verify and export the audit log"
    REPORTS_WRITE = "reports:write", "Request fairness, drift and lineage reports (and read them)"
    MONITORING_WRITE = (
        "monitoring:write",
        "Reserved for the monitors API; opens nothing yet",
    )


class ApiKey(models.Model):
    """A bearer key of a service account (or a person's personal token), stored hashed.

    ``rate_limit`` is the requests a minute the key may make (in fixed one-minute windows);
    without one, ``API_KEY_RATE_LIMIT_PER_MINUTE`` applies."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, help_text="shown to identify the key")
    hashed_key = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    rate_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="requests a minute; empty for the installation's default",
    )

    class Meta:
        verbose_name = "API key"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rate_limit__isnull=True) | models.Q(rate_limit__gte=1),
                name="api_key_rate_limit_positive",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

"""Environments, sign-off policies, deployment requests, sign-offs, gate checks and
deployments.

Rows change only through ``governance.approvals.services``; nothing here is hard-deleted. A
published policy is immutable (a change is a new version); a sign-off and a gate check are
never edited.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models

from governance.approvals.workflow import Decision, Meaning, RequestState
from registry.models import GovernedModel, ModelVersion, RiskTier, slug_validator


class ImmutableModel(GovernedModel):
    """A governed row written once: saving an existing row is refused."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise RuntimeError(f"{type(self).__name__} is immutable once written")
        super().save(*args, **kwargs)


class Environment(GovernedModel):
    """A place a model version is deployed to. ``position`` is the promotion order: a version
    must be live in the environment before (the next lower position) to be requested here."""

    name = models.CharField(max_length=50, unique=True, validators=[slug_validator])
    position = models.PositiveIntegerField(unique=True)
    description = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return self.name


class SignOffPolicy(ImmutableModel):
    """The sign-off an environment and risk tier require, as published under ``version``.

    ``steps`` is an ordered list of ``{name, roles, required, independent, meaning}``;
    ``evidence`` a list of ``{kind, thresholds, max_age_days}``. The newest version applies to
    new requests; a request keeps the version it started under.
    """

    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="policies")
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices)
    version = models.PositiveIntegerField()
    steps = models.JSONField(default=list, blank=True)
    evidence = models.JSONField(default=list, blank=True)
    approval_expiry_days = models.PositiveIntegerField(default=30)
    wait_seconds = models.PositiveIntegerField(
        default=0, help_text="wait after the final signature before the gate allows"
    )
    note = models.TextField(blank=True, max_length=2000)
    published_at = models.DateTimeField(auto_now_add=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True
    )

    class Meta:
        ordering = ["environment__position", "risk_tier", "version"]
        verbose_name = "sign-off policy"
        verbose_name_plural = "sign-off policies"
        permissions = [("publish_signoffpolicy", "Can publish a new policy version")]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "risk_tier", "version"], name="signoff_policy_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.environment.name}/{self.risk_tier} v{self.version}"


class DeploymentRequest(GovernedModel):
    """A request to deploy a model version to an environment, under one policy version.

    The state follows ``governance.approvals.workflow``; deploying itself is a ``Deployment``.
    """

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="deployment_requests"
    )
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="requests")
    policy = models.ForeignKey(SignOffPolicy, on_delete=models.PROTECT, related_name="requests")
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deployment_requests"
    )
    reason = models.TextField(max_length=2000)
    state = models.CharField(
        max_length=10, choices=RequestState.choices, default=RequestState.PENDING
    )
    created_at = models.DateTimeField(auto_now_add=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    effective_at = models.DateTimeField(
        null=True, blank=True, help_text="the gate allows from then (approval + wait)"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="closed_deployment_requests",
    )
    close_reason = models.TextField(blank=True, max_length=2000)
    retrospective_due_at = models.DateTimeField(
        null=True, blank=True, help_text="break-glass: the retrospective review is due by then"
    )
    retrospective_overdue_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="break-glass: when the missing retrospective review was raised as overdue",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("break_glass", "Can deploy without sign-off (break-glass)"),
            ("revoke_deploymentrequest", "Can revoke an approved deployment request"),
            ("grant_signing", "Can grant or revoke the right to sign for one model"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.model_version} to {self.environment.name}"


class SignOff(ImmutableModel):
    """An electronic signature on one step of a request (or its retrospective review).

    ``signed_content`` is what was signed (request, model, version, digest, environment,
    policy version, step, decision, meaning, signer, printed name, time, evidence digests) and
    ``signed_sha256`` the SHA-256 of its canonical JSON; the audit record carries both.
    """

    RETROSPECTIVE = "retrospective"

    request = models.ForeignKey(
        DeploymentRequest, on_delete=models.PROTECT, related_name="signoffs"
    )
    step = models.CharField(max_length=100)
    signer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signoffs"
    )
    decision = models.CharField(max_length=10, choices=Decision.choices)
    meaning = models.CharField(max_length=20, choices=Meaning.choices)
    printed_name = models.CharField(max_length=300)
    comment = models.TextField(blank=True, max_length=2000)
    signed_at = models.DateTimeField()
    signed_content = models.JSONField()
    signed_sha256 = models.CharField(max_length=64)
    # What the signer acknowledged approving without: each required evidence kind that was
    # missing, failed or stale at signing (``{"kind", "status"}``), as signed in the content.
    evidence_acknowledged = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["signed_at", "id"]
        verbose_name = "sign-off"
        constraints = [
            models.UniqueConstraint(fields=["request", "signer"], name="signoff_one_per_signer"),
        ]

    def __str__(self) -> str:
        return f"{self.step}: {self.decision} by {self.printed_name}"


class GateCheck(ImmutableModel):
    """One answer of the gate: who asked about which digest, and what it said."""

    check_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="gate_checks"
    )
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT)
    digest = models.CharField(max_length=71)
    allowed = models.BooleanField()
    status = models.CharField(max_length=20)
    reasons = models.JSONField(default=list)
    request = models.ForeignKey(DeploymentRequest, on_delete=models.PROTECT, null=True, blank=True)
    asked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    asked_at = models.DateTimeField()
    pipeline_run = models.CharField(max_length=1000, blank=True)
    commit = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-asked_at", "-id"]

    def __str__(self) -> str:
        return f"{self.check_id}: {'allowed' if self.allowed else 'denied'}"


class EvidenceEntry(models.Model):
    """One finished report offered as evidence, in the facts the gate judges it by: an index
    the reports app writes when a report is done (in the same transaction), so that the gate
    reads every candidate of a version in its one query instead of asking the reports app.

    ``eligible``: computed on the version's registered data without threshold overrides
    (the reports app's rules). ``covers``: the sensitive attributes a fairness report
    covered (None for a kind that has none). ``thresholds``: the values it was judged with,
    compared with the policy's at judgement. Derived from the reports; never edited.
    """

    report_id = models.CharField(max_length=36, unique=True)
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="evidence_entries"
    )
    kind = models.CharField(max_length=20)
    sha256 = models.CharField(max_length=64)
    computed_at = models.DateTimeField()
    passed = models.BooleanField()
    eligible = models.BooleanField()
    thresholds = models.JSONField(default=dict)
    covers = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["model_version", "kind"])]
        verbose_name_plural = "evidence entries"

    def __str__(self) -> str:
        return f"{self.kind} report {self.report_id}"


class DeploymentEvent(models.TextChoices):
    DEPLOYED = "deployed", "Deployed"
    ROLLED_BACK = "rolled_back", "Rolled back"
    RETIRED = "retired", "Retired"


class Deployment(ImmutableModel):
    """What actually happened in an environment, as reported by CI. ``unchecked`` marks a
    ``deployed`` report with no allowing gate check for the same digest, or one the gate no
    longer allowed when it was reported (an alert)."""

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="deployments"
    )
    environment = models.ForeignKey(
        Environment, on_delete=models.PROTECT, related_name="deployments"
    )
    event = models.CharField(max_length=12, choices=DeploymentEvent.choices)
    occurred_at = models.DateTimeField()
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    reported_at = models.DateTimeField(auto_now_add=True)
    pipeline_run = models.CharField(max_length=1000, blank=True)
    commit = models.CharField(max_length=100, blank=True)
    gate_check = models.ForeignKey(GateCheck, on_delete=models.PROTECT, null=True, blank=True)
    unchecked = models.BooleanField(default=False)

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [models.Index(fields=["environment", "occurred_at"])]

    def __str__(self) -> str:
        return f"{self.model_version} {self.event} in {self.environment.name}"


class FindingSeverity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class FindingStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


# An open finding of these severities blocks the gate for its version (``open_finding:<id>``).
BLOCKING_SEVERITIES = (FindingSeverity.HIGH, FindingSeverity.CRITICAL)


class Finding(GovernedModel):
    """A validator's or officer's finding against a model version (SR 11-7's effective
    challenge): what is wrong, how severe, who must address it and by when. Open high and
    critical findings block the gate until someone independent of the model resolves them.
    Changed only through ``services.finding_open`` and ``services.finding_resolve``."""

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="findings"
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=5000)
    severity = models.CharField(max_length=10, choices=FindingSeverity.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="owned_findings",
        help_text="who must address it",
    )
    due_date = models.DateField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=FindingStatus.choices, default=FindingStatus.OPEN
    )
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="raised_findings"
    )
    raised_at = models.DateTimeField(auto_now_add=True)
    resolution = models.TextField(blank=True, max_length=2000)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="resolved_findings",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_at", "-id"]
        indexes = [models.Index(fields=["model_version", "status"])]

    def __str__(self) -> str:
        return f"finding #{self.pk} ({self.severity}, {self.status}): {self.title}"

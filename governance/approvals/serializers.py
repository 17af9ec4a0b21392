"""Input and output shapes of the deployments API.

Input serializers check types, lengths and formats only; who may, which transitions and
separation of duties stay in ``governance.approvals.services``. People are named by username, models
and versions by name and number; requests by their id.
"""

from __future__ import annotations

import re
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from core.jsonvalues import FreeFormJSONField
from core.reasons import MAX_REASON
from core.roles import SIGNING_ROLES, Role
from governance.approvals.models import (
    Deployment,
    DeploymentEvent,
    DeploymentRequest,
    Environment,
    Finding,
    FindingSeverity,
    SignOff,
    SignOffPolicy,
)
from governance.approvals.workflow import (
    Decision,
    Meaning,
    RequestState,
    Signature,
    current_step,
    steps_from,
)
from registry.models import DIGEST_PATTERN, SLUG_PATTERN, RiskTier
from registry.serializers import (
    DIGEST_MESSAGE,
    MAX_BIGINT,
    SLUG_MESSAGE,
    StrictInputSerializer,
    TextField,
    WholeNumberField,
)


def _model_field() -> serializers.RegexField:
    return serializers.RegexField(
        SLUG_PATTERN, max_length=100, error_messages={"invalid": SLUG_MESSAGE}
    )


def _version_field() -> WholeNumberField:
    return WholeNumberField(min_value=1, max_value=MAX_BIGINT)


class RequestCreateSerializer(StrictInputSerializer):
    model = _model_field()
    version = _version_field()
    environment = TextField(max_length=50)
    reason = TextField(max_length=MAX_REASON)


class EmergencySerializer(RequestCreateSerializer):
    password = TextField(max_length=1000, required=False, allow_blank=True, trim_whitespace=False)


def _expected_content_field() -> serializers.RegexField:
    return serializers.RegexField(
        r"^[0-9a-f]{64}\Z",
        required=False,
        help_text=(
            "The `sha256` of the signing content you were shown (`GET .../signing-content`); "
            "when given, the signature is refused with 409 `content_changed` unless the "
            "content to sign, but the moment of signing, is still exactly that."
        ),
        error_messages={"invalid": "Enter 64 lowercase hexadecimal digits."},
    )


class SignSerializer(StrictInputSerializer):
    decision = serializers.ChoiceField(choices=Decision.choices)
    meaning = serializers.ChoiceField(
        choices=Meaning.choices,
        required=False,
        help_text="The step's meaning (the default); any other is refused.",
    )
    comment = TextField(
        max_length=MAX_REASON,
        required=False,
        allow_blank=True,
        help_text="Required with decision reject.",
    )
    password = TextField(max_length=1000, required=False, allow_blank=True, trim_whitespace=False)
    expected_content_sha256 = _expected_content_field()
    acknowledge_evidence = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Required (true) to approve while evidence the policy requires is missing, "
        "failed or stale; the acknowledgement is signed and kept with the signature.",
    )


class RejectSerializer(StrictInputSerializer):
    comment = TextField(
        max_length=MAX_REASON,
        required=False,
        allow_blank=True,
        help_text="Required: why the request is rejected (refused with 400 without it).",
    )
    password = TextField(max_length=1000, required=False, allow_blank=True, trim_whitespace=False)
    expected_content_sha256 = _expected_content_field()


class RetrospectiveSerializer(StrictInputSerializer):
    comment = TextField(max_length=MAX_REASON, required=False, allow_blank=True)
    password = TextField(max_length=1000, required=False, allow_blank=True, trim_whitespace=False)
    decision = serializers.ChoiceField(choices=Decision.choices, required=False)


class SigningContentQuerySerializer(StrictInputSerializer):
    decision = serializers.ChoiceField(choices=Decision.choices, default=Decision.APPROVE)
    meaning = serializers.ChoiceField(choices=Meaning.choices, required=False)


class SigningContentSerializer(serializers.Serializer):
    """What a signature with this decision and meaning would sign now, but the moment of
    signing, and the SHA-256 of its canonical JSON."""

    step = serializers.CharField()
    decision = serializers.CharField()
    meaning = serializers.CharField()
    content = serializers.DictField()
    sha256 = serializers.CharField()


class ReportSerializer(StrictInputSerializer):
    model = _model_field()
    version = _version_field()
    environment = TextField(max_length=50)
    event = serializers.ChoiceField(choices=DeploymentEvent.choices)
    occurred_at = serializers.DateTimeField(required=False)
    pipeline_run = TextField(max_length=1000, required=False, allow_blank=True)
    commit = TextField(max_length=100, required=False, allow_blank=True)
    check_id = serializers.UUIDField(required=False)


class GateQuerySerializer(StrictInputSerializer):
    model = _model_field()
    version = serializers.IntegerField(min_value=1, max_value=MAX_BIGINT)
    environment = serializers.CharField(max_length=50)
    digest = serializers.RegexField(
        DIGEST_PATTERN,
        max_length=71,
        trim_whitespace=False,
        error_messages={"invalid": DIGEST_MESSAGE},
    )
    pipeline_run = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    commit = serializers.CharField(max_length=100, required=False, allow_blank=True)


class GateStatusQuerySerializer(StrictInputSerializer):
    """The gate's question without the pipeline (nothing is recorded)."""

    model = _model_field()
    version = serializers.IntegerField(min_value=1, max_value=MAX_BIGINT)
    environment = serializers.CharField(max_length=50)
    digest = serializers.RegexField(
        DIGEST_PATTERN,
        max_length=71,
        trim_whitespace=False,
        error_messages={"invalid": DIGEST_MESSAGE},
    )


# The gate's question as CI sends it (already canonical) needs none of the serializers' work:
# a value with anything they would normalise or refuse goes to them, which word the errors.
_REQUIRED = ("model", "version", "environment", "digest")
_CANONICAL_VERSION = re.compile(r"[1-9][0-9]{0,18}\Z")
_SLUG = re.compile(SLUG_PATTERN)
_DIGEST = re.compile(DIGEST_PATTERN)


def _plain(value: str, longest: int, *, blank: bool) -> bool:
    """What a DRF ``CharField`` would keep exactly as it is: no surrounding whitespace, no
    NUL or surrogate, within its length (and not empty unless ``blank``)."""
    return (
        (blank or value != "")
        and len(value) <= longest
        and value == value.strip()
        and "\x00" not in value
        and not any("\ud800" <= c <= "\udfff" for c in value)
    )


def canonical_gate_question(data: dict[str, str], *, recorded: bool) -> dict[str, Any] | None:
    """The gate's question (``GateQuerySerializer`` when ``recorded``, else
    ``GateStatusQuerySerializer``) when every value is one those serializers would accept as
    it is; None for anything else, which the serializer then judges."""
    optional = {"pipeline_run": 1000, "commit": 100} if recorded else {}
    if not set(_REQUIRED) <= data.keys() or not data.keys() <= {*_REQUIRED, *optional}:
        return None
    model, version, environment, digest = (data[name] for name in _REQUIRED)
    if not (
        len(model) <= 100
        and _SLUG.match(model)
        and _CANONICAL_VERSION.match(version)
        and int(version) <= MAX_BIGINT
        and _plain(environment, 50, blank=False)
        and len(digest) <= 71
        and _DIGEST.match(digest)
        and all(
            _plain(data[name], longest, blank=True)
            for name, longest in optional.items()
            if name in data
        )
    ):
        return None
    question: dict[str, Any] = {
        "model": model, "version": int(version), "environment": environment, "digest": digest,
    }  # fmt: skip
    question.update({name: data[name] for name in optional if name in data})
    return question


class PolicyStepSerializer(StrictInputSerializer):
    name = TextField(max_length=100)
    roles = serializers.ListField(
        child=serializers.ChoiceField(choices=Role.choices), min_length=1, max_length=10
    )
    # The metaclass moves declared fields off the class, so this does not shadow
    # ``Field.required``; mypy sees only the class attribute.
    required = WholeNumberField(min_value=1, max_value=100, default=1)  # type: ignore[assignment]
    independent = serializers.BooleanField(default=False)
    meaning = serializers.ChoiceField(choices=Meaning.choices, default=Meaning.APPROVAL)


class PolicyEvidenceSerializer(StrictInputSerializer):
    kind = serializers.ChoiceField(choices=[("fairness", "Fairness"), ("drift", "Drift")])
    thresholds = FreeFormJSONField(required=False, default=dict)
    max_age_days = WholeNumberField(min_value=1, max_value=3650, required=False, allow_null=True)


class PolicyPublishSerializer(StrictInputSerializer):
    """A new version of the policy of an environment and risk tier. Shapes only: unique step
    names, reserved names and the evidence thresholds are checked by the service."""

    environment = TextField(max_length=50)
    risk_tier = serializers.ChoiceField(choices=RiskTier.choices)
    steps = serializers.ListField(child=PolicyStepSerializer(), max_length=20)
    evidence = serializers.ListField(
        child=PolicyEvidenceSerializer(), max_length=10, required=False, default=list
    )
    approval_expiry_days = WholeNumberField(min_value=1, max_value=3650, default=30)
    wait_seconds = WholeNumberField(min_value=0, max_value=30 * 24 * 3600, default=0)
    note = TextField(max_length=MAX_REASON, required=False, allow_blank=True, default="")


class LiveQuerySerializer(StrictInputSerializer):
    at = serializers.DateTimeField(required=False)


class EnvironmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Environment
        fields = ["name", "position", "description"]


class PolicySerializer(serializers.ModelSerializer):
    environment: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="name", read_only=True
    )
    published_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="Who published this version; null for the installation's seeded defaults.",
    )
    steps = serializers.ListField(child=serializers.DictField(), read_only=True)
    evidence = serializers.ListField(child=serializers.DictField(), read_only=True)

    class Meta:
        model = SignOffPolicy
        fields = [
            "environment",
            "risk_tier",
            "version",
            "steps",
            "evidence",
            "approval_expiry_days",
            "wait_seconds",
            "note",
            "published_at",
            "published_by",
        ]


class SignOffSerializer(serializers.ModelSerializer):
    signer: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    signed_content = serializers.DictField(read_only=True)

    class Meta:
        model = SignOff
        fields = [
            "step",
            "signer",
            "printed_name",
            "decision",
            "meaning",
            "comment",
            "signed_at",
            "signed_sha256",
            "signed_content",
            "evidence_acknowledged",
        ]


class DeploymentRequestSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model_version.model.name", read_only=True)
    version = serializers.IntegerField(source="model_version.version", read_only=True)
    artifact_digest = serializers.CharField(source="model_version.artifact_digest", read_only=True)
    environment: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="name", read_only=True
    )
    requester: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    closed_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    policy = serializers.SerializerMethodField()
    pending_step = serializers.SerializerMethodField()
    signoffs = SignOffSerializer(many=True, read_only=True)
    retrospective_overdue = serializers.SerializerMethodField()

    class Meta:
        model = DeploymentRequest
        fields = [
            "id",
            "model",
            "version",
            "artifact_digest",
            "environment",
            "policy",
            "requester",
            "reason",
            "state",
            "pending_step",
            "created_at",
            "approved_at",
            "effective_at",
            "expires_at",
            "closed_at",
            "closed_by",
            "close_reason",
            "retrospective_due_at",
            "retrospective_overdue",
            "signoffs",
        ]

    def get_policy(self, obj: DeploymentRequest) -> dict[str, Any]:
        return {
            "environment": obj.policy.environment.name,
            "risk_tier": obj.policy.risk_tier,
            "version": obj.policy.version,
        }

    def get_pending_step(self, obj: DeploymentRequest) -> str | None:
        if obj.state != RequestState.PENDING:
            return None
        signatures = [Signature(s.step, s.signer_id, s.decision) for s in obj.signoffs.all()]
        step = current_step(steps_from(obj.policy.steps), signatures)
        return step.name if step else None

    def get_retrospective_overdue(self, obj: DeploymentRequest) -> bool:
        return bool(
            obj.state == RequestState.EMERGENCY
            and obj.retrospective_due_at is not None
            and obj.retrospective_due_at < timezone.now()
            and not obj.signoffs.all()
        )


class DeploymentSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model_version.model.name", read_only=True)
    version = serializers.IntegerField(source="model_version.version", read_only=True)
    artifact_digest = serializers.CharField(source="model_version.artifact_digest", read_only=True)
    environment: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="name", read_only=True
    )
    reported_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    check_id = serializers.UUIDField(source="gate_check.check_id", read_only=True, default=None)

    class Meta:
        model = Deployment
        fields = [
            "model",
            "version",
            "artifact_digest",
            "environment",
            "event",
            "occurred_at",
            "reported_by",
            "reported_at",
            "pipeline_run",
            "commit",
            "check_id",
            "unchecked",
        ]


class LiveEntrySerializer(serializers.Serializer):
    model = serializers.CharField()
    version = serializers.IntegerField()
    artifact_digest = serializers.CharField()


class LiveSerializer(serializers.Serializer):
    environment = serializers.CharField()
    at = serializers.DateTimeField()
    live = LiveEntrySerializer(many=True)


class GateStatusSerializer(serializers.Serializer):
    """The gate's answer now, not recorded (no ``check_id`` or ``audit_seq``)."""

    allowed = serializers.BooleanField()
    status = serializers.CharField()
    reasons = serializers.ListField(child=serializers.CharField())
    request = serializers.IntegerField(allow_null=True)
    signoffs = SignOffSerializer(many=True)


class GateAnswerSerializer(GateStatusSerializer):
    """The gate's recorded answer."""

    check_id = serializers.UUIDField()
    audit_seq = serializers.IntegerField()


class FindingCreateSerializer(StrictInputSerializer):
    """A finding against the version in the URL: what is wrong, how severe, who must address
    it (a username) and by when."""

    title = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    severity = serializers.ChoiceField(choices=FindingSeverity.choices)
    owner = serializers.CharField(max_length=150, help_text="username of who must address it")
    due_date = serializers.DateField(required=False, allow_null=True)


class FindingResolveSerializer(StrictInputSerializer):
    resolution = serializers.CharField(max_length=2000)


class SigningGrantChangeSerializer(StrictInputSerializer):
    """Who (one username or one group name) may, or may no longer, sign the model's requests
    in which role, and why."""

    role = serializers.ChoiceField(choices=[(role.value, role.label) for role in SIGNING_ROLES])
    user = serializers.CharField(max_length=150, required=False, help_text="a username")
    group = serializers.CharField(max_length=150, required=False, help_text="a group (team) name")
    reason = serializers.CharField(max_length=2000)


class SigningGrantSerializer(serializers.Serializer):
    """A per-model signing grant (read only)."""

    model = serializers.SerializerMethodField()
    role = serializers.CharField()
    user = serializers.SerializerMethodField()
    group = serializers.SerializerMethodField()

    def get_model(self, grant: Any) -> str:
        return str(self.context["model"].name)

    def get_user(self, grant: Any) -> str | None:
        return grant.user.get_username() if grant.user is not None else None

    def get_group(self, grant: Any) -> str | None:
        return grant.group.name if grant.group is not None else None


class VersionFindingSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model_version.model.name", read_only=True)
    version = serializers.IntegerField(source="model_version.version", read_only=True)
    owner: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    raised_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    resolved_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    blocks_gate = serializers.SerializerMethodField()

    class Meta:
        model = Finding
        fields = [
            "id", "model", "version", "title", "description", "severity", "owner", "due_date",
            "status", "blocks_gate", "raised_by", "raised_at", "resolution", "resolved_by",
            "resolved_at",
        ]  # fmt: skip

    def get_blocks_gate(self, finding: Finding) -> bool:
        from governance.approvals.models import BLOCKING_SEVERITIES, FindingStatus

        return finding.status == FindingStatus.OPEN and finding.severity in BLOCKING_SEVERITIES

"""REST API v1 of sign-off and deployment: environments, policies, deployment requests and
their signatures, break-glass, deployments reported by CI, what is live, and the gate.

Views are thin: an input serializer parses, a selector finds what the caller may see (out of
scope is 404) and one service does the write. Domain errors become HTTP in
``core.exceptions.api_exception_handler``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from core.accounts.callers import Caller
from core.accounts.models import User
from core.api import READ_ERRORS, WRITE_ERRORS, SelectorView, request_user, validated
from core.errors import InvalidInput
from core.permissions import (
    DeploymentRequestAccess,
    DeploymentsAccess,
    GateAccess,
    PersonOnly,
    ScopedPermission,
    SigningAccess,
)
from core.schema import error_responses
from governance.approvals import selectors, services
from governance.approvals.models import (
    Deployment,
    DeploymentRequest,
    Environment,
    Finding,
    SignOffPolicy,
)
from governance.approvals.serializers import (
    DeploymentRequestSerializer,
    DeploymentSerializer,
    EmergencySerializer,
    EnvironmentSerializer,
    FindingCreateSerializer,
    FindingResolveSerializer,
    GateAnswerSerializer,
    GateQuerySerializer,
    GateStatusQuerySerializer,
    GateStatusSerializer,
    LiveQuerySerializer,
    LiveSerializer,
    PolicyPublishSerializer,
    PolicySerializer,
    RejectSerializer,
    ReportSerializer,
    RequestCreateSerializer,
    RetrospectiveSerializer,
    SigningContentQuerySerializer,
    SigningContentSerializer,
    SigningGrantChangeSerializer,
    SigningGrantSerializer,
    SignOffSerializer,
    SignSerializer,
    VersionFindingSerializer,
    canonical_gate_question,
)
from governance.approvals.workflow import Decision
from registry import selectors as registry_selectors
from registry.models import RegisteredModel
from registry.serializers import ReasonSerializer


@extend_schema(summary="Environments in promotion order", tags=["deployments"])
class EnvironmentListView(SelectorView, generics.ListAPIView):
    """A version must have been deployed to the previous environment before the next."""

    permission_classes = [DeploymentRequestAccess]
    queryset = Environment.objects.none()
    serializer_class = EnvironmentSerializer

    def selected(self) -> QuerySet:
        return selectors.environment_list(user=request_user(self.request))


class PolicyAccess(ScopedPermission):
    """Policies: read like deployment requests; publishing is a person's act (an
    administrator, ``approvals.publish_signoffpolicy``, checked by the service), never a key's."""

    read_scopes = DeploymentRequestAccess.read_scopes
    write_scopes: ClassVar[tuple[str, ...]] = ()


@extend_schema_view(
    get=extend_schema(summary="Published sign-off policies, every version"),
    post=extend_schema(
        summary="Publish the next version of a sign-off policy (administrators)",
        request=PolicyPublishSerializer,
        responses={201: PolicySerializer, **WRITE_ERRORS},
    ),
)
@extend_schema(tags=["deployments"])
class PolicyListView(SelectorView, generics.ListAPIView):
    """Policies per environment and risk tier; a published version never changes, and open
    requests keep the version they started under."""

    permission_classes = [PolicyAccess]
    queryset = SignOffPolicy.objects.none()
    serializer_class = PolicySerializer

    def selected(self) -> QuerySet:
        return selectors.policy_list(user=request_user(self.request))

    def post(self, request: Request) -> Response:
        data = validated(PolicyPublishSerializer, request.data)
        policy = services.signoff_policy_publish(caller=Caller.from_request(request), **data)
        return Response(PolicySerializer(policy).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(
        summary="Deployment requests of the models you may see",
        parameters=[
            OpenApiParameter("model", str),
            OpenApiParameter("environment", str),
            OpenApiParameter("state", str),
        ],
        responses={200: DeploymentRequestSerializer, **READ_ERRORS},
    ),
    post=extend_schema(
        summary="Request a deployment of a model version to an environment",
        request=RequestCreateSerializer,
        responses={201: DeploymentRequestSerializer, **WRITE_ERRORS},
    ),
)
@extend_schema(tags=["deployments"])
class RequestListView(SelectorView, generics.ListAPIView):
    """Requests keep the policy version they started under."""

    permission_classes = [DeploymentRequestAccess]
    queryset = DeploymentRequest.objects.none()
    serializer_class = DeploymentRequestSerializer

    def selected(self) -> QuerySet:
        params = self.request.query_params
        return selectors.deployment_request_list(
            user=request_user(self.request),
            model=params.get("model"),
            environment=params.get("environment"),
            state=params.get("state"),
        )

    def post(self, request: Request) -> Response:
        data = validated(RequestCreateSerializer, request.data)
        version = registry_selectors.model_version_get(
            user=request_user(request), model_name=data["model"], version=data["version"]
        )
        created = services.deployment_request_submit(
            caller=Caller.from_request(request),
            version=version,
            environment=data["environment"],
            reason=data["reason"],
        )
        return Response(DeploymentRequestSerializer(created).data, status=status.HTTP_201_CREATED)


@extend_schema(
    summary="One deployment request, with its signatures",
    responses={200: DeploymentRequestSerializer, **READ_ERRORS},
    tags=["deployments"],
)
class RequestDetailView(generics.GenericAPIView):
    """A request of a model the caller may see; otherwise 404."""

    permission_classes = [DeploymentRequestAccess]
    serializer_class = DeploymentRequestSerializer

    def get(self, request: Request, request_id: int) -> Response:
        found = selectors.deployment_request_get(user=request_user(request), request_id=request_id)
        return Response(DeploymentRequestSerializer(found).data)


def _answer(request: Request, request_id: int) -> Response:
    found = selectors.deployment_request_get(user=request_user(request), request_id=request_id)
    return Response(DeploymentRequestSerializer(found).data)


@extend_schema(
    summary="What a signature on the current step would sign now, and its SHA-256",
    description=(
        "The exact content (but the moment of signing, added at signing) a signature with "
        "this decision and meaning would sign: the request, model, version, artifact digest, "
        "environment, policy, step, signer, printed name and the digests of the evidence "
        "shown. Send its `sha256` as `expected_content_sha256` when signing to bind the "
        "signature to it. Nothing is recorded; separation of duties is checked at signing."
    ),
    parameters=[SigningContentQuerySerializer],
    responses={200: SigningContentSerializer, **error_responses(400, 401, 403, 404, 409)},
    tags=["deployments"],
)
class SigningContentView(generics.GenericAPIView):
    """The content to sign (``services.signoff_preview``)."""

    permission_classes = [SigningAccess]
    serializer_class = SigningContentSerializer

    def get(self, request: Request, request_id: int) -> Response:
        found = selectors.deployment_request_get(user=request_user(request), request_id=request_id)
        data = validated(SigningContentQuerySerializer, request.query_params.dict())
        preview = services.signoff_preview(
            user=request_user(request),
            request=found,
            decision=data["decision"],
            meaning=data.get("meaning"),
        )
        return Response(
            {
                "step": preview.step.name,
                "decision": preview.decision,
                "meaning": preview.meaning,
                "content": preview.content,
                "sha256": preview.sha256,
            }
        )


@extend_schema(
    summary="Sign the current step (approve or reject), re-entering your password",
    description=(
        "Separation of duties: the requester and the version's author never sign; one person "
        "signs one step; independent steps exclude the model's owner; the step's role is "
        "required. Refusals are 403 with the rule as `error.code` and are recorded. With "
        "`expected_content_sha256` (from `GET .../signing-content`), a signature whose content "
        "changed since (the evidence, for example) is refused with 409 `content_changed`, "
        "recorded as a security event. The meaning is the step's (another is 400); a "
        "rejection needs a `comment` (400); approving while evidence the policy requires is "
        "missing, failed or stale needs `acknowledge_evidence: true` (else 400 "
        "`evidence_not_acknowledged`), and the acknowledgement is signed and kept."
    ),
    request=SignSerializer,
    responses={201: SignOffSerializer, **WRITE_ERRORS},
    tags=["deployments"],
)
class RequestSignView(generics.GenericAPIView):
    """An electronic signature: a person in a session, with their password."""

    permission_classes = [SigningAccess]
    serializer_class = SignSerializer

    def post(self, request: Request, request_id: int) -> Response:
        found = selectors.deployment_request_get(user=request_user(request), request_id=request_id)
        data = validated(SignSerializer, request.data)
        signoff = services.signoff_sign(
            caller=Caller.from_request(request),
            request=found,
            decision=data["decision"],
            meaning=data.get("meaning"),
            comment=data.get("comment", ""),
            password=data.get("password"),
            expected_content_sha256=data.get("expected_content_sha256"),
            acknowledge_evidence=data.get("acknowledge_evidence", False),
        )
        return Response(SignOffSerializer(signoff).data, status=status.HTTP_201_CREATED)


@extend_schema(
    summary="Reject the request (a signature with decision reject)",
    request=RejectSerializer,
    responses={201: SignOffSerializer, **WRITE_ERRORS},
    tags=["deployments"],
)
class RequestRejectView(generics.GenericAPIView):
    """One rejection by any signer of the current step rejects the request."""

    permission_classes = [SigningAccess]
    serializer_class = RejectSerializer

    def post(self, request: Request, request_id: int) -> Response:
        found = selectors.deployment_request_get(user=request_user(request), request_id=request_id)
        data = validated(RejectSerializer, request.data)
        signoff = services.signoff_sign(
            caller=Caller.from_request(request),
            request=found,
            decision=Decision.REJECT,
            comment=data.get("comment", ""),
            password=data.get("password"),
            expected_content_sha256=data.get("expected_content_sha256"),
        )
        return Response(SignOffSerializer(signoff).data, status=status.HTTP_201_CREATED)


@extend_schema(
    summary="Withdraw a pending request (its requester)",
    request=ReasonSerializer,
    responses={200: DeploymentRequestSerializer, **WRITE_ERRORS},
    tags=["deployments"],
)
class RequestWithdrawView(generics.GenericAPIView):
    """Only the requester withdraws, only while pending; a pipeline's key with
    ``deployments:write`` may withdraw the requests its account made."""

    permission_classes = [DeploymentRequestAccess]
    serializer_class = ReasonSerializer

    def post(self, request: Request, request_id: int) -> Response:
        caller = Caller.from_request(request)
        found = selectors.deployment_request_get(user=caller.user, request_id=request_id)
        services.deployment_request_withdraw_authorize(caller=caller, request=found)
        data = validated(ReasonSerializer, request.data)
        services.deployment_request_withdraw(caller=caller, request=found, reason=data["reason"])
        return _answer(request, request_id)


@extend_schema(
    summary="Revoke an approval (risk or compliance officers)",
    request=ReasonSerializer,
    responses={200: DeploymentRequestSerializer, **WRITE_ERRORS},
    tags=["deployments"],
)
class RequestRevokeView(generics.GenericAPIView):
    """What is live stays live; the gate denies new deployments (``revoked``). Revoking is
    an officer's decision in a session: no API key may revoke."""

    permission_classes = [PersonOnly]
    serializer_class = ReasonSerializer

    def post(self, request: Request, request_id: int) -> Response:
        caller = Caller.from_request(request)
        found = selectors.deployment_request_get(user=caller.user, request_id=request_id)
        services.deployment_request_revoke_authorize(caller=caller, request=found)
        data = validated(ReasonSerializer, request.data)
        services.deployment_request_revoke(caller=caller, request=found, reason=data["reason"])
        return _answer(request, request_id)


@extend_schema(
    summary="Break-glass: allow a deployment without sign-off (re-enter your password)",
    request=EmergencySerializer,
    responses={201: DeploymentRequestSerializer, **WRITE_ERRORS},
    tags=["deployments"],
)
class EmergencyView(generics.GenericAPIView):
    """Holders of the break-glass permission (risk officers); a retrospective review must
    follow before ``retrospective_due_at``."""

    permission_classes = [SigningAccess]
    serializer_class = EmergencySerializer

    def post(self, request: Request) -> Response:
        data = validated(EmergencySerializer, request.data)
        version = registry_selectors.model_version_get(
            user=request_user(request), model_name=data["model"], version=data["version"]
        )
        created = services.deployment_emergency(
            caller=Caller.from_request(request),
            version=version,
            environment=data["environment"],
            reason=data["reason"],
            password=data.get("password"),
        )
        return Response(DeploymentRequestSerializer(created).data, status=status.HTTP_201_CREATED)


@extend_schema(
    summary="Sign the retrospective review of a break-glass deployment",
    request=RetrospectiveSerializer,
    responses={201: SignOffSerializer, **WRITE_ERRORS},
    tags=["deployments"],
)
class RetrospectiveView(generics.GenericAPIView):
    """Signed by a validator or officer other than the one who broke the glass."""

    permission_classes = [SigningAccess]
    serializer_class = RetrospectiveSerializer

    def post(self, request: Request, request_id: int) -> Response:
        found = selectors.deployment_request_get(user=request_user(request), request_id=request_id)
        data = validated(RetrospectiveSerializer, request.data)
        signoff = services.signoff_retrospective(
            caller=Caller.from_request(request),
            request=found,
            decision=data.get("decision", Decision.APPROVE),
            comment=data.get("comment", ""),
            password=data.get("password"),
        )
        return Response(SignOffSerializer(signoff).data, status=status.HTTP_201_CREATED)


@extend_schema(
    summary="Report a deployment, rollback or retirement (CI, scope deployments:write)",
    request=ReportSerializer,
    responses={201: DeploymentSerializer, **WRITE_ERRORS},
    tags=["deployments"],
)
class DeploymentReportView(generics.GenericAPIView):
    """What actually happened; a rollback names the version that was live and makes the
    previously live version live again."""

    permission_classes = [DeploymentsAccess]
    serializer_class = ReportSerializer

    def post(self, request: Request) -> Response:
        data = validated(ReportSerializer, request.data)
        version = registry_selectors.model_version_get(
            user=request_user(request), model_name=data.pop("model"), version=data.pop("version")
        )
        deployment = services.deployment_report(
            caller=Caller.from_request(request), version=version, **data
        )
        return Response(DeploymentSerializer(deployment).data, status=status.HTTP_201_CREATED)


@extend_schema(
    summary="Which version of each model was live in the environment at an instant",
    parameters=[OpenApiParameter("at", str, description="ISO 8601 time; default now")],
    responses={200: LiveSerializer, **error_responses(400, 401, 403, 404)},
    tags=["deployments"],
)
class LiveView(generics.GenericAPIView):
    """Computed from the reported deployments, rollbacks and retirements."""

    permission_classes = [DeploymentRequestAccess]
    serializer_class = LiveSerializer

    def get(self, request: Request, environment: str) -> Response:
        data = validated(LiveQuerySerializer, request.query_params.dict())
        at = data.get("at") or timezone.now()
        live = selectors.live_list(user=request_user(request), environment_name=environment, at=at)
        return Response({"environment": environment, "at": at.isoformat(), "live": live})


@extend_schema(
    summary="The deployment history of a model, per environment",
    parameters=[OpenApiParameter("environment", str)],
    responses={200: DeploymentSerializer, **READ_ERRORS},
    tags=["deployments"],
)
class DeploymentHistoryView(SelectorView, generics.ListAPIView):
    """Every reported event of the model, by environment then time."""

    permission_classes = [DeploymentRequestAccess]
    queryset = Deployment.objects.none()
    serializer_class = DeploymentSerializer

    def selected(self) -> QuerySet:
        return selectors.deployment_history(
            user=request_user(self.request),
            model_name=self.kwargs["name"],
            environment_name=self.request.query_params.get("environment"),
        )


class FindingAccess(ScopedPermission):
    """Findings: any key of the pipeline may read them (the gate's reasons name them); they
    are raised and resolved by people in a session, never with an API key."""

    read_scopes = DeploymentRequestAccess.read_scopes
    write_scopes = ()


@extend_schema_view(
    get=extend_schema(
        summary="The findings against a version, newest first",
        responses={200: VersionFindingSerializer, **READ_ERRORS},
    ),
    post=extend_schema(
        summary="Raise a finding against a version (validators and officers)",
        description=(
            "An open `high` or `critical` finding blocks the gate for the version "
            "(`open_finding:<id>`) until someone independent of the model resolves it."
        ),
        request=FindingCreateSerializer,
        responses={201: VersionFindingSerializer, **WRITE_ERRORS},
    ),
)
@extend_schema(tags=["deployments"])
class FindingListView(SelectorView, generics.ListAPIView):
    """Findings: SR 11-7's effective challenge, recorded against a model version."""

    permission_classes = [FindingAccess]
    queryset = Finding.objects.none()
    serializer_class = VersionFindingSerializer

    def selected(self) -> QuerySet:
        return selectors.finding_list(
            user=request_user(self.request),
            model_name=self.kwargs["name"],
            version=self.kwargs["version"],
        )

    def post(self, request: Request, name: str, version: int) -> Response:
        user = request_user(request)
        found = registry_selectors.model_version_get(user=user, model_name=name, version=version)
        caller = Caller.from_request(request)
        services.finding_open_authorize(caller=caller, version=found)
        data = validated(FindingCreateSerializer, request.data)
        owner = User.objects.filter(username=data["owner"]).first()
        if owner is None:
            raise InvalidInput(
                f"owner {data['owner']!r} is not a Warden account",
                fields={"owner": ["Unknown username."]},
            )
        finding = services.finding_open(
            caller=caller,
            version=found,
            title=data["title"],
            description=data.get("description") or "",
            severity=data["severity"],
            owner=owner,
            due_date=data.get("due_date"),
        )
        return Response(VersionFindingSerializer(finding).data, status=status.HTTP_201_CREATED)


@extend_schema(
    summary="One finding",
    responses={200: VersionFindingSerializer, **READ_ERRORS},
    tags=["deployments"],
)
class FindingDetailView(generics.GenericAPIView):
    permission_classes = [FindingAccess]
    serializer_class = VersionFindingSerializer

    def get(self, request: Request, finding_id: int) -> Response:
        found = selectors.finding_get(user=request_user(request), finding_id=finding_id)
        return Response(VersionFindingSerializer(found).data)


@extend_schema(
    summary="Resolve a finding (a validator or officer independent of the model)",
    request=FindingResolveSerializer,
    responses={200: VersionFindingSerializer, **WRITE_ERRORS},
    tags=["deployments"],
)
class FindingResolveView(generics.GenericAPIView):
    permission_classes = [FindingAccess]
    serializer_class = FindingResolveSerializer

    def post(self, request: Request, finding_id: int) -> Response:
        caller = Caller.from_request(request)
        found = selectors.finding_get(user=caller.user, finding_id=finding_id)
        services.finding_resolve_authorize(caller=caller, finding=found)
        data = validated(FindingResolveSerializer, request.data)
        resolved = services.finding_resolve(
            caller=caller, finding=found, resolution=data["resolution"]
        )
        return Response(VersionFindingSerializer(resolved).data)


class SigningGrantAccess(ScopedPermission):
    """Signing grants: pipeline keys may read who can sign; only people in a session grant
    and revoke (the service checks ``approvals.grant_signing``)."""

    read_scopes = DeploymentRequestAccess.read_scopes
    write_scopes = ()


def _signing_change(request: Request, name: str, *, grant: bool) -> Response:
    caller = Caller.from_request(request)
    model = registry_selectors.model_get(user=caller.user, name=name)
    services.signing_change_authorize(caller=caller, model=model)
    data = validated(SigningGrantChangeSerializer, request.data)
    # Naming exactly one of the two is the service's rule (``_grantee``).
    user = group = None
    if "user" in data:
        user = User.objects.filter(username=data["user"]).first()
        if user is None:
            raise InvalidInput(
                f"user {data['user']!r} is not a Warden account",
                fields={"user": ["Unknown username."]},
            )
    if "group" in data:
        group = Group.objects.filter(name=data["group"]).first()
        if group is None:
            raise InvalidInput(
                f"group {data['group']!r} does not exist", fields={"group": ["Unknown group."]}
            )
    change = services.signing_grant if grant else services.signing_revoke
    done = change(
        caller=caller,
        model=model,
        role=data["role"],
        reason=data["reason"],
        user=user,
        group=group,
    )
    body = SigningGrantSerializer(done, context={"model": model}).data
    return Response(body, status=status.HTTP_201_CREATED if grant else status.HTTP_200_OK)


@extend_schema_view(
    get=extend_schema(
        summary="Who may sign for a model through a per-model grant",
        description=(
            "Besides the members of a step's role groups, a person or a team granted "
            "`sign_as_<role>` on the model may sign its requests in that role. Separation of "
            "duties applies to them as to everyone."
        ),
        responses={200: SigningGrantSerializer(many=True), **READ_ERRORS},
    ),
    post=extend_schema(
        summary="Grant a person or a team the right to sign for the model in a role",
        description=(
            "Risk officers and administrators (`approvals.grant_signing`); never to "
            "themselves or to a group of theirs (`grant_needs_another_person`). Recorded as "
            "`signing.granted` with the reason."
        ),
        request=SigningGrantChangeSerializer,
        responses={201: SigningGrantSerializer, **WRITE_ERRORS},
    ),
)
@extend_schema(tags=["deployments"])
class SigningGrantListView(generics.GenericAPIView):
    permission_classes = [SigningGrantAccess]
    queryset = RegisteredModel.objects.none()
    serializer_class = SigningGrantSerializer
    pagination_class = None

    def get(self, request: Request, name: str) -> Response:
        model = registry_selectors.model_get(user=request_user(request), name=name)
        grants = registry_selectors.signing_grant_list(model=model)
        return Response(SigningGrantSerializer(grants, many=True, context={"model": model}).data)

    def post(self, request: Request, name: str) -> Response:
        return _signing_change(request, name, grant=True)


@extend_schema(
    summary="Revoke a per-model signing grant",
    description="Recorded as `signing.revoked`; signatures already given stand.",
    request=SigningGrantChangeSerializer,
    responses={200: SigningGrantSerializer, **WRITE_ERRORS},
    tags=["deployments"],
)
class SigningGrantRevokeView(generics.GenericAPIView):
    permission_classes = [SigningGrantAccess]
    queryset = RegisteredModel.objects.none()
    serializer_class = SigningGrantChangeSerializer

    def post(self, request: Request, name: str) -> Response:
        return _signing_change(request, name, grant=False)


def _gate_question(
    request: Request, serializer_class: type[BaseSerializer]
) -> tuple[dict[str, Any], selectors.GateDecision]:
    asked = request.query_params.dict()
    data = canonical_gate_question(
        asked, recorded=serializer_class is GateQuerySerializer
    ) or validated(serializer_class, asked)
    decision = selectors.gate_question(
        user=request_user(request),
        model=data["model"],
        version=data["version"],
        environment=data["environment"],
        digest=data["digest"],
    )
    return data, decision


def _gate_body(decision: selectors.GateDecision) -> dict[str, Any]:
    return {
        "allowed": decision.allowed,
        "status": decision.status,
        "reasons": decision.reasons,
        "request": decision.request_id,
        "signoffs": SignOffSerializer(decision.signoffs, many=True).data,
    }


@extend_schema(
    summary="May this artifact be deployed to this environment now?",
    description=(
        "Always 200 for a well-formed question: `allowed` with machine-readable `reasons` "
        "(`not_requested`, `pending_step:<name>`, `rejected`, `expired`, `revoked`, "
        "`digest_mismatch`, `previous_environment_missing`, `retired`, "
        "`waiting_until:<time>`, `evidence_missing:<kind>`, `evidence_failed:<kind>`, "
        "`evidence_stale:<kind>`). HTTP errors never mean denied. Every check is recorded "
        "(`GET /api/v1/gate/status` answers the same question without recording it)."
    ),
    parameters=[
        OpenApiParameter("model", str, required=True),
        OpenApiParameter("version", int, required=True),
        OpenApiParameter("environment", str, required=True),
        OpenApiParameter("digest", str, required=True),
        OpenApiParameter("pipeline_run", str),
        OpenApiParameter("commit", str),
    ],
    responses={200: GateAnswerSerializer, **error_responses(400, 401, 403, 404)},
    tags=["gate"],
)
class GateView(generics.GenericAPIView):
    """The CI gate (scope ``gate:read``)."""

    permission_classes = [GateAccess]
    serializer_class = GateAnswerSerializer

    def get(self, request: Request) -> Response:
        data, decision = _gate_question(request, GateQuerySerializer)
        answer = services.gate_record(
            caller=Caller.from_request(request),
            decision=decision,
            pipeline_run=data.get("pipeline_run", ""),
            commit=data.get("commit", ""),
        )
        return Response(
            {
                **_gate_body(decision),
                "check_id": str(answer.check.check_id),
                "audit_seq": answer.audit_seq,
            }
        )


@extend_schema(
    summary="The gate's answer now, not recorded (for polling while a sign-off is pending)",
    description=(
        "The same question and the same decision as `GET /api/v1/gate`, answered the same way "
        "(always 200 for a well-formed question, the same reason codes, the same HTTP errors), "
        "but nothing is recorded: no gate check, no audit record, hence no `check_id` or "
        "`audit_seq`. It cannot back a deployment report: ask `GET /api/v1/gate` for the "
        "final, recorded answer (`warden-gate --wait` polls this, then asks the gate once)."
    ),
    parameters=[
        OpenApiParameter("model", str, required=True),
        OpenApiParameter("version", int, required=True),
        OpenApiParameter("environment", str, required=True),
        OpenApiParameter("digest", str, required=True),
    ],
    responses={200: GateStatusSerializer, **error_responses(400, 401, 403, 404)},
    tags=["gate"],
)
class GateStatusView(generics.GenericAPIView):
    """The gate's unrecorded answer (scope ``gate:read``)."""

    permission_classes = [GateAccess]
    serializer_class = GateStatusSerializer

    def get(self, request: Request) -> Response:
        _, decision = _gate_question(request, GateStatusQuerySerializer)
        return Response(_gate_body(decision))

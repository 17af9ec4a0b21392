"""Reads behind each person's home page, as plain data.

Every selector takes the person whose home it is and sees only the models they may see
(``registry.selectors.visible_models``): requests, deployments, reports and findings are
reached through those models, never around them. The whole home is a fixed number of
queries whatever the number of models (one per kind of row, no query per row).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone
from guardian.models import GroupObjectPermission, UserObjectPermission

from audit.actions import AuditAction
from audit.checkpoints import latest_checkpoint
from audit.models import AuditRecord, LogHead
from audit.verification import VerificationTrigger
from core.accounts.models import User
from core.errors import DomainError
from core.roles import Role
from governance.approvals.decision import step_signatures
from governance.approvals.models import (
    Deployment,
    DeploymentEvent,
    DeploymentRequest,
    Environment,
    Finding,
    FindingStatus,
    SignOff,
)
from governance.approvals.workflow import (
    Decision,
    Parties,
    RequestState,
    check_signer,
    current_step,
    live_versions,
    steps_from,
)
from governance.reports.models import Report, ReportKind, ReportStatus, Verdict
from registry.models import ModelVersion, RegisteredModel, RiskTier
from registry.selectors import SIGNING_CODENAMES, visible_models

# Roles whose home is the oversight of every model they may see.
OVERSIGHT_ROLES = frozenset(
    {Role.VALIDATOR, Role.RISK_OFFICER, Role.COMPLIANCE_OFFICER, Role.AUDITOR, Role.ADMIN}
)
# Roles whose home is their own models.
BUILDER_ROLES = frozenset({Role.DATA_SCIENTIST, Role.ML_ENGINEER})
# Roles that see the audit log's verification status and latest checkpoint.
AUDIT_ROLES = frozenset({Role.AUDITOR, Role.ADMIN})
# Roles that may act on requests from the pages (an auditor only reads).
ACTING_ROLES = frozenset(set(Role.values) - {Role.AUDITOR})

# Approvals expiring within this window are listed as about to expire.
EXPIRY_WINDOW = dt.timedelta(days=7)
# Periodic reviews due within this window are listed before they are overdue.
REVIEW_WINDOW = dt.timedelta(days=30)
TIER_ORDER = (RiskTier.CRITICAL, RiskTier.HIGH, RiskTier.MEDIUM, RiskTier.LOW)
# The states of a request under which a version may have been deployed.
DEPLOYABLE_STATES = (
    RequestState.APPROVED,
    RequestState.EMERGENCY,
    RequestState.EXPIRED,
    RequestState.REVOKED,
)


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}{'' if count == 1 else 's'}"


def duration_phrase(seconds: float) -> str:
    """A length of time in its largest whole unit: "45 seconds", "1 hour", "12 days"."""
    seconds = abs(seconds)
    for size, unit in ((86400 * 365, "year"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            return _plural(int(seconds // size), unit)
    return _plural(int(seconds), "second")


def relative_phrase(when: dt.datetime, now: dt.datetime) -> str:
    """``when`` as seen from ``now``: "just now", "5 minutes ago", "in 2 days"."""
    delta = (now - when).total_seconds()
    if abs(delta) < 60:
        return "just now" if delta >= 0 else "in under a minute"
    text = duration_phrase(delta)
    return f"{text} ago" if delta > 0 else f"in {text}"


def date_phrase(day: dt.date, today: dt.date) -> str:
    """A due date as seen from ``today``: "today", "tomorrow", "3 days overdue", "in 5 days"."""
    days = (day - today).days
    if days == 0:
        return "today"
    if days == 1:
        return "tomorrow"
    if days == -1:
        return "1 day overdue"
    return f"in {days} days" if days > 0 else f"{-days} days overdue"


@dataclass(frozen=True)
class Moment:
    """An instant and how long ago (or how soon) it is."""

    at: dt.datetime
    phrase: str

    @classmethod
    def of(cls, at: dt.datetime, now: dt.datetime) -> Moment:
        return cls(at=at, phrase=relative_phrase(at, now))


@dataclass(frozen=True)
class LiveBadge:
    environment: str
    version: int


@dataclass(frozen=True)
class InventoryRow:
    name: str
    status: str
    status_label: str
    owner: str
    team: str
    version_count: int
    latest_version: int | None
    live_in: list[LiveBadge]
    next_review: dt.date | None


@dataclass(frozen=True)
class TierGroup:
    tier: str
    label: str
    rows: list[InventoryRow]
    active: int
    retired: int


@dataclass(frozen=True)
class LiveRow:
    model: str
    version: int
    since: Moment
    signed_by: list[str]
    break_glass_by: str | None
    retrospective_by: str | None
    request_id: int | None


@dataclass(frozen=True)
class EnvironmentLive:
    name: str
    rows: list[LiveRow]


@dataclass(frozen=True)
class WaitingRow:
    request_id: int
    model: str
    version: int
    environment: str
    step: str
    roles: list[str]
    on_you: bool
    waiting_since: Moment
    signatures: int


@dataclass(frozen=True)
class ReportRef:
    report_id: str
    version: int
    verdict: str
    verdict_label: str
    finished: Moment


@dataclass(frozen=True)
class VerdictRow:
    model: str
    fairness: ReportRef | None
    drift: ReportRef | None


@dataclass(frozen=True)
class FindingRow:
    title: str
    severity: str
    severity_label: str
    model: str
    version: int
    owner: str
    due_date: dt.date | None
    due_phrase: str
    overdue: bool
    raised: Moment


@dataclass(frozen=True)
class ReviewRow:
    kind: str  # "periodic" or "retrospective"
    model: str
    version: int | None
    environment: str | None
    request_id: int | None
    due: str  # the due date or time, as shown
    due_phrase: str
    overdue: bool


@dataclass(frozen=True)
class ExpiringRow:
    request_id: int
    model: str
    version: int
    environment: str
    expires: Moment


@dataclass(frozen=True)
class LeadTime:
    model: str
    registered: dt.datetime
    first_prod: dt.datetime | None
    phrase: str | None


@dataclass(frozen=True)
class Metrics:
    prod: str | None
    lead_times: list[LeadTime]
    drift_done: int
    drift_failed: int
    drift_rate: str | None
    deployments: int
    break_glass: int
    break_glass_share: str | None


@dataclass(frozen=True)
class OwnRequest:
    request_id: int
    environment: str
    state: str
    state_label: str
    created: Moment


@dataclass(frozen=True)
class OwnVersion:
    version: int
    status_label: str
    created: Moment
    live_in: list[str]
    requests: list[OwnRequest]


@dataclass(frozen=True)
class OwnModel:
    name: str
    risk_label: str
    status_label: str
    owner: str
    team: str
    versions: list[OwnVersion]


@dataclass(frozen=True)
class AuditStatus:
    """What the home says about the audit log: the latest recorded whole-log verification
    and the latest signed checkpoint, read as stored (nothing is re-verified on page load)."""

    log_size: int
    verified: bool | None
    verified_size: int | None
    verified_at: Moment | None
    verified_trigger: str | None
    first_bad_seq: int | None
    failure_code: str | None
    checkpoint_size: int | None
    checkpoint_root: str | None
    checkpoint_keys: list[str]
    checkpoint_at: Moment | None
    uncovered: int


@dataclass
class Home:
    """Everything one person's home shows; the sections their roles call for are filled."""

    roles: list[str]
    oversight: bool
    builder: bool
    audit: bool
    read_only: bool
    now: dt.datetime
    inventory: list[TierGroup] = field(default_factory=list)
    model_count: int = 0
    live: list[EnvironmentLive] = field(default_factory=list)
    waiting: list[WaitingRow] = field(default_factory=list)
    waiting_on_you: int = 0
    verdicts: list[VerdictRow] = field(default_factory=list)
    findings: list[FindingRow] = field(default_factory=list)
    reviews: list[ReviewRow] = field(default_factory=list)
    expiring: list[ExpiringRow] = field(default_factory=list)
    metrics: Metrics | None = None
    own_models: list[OwnModel] = field(default_factory=list)
    audit_status: AuditStatus | None = None


def person_roles(user: User) -> frozenset[str]:
    """The Warden roles ``user`` holds through their groups."""
    if not user.is_active:
        return frozenset()
    return frozenset(set(user.groups.values_list("name", flat=True)) & set(Role.values))


def signing_grants(user: User) -> dict[int, frozenset[str]]:
    """Model pk -> the roles ``user`` may sign that model's requests in through per-model
    grants to them or their groups (two queries for every model at once)."""
    content_type = ContentType.objects.get_for_model(RegisteredModel)
    wanted = {"content_type": content_type, "permission__codename__in": list(SIGNING_CODENAMES)}
    rows: list[tuple[str, str]] = list(
        UserObjectPermission.objects.filter(user=user, **wanted).values_list(
            "object_pk", "permission__codename"
        )
    )
    rows += list(
        GroupObjectPermission.objects.filter(group__user=user, **wanted).values_list(
            "object_pk", "permission__codename"
        )
    )
    grants: dict[int, set[str]] = defaultdict(set)
    for object_pk, codename in rows:
        grants[int(object_pk)].add(SIGNING_CODENAMES[codename])
    return {pk: frozenset(roles) for pk, roles in grants.items()}


def _visible(user: User) -> QuerySet[RegisteredModel]:
    return RegisteredModel.objects.filter(visible_models(user))


def _role_label(role: str) -> str:
    try:
        return str(Role(role).label)
    except ValueError:
        return role


@dataclass(frozen=True)
class _Live:
    version: ModelVersion
    since: dt.datetime
    deployment: Deployment


def _live_by_environment(
    deployments: Sequence[Deployment],
) -> dict[int, dict[int, _Live]]:
    """Environment pk -> model pk -> what is live now, since when, and the deployment event
    that made it so (``workflow.live_versions`` replayed event by event)."""
    by_key: dict[tuple[int, int], list[Deployment]] = defaultdict(list)
    for event in deployments:
        by_key[(event.environment_id, event.model_version.model_id)].append(event)
    out: dict[int, dict[int, _Live]] = defaultdict(dict)
    for (env_id, model_id), events in by_key.items():
        live_id: int | None = None
        since: _Live | None = None
        for index, event in enumerate(events):
            after = live_versions(
                (e.model_version.model_id, e.model_version_id, e.event) for e in events[: index + 1]
            ).get(model_id)
            if after != live_id:
                live_id = after
                since = None
                if after is not None:
                    made = next(
                        (
                            e
                            for e in reversed(events[: index + 1])
                            if e.model_version_id == after and e.event == DeploymentEvent.DEPLOYED
                        ),
                        event,
                    )
                    version = made.model_version
                    since = _Live(version=version, since=event.occurred_at, deployment=made)
        if since is not None:
            out[env_id][model_id] = since
    return out


def _backing_request(
    deployment: Deployment, requests: dict[tuple[int, int], list[DeploymentRequest]]
) -> DeploymentRequest | None:
    """The request a deployment went out under: its gate check's, else the newest request
    for the same version and environment made before it in a state that allowed it."""
    check = deployment.gate_check
    if check is not None and check.request_id is not None:
        for request in requests.get((deployment.model_version_id, deployment.environment_id), []):
            if request.pk == check.request_id:
                return request
    candidates = [
        r
        for r in requests.get((deployment.model_version_id, deployment.environment_id), [])
        if r.state in DEPLOYABLE_STATES and r.created_at <= deployment.occurred_at
    ]
    return max(candidates, key=lambda r: (r.created_at, r.pk), default=None)


def _is_break_glass(request: DeploymentRequest | None) -> bool:
    # A break-glass request keeps its retrospective due time even once revoked.
    return request is not None and request.retrospective_due_at is not None


def _step_signers(request: DeploymentRequest) -> list[str]:
    return [
        s.printed_name
        for s in request.signoffs.all()
        if s.step != SignOff.RETROSPECTIVE and s.decision == Decision.APPROVE
    ]


def _retrospective(request: DeploymentRequest) -> SignOff | None:
    return next((s for s in request.signoffs.all() if s.step == SignOff.RETROSPECTIVE), None)


def _percent(part: int, whole: int) -> str | None:
    if whole == 0:
        return None
    value = 100 * part / whole
    return f"{value:.0f}%" if value == int(value) else f"{value:.1f}%"


def home_for(user: User, *, now: dt.datetime | None = None) -> Home:
    """The home of ``user``: the sections their roles call for (the union for several
    roles), each limited to the models they may see."""
    now = now or timezone.now()
    roles = person_roles(user)
    oversight = bool(roles & OVERSIGHT_ROLES) or (user.is_superuser and user.is_active)
    builder = bool(roles & BUILDER_ROLES)
    home = Home(
        roles=[str(Role(r).label) for r in Role.values if r in roles],
        oversight=oversight,
        builder=builder,
        audit=bool(roles & AUDIT_ROLES) or (user.is_superuser and user.is_active),
        read_only=not (roles & ACTING_ROLES) and not user.is_superuser,
        now=now,
    )
    if not (oversight or builder):
        return home

    models = list(
        _visible(user)
        .select_related("owner", "team")
        .annotate(version_count=Count("versions"), latest_version=Max("versions__version"))
        .order_by("name")
    )
    by_pk = {m.pk: m for m in models}
    visible_ids = _visible(user).values("pk")
    environments = list(Environment.objects.order_by("position"))
    deployments = list(
        Deployment.objects.filter(model_version__model_id__in=visible_ids)
        .select_related("model_version", "gate_check")
        .order_by("occurred_at", "id")
    )
    requests = list(
        DeploymentRequest.objects.filter(model_version__model_id__in=visible_ids)
        .select_related("model_version", "environment", "policy", "requester")
        .prefetch_related("signoffs")
        .order_by("-created_at", "-id")
    )
    requests_by_key: dict[tuple[int, int], list[DeploymentRequest]] = defaultdict(list)
    for request in requests:
        request.model_version.model = by_pk[request.model_version.model_id]
        requests_by_key[(request.model_version_id, request.environment_id)].append(request)
    live = _live_by_environment(deployments)
    live_names: dict[int, list[str]] = defaultdict(list)  # model version pk -> environments
    model_live: dict[int, list[LiveBadge]] = defaultdict(list)
    for env in environments:
        for model_id, entry in live.get(env.pk, {}).items():
            live_names[entry.version.pk].append(env.name)
            model_live[model_id].append(LiveBadge(env.name, entry.version.version))

    if oversight:
        _fill_oversight(
            home,
            user=user,
            roles=roles,
            models=models,
            environments=environments,
            deployments=deployments,
            requests=requests,
            requests_by_key=requests_by_key,
            live=live,
        )
        home.model_count = len(models)
        home.inventory = _inventory(models, model_live)
    waiting = _waiting(user, roles, requests, now)
    # Builders' own homes list only what they may sign; oversight lists every request.
    home.waiting = waiting if oversight else [w for w in waiting if w.on_you]
    home.waiting_on_you = sum(1 for w in waiting if w.on_you)
    if builder:
        home.own_models = _own_models(user, models, requests, live_names)
        if not oversight:
            home.findings = _open_findings(user, now, concerning=user)
    if home.audit:
        home.audit_status = audit_status(now=now)
    return home


def _inventory(
    models: Sequence[RegisteredModel], model_live: dict[int, list[LiveBadge]]
) -> list[TierGroup]:
    """The models by risk tier (highest first), each with its status and where it is live."""
    groups = []
    for tier in TIER_ORDER:
        rows = []
        for model in models:
            if model.risk_tier != tier:
                continue
            rows.append(
                InventoryRow(
                    name=model.name,
                    status=model.status,
                    status_label=model.get_status_display(),
                    owner=model.owner.printed_name,
                    team=model.team.name if model.team else "",
                    version_count=model.version_count,  # type: ignore[attr-defined]
                    latest_version=model.latest_version,  # type: ignore[attr-defined]
                    live_in=model_live.get(model.pk, []),
                    next_review=model.next_review,
                )
            )
        if rows:
            groups.append(
                TierGroup(
                    tier=tier,
                    label=str(RiskTier(tier).label),
                    rows=rows,
                    active=sum(1 for r in rows if r.status == "active"),
                    retired=sum(1 for r in rows if r.status != "active"),
                )
            )
    return groups


def _fill_oversight(
    home: Home,
    *,
    user: User,
    roles: frozenset[str],
    models: Sequence[RegisteredModel],
    environments: Sequence[Environment],
    deployments: Sequence[Deployment],
    requests: Sequence[DeploymentRequest],
    requests_by_key: dict[tuple[int, int], list[DeploymentRequest]],
    live: dict[int, dict[int, _Live]],
) -> None:
    now = home.now
    today = timezone.localdate(now)
    by_pk = {m.pk: m for m in models}

    for env in environments:
        rows = []
        for model_id, entry in live.get(env.pk, {}).items():
            backing = _backing_request(entry.deployment, requests_by_key)
            glass = _is_break_glass(backing)
            retro = _retrospective(backing) if backing is not None and glass else None
            rows.append(
                LiveRow(
                    model=by_pk[model_id].name,
                    version=entry.version.version,
                    since=Moment.of(entry.since, now),
                    signed_by=_step_signers(backing) if backing is not None else [],
                    break_glass_by=backing.requester.printed_name
                    if backing is not None and glass
                    else None,
                    retrospective_by=retro.printed_name if retro is not None else None,
                    request_id=backing.pk if backing is not None else None,
                )
            )
        rows.sort(key=lambda r: r.model)
        home.live.append(EnvironmentLive(name=env.name, rows=rows))

    for request in requests:
        if (
            request.state == RequestState.APPROVED
            and request.expires_at is not None
            and now < request.expires_at <= now + EXPIRY_WINDOW
        ):
            home.expiring.append(
                ExpiringRow(
                    request_id=request.pk,
                    model=request.model_version.model.name,
                    version=request.model_version.version,
                    environment=request.environment.name,
                    expires=Moment.of(request.expires_at, now),
                )
            )
    home.expiring.sort(key=lambda e: e.expires.at)

    for model in models:
        if model.next_review is not None and model.next_review <= today + REVIEW_WINDOW:
            home.reviews.append(
                ReviewRow(
                    kind="periodic",
                    model=model.name,
                    version=None,
                    environment=None,
                    request_id=None,
                    due=model.next_review.isoformat(),
                    due_phrase=date_phrase(model.next_review, today),
                    overdue=model.next_review < today,
                )
            )
    for request in requests:
        if (
            request.state == RequestState.EMERGENCY
            and request.retrospective_due_at is not None
            and _retrospective(request) is None
        ):
            due_at = request.retrospective_due_at
            home.reviews.append(
                ReviewRow(
                    kind="retrospective",
                    model=request.model_version.model.name,
                    version=request.model_version.version,
                    environment=request.environment.name,
                    request_id=request.pk,
                    due=timezone.localtime(due_at).strftime("%Y-%m-%d %H:%M"),
                    due_phrase=(
                        f"overdue since {relative_phrase(due_at, now).removesuffix(' ago')}"
                        if due_at <= now
                        else f"due {relative_phrase(due_at, now)}"
                    ),
                    overdue=due_at <= now,
                )
            )
    home.reviews.sort(key=lambda r: (not r.overdue, r.due))

    home.verdicts = _verdicts(user, models, now)
    home.findings = _open_findings(user, now)
    home.metrics = _metrics(user, models, environments, deployments, requests_by_key)


def _waiting(
    user: User, roles: frozenset[str], requests: Sequence[DeploymentRequest], now: dt.datetime
) -> list[WaitingRow]:
    """Pending requests with their current step, on whom (its roles) and since when (the
    last signature, else the request); those ``user`` may sign now first. Whether they may
    is ``workflow.check_signer`` on their roles and per-model grants, read once for all."""
    grants = signing_grants(user) if user.is_active else {}
    rows: list[WaitingRow] = []
    for request in requests:
        if request.state != RequestState.PENDING:
            continue
        signatures = step_signatures(request.signoffs.all())
        step = current_step(steps_from(request.policy.steps), signatures)
        if step is None:
            continue
        version = request.model_version
        on_you = True
        try:
            check_signer(
                steps=steps_from(request.policy.steps),
                signatures=signatures,
                parties=Parties(
                    requester_id=request.requester_id,
                    author_id=version.author_id,
                    owner_id=version.model.owner_id,
                ),
                signer_id=user.pk,
                signer_roles=roles | grants.get(version.model_id, frozenset()),
                signer_is_person=not user.is_service_account,
            )
        except DomainError:
            on_you = False
        signed = [s.signed_at for s in request.signoffs.all()]
        rows.append(
            WaitingRow(
                request_id=request.pk,
                model=version.model.name,
                version=version.version,
                environment=request.environment.name,
                step=step.name.replace("_", " "),
                roles=[_role_label(r) for r in step.roles],
                on_you=on_you,
                waiting_since=Moment.of(max(signed, default=request.created_at), now),
                signatures=len(signatures),
            )
        )
    rows.sort(key=lambda w: (not w.on_you, w.waiting_since.at))
    return rows


def _verdicts(user: User, models: Sequence[RegisteredModel], now: dt.datetime) -> list[VerdictRow]:
    """The latest finished fairness and drift report of each visible model."""
    latest: dict[tuple[int, str], ReportRef] = {}
    rows = (
        Report.objects.filter(
            model_version__model_id__in=_visible(user).values("pk"),
            kind__in=[ReportKind.FAIRNESS, ReportKind.DRIFT],
            status=ReportStatus.DONE,
        )
        .order_by("-finished_at", "-created_at")
        .values_list(
            "id",
            "kind",
            "verdict",
            "finished_at",
            "created_at",
            "model_version__model_id",
            "model_version__version",
        )
    )
    for report_id, kind, verdict, finished_at, created_at, model_id, version in rows:
        key = (model_id, kind)
        if key in latest:
            continue
        latest[key] = ReportRef(
            report_id=str(report_id),
            version=version,
            verdict=verdict,
            verdict_label=str(Verdict(verdict).label) if verdict else "No verdict",
            finished=Moment.of(finished_at or created_at, now),
        )
    return [
        VerdictRow(
            model=model.name,
            fairness=latest.get((model.pk, ReportKind.FAIRNESS)),
            drift=latest.get((model.pk, ReportKind.DRIFT)),
        )
        for model in models
        if (model.pk, ReportKind.FAIRNESS) in latest or (model.pk, ReportKind.DRIFT) in latest
    ]


def _open_findings(
    user: User, now: dt.datetime, *, concerning: User | None = None
) -> list[FindingRow]:
    """Open findings on visible models, the earliest due first (undated last); with
    ``concerning``, only those that person must address or that are on models they or their
    team own (a builder's home)."""
    today = timezone.localdate(now)
    findings = Finding.objects.filter(
        status=FindingStatus.OPEN, model_version__model_id__in=_visible(user).values("pk")
    ).select_related("model_version__model", "owner")
    if concerning is not None:
        findings = findings.filter(
            Q(owner=concerning)
            | Q(model_version__model__owner=concerning)
            | Q(model_version__model__team__in=Group.objects.filter(user=concerning))
        )
    out = [
        FindingRow(
            title=f.title,
            severity=f.severity,
            severity_label=f.get_severity_display(),
            model=f.model_version.model.name,
            version=f.model_version.version,
            owner=f.owner.printed_name,
            due_date=f.due_date,
            due_phrase=date_phrase(f.due_date, today) if f.due_date else "no due date",
            overdue=f.due_date is not None and f.due_date < today,
            raised=Moment.of(f.raised_at, now),
        )
        for f in findings
    ]
    out.sort(key=lambda f: (f.due_date is None, f.due_date or today, f.model))
    return out


def _metrics(
    user: User,
    models: Sequence[RegisteredModel],
    environments: Sequence[Environment],
    deployments: Sequence[Deployment],
    requests_by_key: dict[tuple[int, int], list[DeploymentRequest]],
) -> Metrics:
    """The governance metrics over the visible models: lead time from registration to the
    first deployment to the last environment of the promotion order (prod), the share of
    finished drift reports that failed, and the share of deployments made by break-glass."""
    prod = environments[-1] if environments else None
    first_prod: dict[int, dt.datetime] = {}
    deployed = [d for d in deployments if d.event == DeploymentEvent.DEPLOYED]
    for event in deployed:
        if prod is not None and event.environment_id == prod.pk:
            first_prod.setdefault(event.model_version.model_id, event.occurred_at)
    lead_times = [
        LeadTime(
            model=model.name,
            registered=model.created_at,
            first_prod=first_prod.get(model.pk),
            phrase=duration_phrase((first_prod[model.pk] - model.created_at).total_seconds())
            if model.pk in first_prod
            else None,
        )
        for model in models
    ]
    drift = Report.objects.filter(
        model_version__model_id__in=_visible(user).values("pk"),
        kind=ReportKind.DRIFT,
        status=ReportStatus.DONE,
    ).aggregate(done=Count("pk"), failed=Count("pk", filter=Q(verdict=Verdict.FAIL)))
    glass = sum(1 for d in deployed if _is_break_glass(_backing_request(d, requests_by_key)))
    return Metrics(
        prod=prod.name if prod else None,
        lead_times=lead_times,
        drift_done=drift["done"],
        drift_failed=drift["failed"],
        drift_rate=_percent(drift["failed"], drift["done"]),
        deployments=len(deployed),
        break_glass=glass,
        break_glass_share=_percent(glass, len(deployed)),
    )


def _own_models(
    user: User,
    models: Sequence[RegisteredModel],
    requests: Sequence[DeploymentRequest],
    live_names: dict[int, list[str]],
) -> list[OwnModel]:
    """The visible models ``user`` owns or their team owns, with versions (newest first) and
    each version's deployment requests."""
    now = timezone.now()
    team_ids = set(Group.objects.filter(user=user).values_list("pk", flat=True))
    own = [m for m in models if m.owner_id == user.pk or m.team_id in team_ids]
    versions = ModelVersion.objects.filter(model_id__in=[m.pk for m in own]).order_by(
        "model_id", "-version"
    )
    by_version: dict[int, list[DeploymentRequest]] = defaultdict(list)
    for request in requests:
        by_version[request.model_version_id].append(request)
    versions_of: dict[int, list[OwnVersion]] = defaultdict(list)
    for version in versions:
        versions_of[version.model_id].append(
            OwnVersion(
                version=version.version,
                status_label=version.get_status_display(),
                created=Moment.of(version.created_at, now),
                live_in=live_names.get(version.pk, []),
                requests=[
                    OwnRequest(
                        request_id=r.pk,
                        environment=r.environment.name,
                        state=r.state,
                        state_label=r.get_state_display(),
                        created=Moment.of(r.created_at, now),
                    )
                    for r in sorted(by_version.get(version.pk, []), key=lambda r: r.created_at)
                ],
            )
        )
    return [
        OwnModel(
            name=m.name,
            risk_label=m.get_risk_tier_display(),
            status_label=m.get_status_display(),
            owner=m.owner.printed_name,
            team=m.team.name if m.team else "",
            versions=versions_of.get(m.pk, []),
        )
        for m in own
    ]


def _record_data(record: AuditRecord) -> dict[str, Any]:
    try:
        body = json.loads(record.body)
    except ValueError:
        return {}
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else {}


def audit_status(*, now: dt.datetime | None = None) -> AuditStatus:
    """The audit log as stored: its size, the latest ``audit.verified`` record (the scheduled
    or command-line verification of the whole log) and the latest signed checkpoint. Three
    queries; nothing is re-verified here."""
    now = now or timezone.now()
    origin = str(settings.AUDIT_LOG_ORIGIN)
    checkpoint = latest_checkpoint()
    size = LogHead.objects.filter(log=origin).values_list("size", flat=True).first() or 0
    verified = (
        AuditRecord.objects.filter(log=origin, action=AuditAction.AUDIT_VERIFIED)
        .order_by("-seq")
        .first()
    )
    data = _record_data(verified) if verified is not None else {}
    trigger = str(data.get("trigger") or "")
    trigger_label = (
        str(VerificationTrigger(trigger).label)
        if trigger in VerificationTrigger.values
        else trigger or None
    )
    return AuditStatus(
        log_size=size,
        verified=bool(data.get("ok")) if verified is not None else None,
        verified_size=data.get("size") if verified is not None else None,
        verified_at=Moment.of(verified.ts, now) if verified is not None else None,
        verified_trigger=trigger_label,
        first_bad_seq=data.get("first_bad_seq"),
        failure_code=data.get("code"),
        checkpoint_size=checkpoint.size if checkpoint is not None else None,
        checkpoint_root=checkpoint.root if checkpoint is not None else None,
        checkpoint_keys=list(checkpoint.key_names or []) if checkpoint is not None else [],
        checkpoint_at=Moment.of(checkpoint.created_at, now) if checkpoint is not None else None,
        uncovered=max(size - (checkpoint.size if checkpoint is not None else 0), 0),
    )

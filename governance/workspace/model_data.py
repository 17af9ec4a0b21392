"""Everything a model's page shows, read in a fixed number of queries whatever the number of
versions, requests, deployments, reports and findings (one query per kind of row, not per
row): the inventory card, versions with where each is live now, the deployment timeline of
every environment, the lineage drawing of one version, reports, findings, signing grants,
the model's audit trail with its verification, and the actions the person may take.

Visibility is the registry's (``model_get``): a model the person may not see is
``NotFound``, exactly as a missing one. What the person may do is decided by the same
functions the services and forms use (``check_signer``, ``may_request``, the finding and
report roles); the page only offers what those would allow now.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from audit.actions import AuditAction
from audit.api import records_of_this_log
from audit.checkpoints import latest_checkpoint
from audit.merkle import leaf_hash, verify_inclusion
from audit.models import AuditRecord, Checkpoint
from audit.tree import prove
from core.accounts.models import User
from core.errors import DomainError
from core.roles import Role
from governance.approvals.models import (
    Deployment,
    DeploymentEvent,
    DeploymentRequest,
    Environment,
    Finding,
    FindingStatus,
    SignOff,
)
from governance.approvals.selectors import RETROSPECTIVE_ROLES
from governance.approvals.services import FINDING_ROLES
from governance.approvals.services._common import may_request
from governance.approvals.workflow import (
    Parties,
    RequestState,
    Signature,
    check_retrospective_signer,
    check_signer,
    current_step,
    steps_from,
)
from governance.reports import lineage as lineage_report
from governance.reports.models import Report
from governance.reports.package import package_permitted
from governance.reports.selectors import report_list
from governance.reports.services import REQUESTING_ROLES
from registry import selectors as registry_selectors
from registry.models import (
    DatasetUsage,
    ModelStatus,
    ModelVersion,
    RegisteredModel,
    VersionStatus,
)

TRAIL_PAGE_SIZE = 20
# States of a request that still allow (or may come to allow) a deployment: a new request
# for the same version and environment is refused while one of them is open.
OPEN_STATES = (RequestState.PENDING, RequestState.APPROVED, RequestState.EMERGENCY)


# Times -------------------------------------------------------------------------------------


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def relative(when: dt.datetime | dt.date | None, now: dt.datetime) -> str:
    """A phrase for how long ago (or how far ahead) ``when`` is: "just now", "5 minutes
    ago", "in 3 days", "today"; empty beyond a year, where the date says enough."""
    if when is None:
        return ""
    if not isinstance(when, dt.datetime):
        days = (when - timezone.localdate(now)).days
        if days == 0:
            return "today"
        if abs(days) > 365:
            return ""
        return f"in {_plural(days, 'day')}" if days > 0 else f"{_plural(-days, 'day')} ago"
    seconds = (now - when).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        return "just now"
    for size, unit in ((86400 * 365, "year"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            if unit == "year":
                return ""
            phrase = _plural(int(seconds // size), unit)
            return f"in {phrase}" if future else f"{phrase} ago"
    return ""  # pragma: no cover - the loop always returns


# Rows of the page ---------------------------------------------------------------------------


@dataclass
class VersionRow:
    """A version with the environments it is live in now and what may be done with it."""

    version: ModelVersion
    live_in: list[str] = field(default_factory=list)
    open_findings: int = 0
    pending: list[DeploymentRequest] = field(default_factory=list)
    may_request_in: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TimelineEntry:
    """One deployment event in an environment and what was live after it."""

    deployment: Deployment
    version: int
    kind: str  # "deployed", "promotion", "redeployed", "rolled_back", "retired"
    summary: str
    ago: str
    live_after: int | None
    break_glass: DeploymentRequest | None
    unchecked: bool


@dataclass(frozen=True)
class LivePeriod:
    """A stretch of time one version was live in an environment (``until`` None: still)."""

    version: int
    since: dt.datetime
    until: dt.datetime | None
    break_glass: bool


@dataclass
class EnvironmentTimeline:
    environment: Environment
    live_now: int | None = None  # the version number live now
    live_now_pk: int | None = None
    entries: list[TimelineEntry] = field(default_factory=list)
    periods: list[LivePeriod] = field(default_factory=list)


@dataclass(frozen=True)
class TrailRow:
    """One audit record, readable, with what was checked of it."""

    seq: int
    ts: dt.datetime
    ago: str
    action: str
    action_label: str
    actor: str
    object_label: str
    security: bool
    body_ok: bool
    included: bool | None  # None: after the latest checkpoint, not yet committed to


@dataclass(frozen=True)
class TrailVerification:
    """What the page checked of the records it shows, and the log's latest full verification."""

    checkpoint: Checkpoint | None
    shown: int
    bodies_ok: int
    included: int
    pending: int
    full_verified_at: dt.datetime | None
    full_verified_ok: bool | None
    full_verified_size: int | None


@dataclass(frozen=True)
class ReportRow:
    """A report of one of the model's versions, with when it was finished (or asked for)."""

    report: Report
    at: dt.datetime
    ago: str


@dataclass(frozen=True)
class FindingRow:
    """A finding with how its due date stands."""

    finding: Finding
    raised_ago: str
    due: str
    overdue: bool


@dataclass(frozen=True)
class PendingAction:
    """A pending request the person may act on: review it, and sign it if they can now."""

    request: DeploymentRequest
    step: str | None
    may_sign: bool


@dataclass
class Actions:
    """What the person may do from the page; empty for a reader such as an auditor."""

    request_versions: list[tuple[ModelVersion, str]] = field(default_factory=list)
    pending: list[PendingAction] = field(default_factory=list)
    retrospectives: list[DeploymentRequest] = field(default_factory=list)
    finding_versions: list[ModelVersion] = field(default_factory=list)
    report_versions: list[ModelVersion] = field(default_factory=list)
    export: bool = False

    @property
    def any(self) -> bool:
        return bool(
            self.request_versions
            or self.pending
            or self.retrospectives
            or self.finding_versions
            or self.report_versions
            or self.export
        )


@dataclass
class ModelPageData:
    model: RegisteredModel
    now: dt.datetime
    versions: list[VersionRow]
    environments: list[Environment]
    timelines: list[EnvironmentTimeline]
    requests: list[DeploymentRequest]
    reports: list[ReportRow]
    findings: list[FindingRow]
    open_findings: int
    grants: list[tuple[registry_selectors.SigningGrant, str]]
    trail: Page[AuditRecord]
    trail_rows: list[TrailRow]
    verification: TrailVerification
    lineage_version: ModelVersion | None
    lineage_svg: str
    actions: Actions
    roles: frozenset[str]


# Reading -------------------------------------------------------------------------------------


def _versions(model: RegisteredModel) -> list[ModelVersion]:
    usages = DatasetUsage.objects.select_related("dataset_version__dataset").order_by(
        "role", "dataset_version__dataset__name", "dataset_version__version"
    )
    return list(
        ModelVersion.objects.filter(model=model)
        .select_related("author", "created_by", "parent__model")
        .prefetch_related(Prefetch("dataset_usages", queryset=usages))
        .order_by("-version")
    )


def _requests(model: RegisteredModel) -> list[DeploymentRequest]:
    return list(
        DeploymentRequest.objects.filter(model_version__model=model)
        .select_related("environment", "policy", "requester", "closed_by")
        .prefetch_related(Prefetch("signoffs", queryset=SignOff.objects.select_related("signer")))
        .order_by("-created_at", "-id")
    )


def _deployments(model: RegisteredModel) -> list[Deployment]:
    return list(
        Deployment.objects.filter(model_version__model=model)
        .select_related("reported_by", "gate_check")
        .order_by("occurred_at", "id")
    )


def _findings(model: RegisteredModel) -> list[Finding]:
    return list(
        Finding.objects.filter(model_version__model=model)
        .select_related("owner", "raised_by", "resolved_by")
        .order_by("status", "-raised_at", "-id")
    )


def _is_break_glass(request: DeploymentRequest | None) -> bool:
    return request is not None and (
        request.state == RequestState.EMERGENCY or request.retrospective_due_at is not None
    )


def _break_glass_for(
    deployment: Deployment, requests: Sequence[DeploymentRequest]
) -> DeploymentRequest | None:
    """The break-glass request a ``deployed`` event relied on: the one its gate check names,
    else an emergency request for the same version and environment opened before it."""
    if deployment.event != DeploymentEvent.DEPLOYED:
        return None
    by_id = {r.pk: r for r in requests}
    if deployment.gate_check is not None and deployment.gate_check.request_id is not None:
        named = by_id.get(deployment.gate_check.request_id)
        return named if _is_break_glass(named) else None
    for request in requests:
        if (
            _is_break_glass(request)
            and request.model_version_id == deployment.model_version_id
            and request.environment_id == deployment.environment_id
            and request.created_at <= deployment.occurred_at
            and (request.closed_at is None or request.closed_at > deployment.occurred_at)
        ):
            return request
    return None


def _timelines(
    environments: Sequence[Environment],
    deployments: Sequence[Deployment],
    numbers: dict[int, int],
    requests: Sequence[DeploymentRequest],
    now: dt.datetime,
) -> list[EnvironmentTimeline]:
    """Per environment, in promotion order: each event with what was live after it, and the
    periods each version was live. Live follows ``workflow.live_versions``: ``deployed``
    makes a version live, ``rolled_back`` takes it out and the previously live one is live
    again, ``retired`` takes it out of the environment."""
    by_env: dict[int, list[Deployment]] = defaultdict(list)
    for deployment in deployments:
        by_env[deployment.environment_id].append(deployment)
    out = []
    for environment in environments:
        timeline = EnvironmentTimeline(environment=environment)
        stack: list[int] = []
        current: tuple[int, dt.datetime, bool] | None = None
        for deployment in by_env.get(environment.pk, []):
            vid = deployment.model_version_id
            before = stack[-1] if stack else None
            if deployment.event == DeploymentEvent.DEPLOYED:
                if vid in stack:
                    stack.remove(vid)
                stack.append(vid)
            elif deployment.event == DeploymentEvent.ROLLED_BACK:
                if vid in stack:
                    stack.remove(vid)
            elif stack and stack[-1] == vid:
                stack.clear()
            elif vid in stack:
                stack.remove(vid)
            after = stack[-1] if stack else None
            glass = _break_glass_for(deployment, requests)
            number = numbers[vid]
            kind, summary = _describe(deployment.event, number, before, after, numbers)
            timeline.entries.append(
                TimelineEntry(
                    deployment=deployment,
                    version=number,
                    kind=kind,
                    summary=summary,
                    ago=relative(deployment.occurred_at, now),
                    live_after=numbers[after] if after is not None else None,
                    break_glass=glass,
                    unchecked=deployment.unchecked,
                )
            )
            if before != after:
                if current is not None:
                    timeline.periods.append(
                        LivePeriod(numbers[current[0]], current[1], deployment.occurred_at,
                                   current[2])
                    )  # fmt: skip
                current = (
                    (after, deployment.occurred_at, glass is not None and after == vid)
                    if after is not None
                    else None
                )
        if current is not None:
            timeline.periods.append(LivePeriod(numbers[current[0]], current[1], None, current[2]))
        timeline.live_now_pk = stack[-1] if stack else None
        timeline.live_now = numbers[stack[-1]] if stack else None
        timeline.entries.reverse()  # newest first
        timeline.periods.reverse()
        out.append(timeline)
    return out


def _describe(
    event: str, number: int, before: int | None, after: int | None, numbers: dict[int, int]
) -> tuple[str, str]:
    if event == DeploymentEvent.DEPLOYED:
        if before is None:
            return "deployed", f"v{number} deployed"
        if before == after:
            return "redeployed", f"v{number} deployed again (it was already live)"
        return "promotion", f"v{number} deployed, replacing v{numbers[before]}"
    if event == DeploymentEvent.ROLLED_BACK:
        if after is not None:
            return "rolled_back", f"v{number} rolled back: v{numbers[after]} is live again"
        return "rolled_back", f"v{number} rolled back: nothing is live"
    return "retired", f"v{number} retired from the environment"


def _global_roles(user: User) -> frozenset[str]:
    if not user.is_active:
        return frozenset()
    names = set(user.groups.values_list("name", flat=True))
    return frozenset(names & set(Role.values))


def _parties(request: DeploymentRequest, version: ModelVersion) -> Parties:
    return Parties(
        requester_id=request.requester_id,
        author_id=version.author_id,
        owner_id=version.model.owner_id,
    )


def _signatures(request: DeploymentRequest) -> list[Signature]:
    return [
        Signature(step=s.step, signer_id=s.signer_id, decision=s.decision)
        for s in request.signoffs.all()
        if s.step != SignOff.RETROSPECTIVE
    ]


def _may_sign(user: User, roles: frozenset[str], request: DeploymentRequest) -> bool:
    """``selectors.signing_refusal`` with the person's roles read once for the model."""
    if request.state != RequestState.PENDING:
        return False
    try:
        check_signer(
            steps=steps_from(request.policy.steps),
            signatures=_signatures(request),
            parties=_parties(request, request.model_version),
            signer_id=user.pk,
            signer_roles=roles,
            signer_is_person=not user.is_service_account,
        )
    except DomainError:
        return False
    return True


def _may_review_retrospective(
    user: User, roles: frozenset[str], request: DeploymentRequest
) -> bool:
    """``selectors.retrospective_refusal`` with the person's roles read once."""
    if request.state != RequestState.EMERGENCY:
        return False
    if any(s.step == SignOff.RETROSPECTIVE for s in request.signoffs.all()):
        return False
    try:
        check_retrospective_signer(
            parties=_parties(request, request.model_version),
            signer_id=user.pk,
            signer_roles=roles,
            roles=RETROSPECTIVE_ROLES,
        )
    except DomainError:
        return False
    return True


def may_export_package(user: User, model: RegisteredModel, roles: frozenset[str]) -> bool:
    """Whether the page offers the regulator's package of the model: to those the package
    pages accept (``reports.package.package_permitted``), except a person who is only an
    auditor, who reads everything and is offered no action on a model's page."""
    return bool(roles - {Role.AUDITOR}) and package_permitted(user, model)


def _actions(
    user: User,
    *,
    rows: Sequence[VersionRow],
    requests: Sequence[DeploymentRequest],
    global_roles: frozenset[str],
    roles: frozenset[str],
) -> Actions:
    actions = Actions()
    if not user.is_active or user.is_service_account:
        return actions
    versions = [row.version for row in rows]
    may_deploy = bool(versions) and may_request(user, versions[0])
    for row in rows:
        if may_deploy:
            actions.request_versions.extend((row.version, env) for env in row.may_request_in)
        else:
            row.may_request_in = []
    for request in requests:
        if request.state == RequestState.PENDING:
            may_sign = _may_sign(user, roles, request)
            step = current_step(steps_from(request.policy.steps), _signatures(request))
            step_roles = {role for s in steps_from(request.policy.steps) for role in s.roles}
            if may_sign or request.requester_id == user.pk or roles & step_roles:
                actions.pending.append(
                    PendingAction(request=request, step=step.name if step else None,
                                  may_sign=may_sign)
                )  # fmt: skip
        elif _may_review_retrospective(user, roles, request):
            actions.retrospectives.append(request)
    if roles & set(FINDING_ROLES):
        actions.finding_versions = versions
    if global_roles & set(REQUESTING_ROLES):
        actions.report_versions = versions
    return actions


def _requestable(
    version: ModelVersion,
    environments: Sequence[Environment],
    deployed_now: dict[tuple[int, int], bool],
    open_requests: set[tuple[int, int]],
    live_now: dict[int, int | None],
) -> list[str]:
    """Environments ``deployment_request_submit`` would accept a request of ``version`` for
    now: the model active and the version neither deprecated nor retired, deployed to the
    previous environment and not rolled back there, no open request for the same pair; the
    environment it is already live in is left out."""
    if version.model.status == ModelStatus.RETIRED or version.status in (
        VersionStatus.DEPRECATED,
        VersionStatus.RETIRED,
    ):
        return []
    out = []
    previous: Environment | None = None
    for environment in environments:
        promoted = previous is None or deployed_now.get((version.pk, previous.pk), False)
        if (
            promoted
            and (version.pk, environment.pk) not in open_requests
            and live_now.get(environment.pk) != version.pk
        ):
            out.append(environment.name)
        previous = environment
    return out


def _trail(
    model: RegisteredModel, page_number: Any, *, hide_gate: bool, now: dt.datetime
) -> tuple[Page[AuditRecord], list[TrailRow], TrailVerification]:
    """The newest records about the model (``scope.model``), a page at a time, each with its
    body checked against its leaf hash and its inclusion in the latest checkpoint proved.

    Cost: a count and a page of records; the latest checkpoint; the tree nodes the proofs
    read (one query) plus one query per block of 256 records the shown ones fall in; the
    latest full verification."""
    records: QuerySet[AuditRecord] = records_of_this_log().filter(scope_model=model.name)
    if hide_gate:
        records = records.exclude(action=AuditAction.GATE_CHECKED)
    paginator = Paginator(records.order_by("-seq"), TRAIL_PAGE_SIZE)
    page = paginator.get_page(page_number)
    shown = list(page.object_list)
    checkpoint = latest_checkpoint()
    leaves = {record.seq: leaf_hash(record.body.encode("utf-8")) for record in shown}
    body_ok = {record.seq: leaves[record.seq].hex() == record.leaf for record in shown}
    included: dict[int, bool | None] = {record.seq: None for record in shown}
    if checkpoint is not None:
        covered = [record.seq for record in shown if record.seq < checkpoint.size]
        root = bytes.fromhex(checkpoint.root)
        if covered:
            try:
                proofs = prove(
                    checkpoint.log,
                    checkpoint.size,
                    lambda store: {seq: store.inclusion_proof(seq) for seq in covered},
                )
            except ValueError:
                proofs = {}
            for seq in covered:
                proof = proofs.get(seq)
                included[seq] = proof is not None and verify_inclusion(
                    leaves[seq], seq, checkpoint.size, proof, root
                )
    verified = (
        records_of_this_log()
        .filter(action=AuditAction.AUDIT_VERIFIED)
        .order_by("-seq")
        .only("ts", "body")
        .first()
    )
    verified_data = json.loads(verified.body).get("data", {}) if verified else {}
    rows = []
    for record in shown:
        body = json.loads(record.body)
        try:
            label = AuditAction(record.action).label
        except ValueError:
            label = record.action.replace("_", " ").replace(".", ": ")
        rows.append(
            TrailRow(
                seq=record.seq,
                ts=record.ts,
                ago=relative(record.ts, now),
                action=record.action,
                action_label=str(label),
                actor=(body.get("actor") or {}).get("name") or record.actor_id,
                object_label=(body.get("object") or {}).get("label") or record.object_type,
                security=record.action.endswith((".refused", "_failed")),
                body_ok=body_ok[record.seq],
                included=included[record.seq],
            )
        )
    verification = TrailVerification(
        checkpoint=checkpoint,
        shown=len(rows),
        bodies_ok=sum(1 for row in rows if row.body_ok),
        included=sum(1 for row in rows if row.included),
        pending=sum(1 for row in rows if row.included is None),
        full_verified_at=verified.ts if verified else None,
        full_verified_ok=verified_data.get("ok") if verified else None,
        full_verified_size=verified_data.get("size") if verified else None,
    )
    return page, rows, verification


def _finding_row(finding: Finding, now: dt.datetime) -> FindingRow:
    today = timezone.localdate(now)
    due = finding.due_date
    overdue = finding.status == FindingStatus.OPEN and due is not None and due < today
    phrase = (
        f"overdue by {_plural((today - due).days, 'day')}"
        if overdue and due is not None
        else relative(due, now)
    )
    return FindingRow(
        finding=finding, raised_ago=relative(finding.raised_at, now), due=phrase, overdue=overdue
    )


# The lineage drawing --------------------------------------------------------------------------


def _lineage_document(
    version: ModelVersion,
    *,
    by_pk: dict[int, ModelVersion],
    requests: Sequence[DeploymentRequest],
    deployments: Sequence[Deployment],
    numbers: dict[int, int],
    environments: Sequence[Environment],
) -> dict[str, Any]:
    """The parts of a lineage report's document (``reports.lineage.lineage_result``) that its
    drawing (``graph_of``) reads, built from rows the page has already loaded."""
    chain = [version]
    seen = {version.pk}
    current = version
    while current.parent_id is not None and current.parent_id not in seen:
        parent = by_pk.get(current.parent_id) or current.parent
        if parent is None:
            break
        seen.add(parent.pk)
        chain.append(parent)
        current = parent
    datasets = [
        {
            "used_by": member.version,
            "role": usage.role,
            "dataset": usage.dataset_version.dataset.name,
            "version": usage.dataset_version.version,
            "row_count": usage.dataset_version.row_count,
            "pii": usage.dataset_version.pii,
        }
        for member in chain
        for usage in member.dataset_usages.all()
    ]
    own_requests = sorted(
        (r for r in requests if r.model_version_id == version.pk), key=lambda r: r.pk
    )
    own = [d for d in deployments if d.model_version_id == version.pk]
    live: list[dict[str, Any]] = []
    for environment in environments:
        if not any(d.environment_id == environment.pk for d in own):
            continue
        events = [
            (d.model_version_id, d.event, d.occurred_at, numbers[d.model_version_id])
            for d in deployments
            if d.environment_id == environment.pk
        ]
        live.extend(
            {"environment": environment.name, **interval}
            for interval in lineage_report.live_intervals(events, version.pk)
        )
    names = {environment.pk: environment.name for environment in environments}
    return {
        "model_version": {
            "model": version.model.name,
            "version": version.version,
            "artifact_digest": version.artifact_digest,
            "source_commit": version.source_commit or None,
        },
        "parents": [
            {
                "model": member.model.name,
                "version": member.version,
                "artifact_digest": member.artifact_digest,
            }
            for member in chain[1:]
        ],
        "datasets": datasets,
        "requests": [
            {
                "id": request.pk,
                "environment": request.environment.name,
                "state": request.state,
                "signoffs": [s.pk for s in request.signoffs.all()],
            }
            for request in own_requests
        ],
        "deployments": [
            {
                "environment": names[d.environment_id],
                "request": d.gate_check.request_id if d.gate_check else None,
            }
            for d in own
        ],
        "live": live,
    }


_STYLE_PROPERTY = re.compile(r"\s*([a-z-]+)\s*:\s*([^;]+?)\s*(?:;|$)")
_SVG = "http://www.w3.org/2000/svg"
_XLINK = "http://www.w3.org/1999/xlink"


def inline_svg(svg: str, *, title: str) -> str:
    """A drawing of ``reports.pdf.charts`` made fit to sit in a page under the site's
    Content-Security-Policy, which refuses inline styles: every ``style`` attribute becomes
    presentation attributes, the ``<style>`` element becomes inherited attributes on the
    root, the fixed size gives way to the ``viewBox`` (CSS sizes it), and it gets a title."""
    ET.register_namespace("", _SVG)
    ET.register_namespace("xlink", _XLINK)
    text = re.sub(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>", "", svg).strip()
    root = ET.fromstring(text)  # noqa: S314 - our own matplotlib output, not user input
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag in (f"{{{_SVG}}}style", f"{{{_SVG}}}metadata"):
                parent.remove(child)
    for element in root.iter():
        style = element.attrib.pop("style", None)
        if style:
            for name, value in _STYLE_PROPERTY.findall(style):
                element.set(name, value)
    root.set("stroke-linejoin", "round")
    root.set("stroke-linecap", "butt")
    root.attrib.pop("width", None)
    root.attrib.pop("height", None)
    root.set("role", "img")
    root.set("aria-labelledby", "lineage-title")
    root.set("class", "lineage-svg")
    heading = ET.Element(f"{{{_SVG}}}title", {"id": "lineage-title"})
    heading.text = title
    root.insert(0, heading)
    return ET.tostring(root, encoding="unicode")


def lineage_svg(document: dict[str, Any], *, title: str) -> str:
    """The lineage report's drawing of ``document`` as inline SVG. Drawing takes about half a
    second, so each process keeps the drawings of the last documents it drew: a page seen
    again with the same lineage is not drawn again."""
    return _drawn(json.dumps(document, sort_keys=True, default=str), title)


@functools.lru_cache(maxsize=128)
def _drawn(document: str, title: str) -> str:
    from governance.reports.pdf import charts  # matplotlib: loaded on first drawing only

    graph = lineage_report.graph_of(json.loads(document))
    return inline_svg(charts.lineage_chart(graph), title=title)


# The page ------------------------------------------------------------------------------------


def model_page_data(
    *,
    user: User,
    name: str,
    trail_page: Any = 1,
    lineage_of: int | None = None,
    hide_gate: bool = False,
    now: dt.datetime | None = None,
) -> ModelPageData:
    """What the model's page shows to ``user``; ``NotFound`` for a model they may not see
    (the same as for one that does not exist). ``lineage_of`` picks the version drawn
    (default: the newest); ``hide_gate`` leaves the gate's checks out of the audit trail."""
    now = now or timezone.now()
    model = registry_selectors.model_get(user=user, name=name)
    versions = _versions(model)
    for version in versions:
        version.model = model  # one model row for all: no query per version
    by_pk = {version.pk: version for version in versions}
    numbers = {version.pk: version.version for version in versions}
    environments = list(Environment.objects.order_by("position"))
    requests = _requests(model)
    for request in requests:
        request.model_version = by_pk[request.model_version_id]
    deployments = _deployments(model)
    for deployment in deployments:
        deployment.model_version = by_pk[deployment.model_version_id]
    env_by_pk = {environment.pk: environment for environment in environments}
    for deployment in deployments:
        deployment.environment = env_by_pk[deployment.environment_id]
    findings = _findings(model)
    for finding in findings:
        finding.model_version = by_pk[finding.model_version_id]

    timelines = _timelines(environments, deployments, numbers, requests, now)
    live_now = {t.environment.pk: t.live_now_pk for t in timelines}
    deployed_now: dict[tuple[int, int], bool] = {}
    for deployment in deployments:
        if deployment.event in (DeploymentEvent.DEPLOYED, DeploymentEvent.ROLLED_BACK):
            key = (deployment.model_version_id, deployment.environment_id)
            deployed_now[key] = deployment.event == DeploymentEvent.DEPLOYED
    open_requests = {
        (r.model_version_id, r.environment_id)
        for r in requests
        if r.state == RequestState.PENDING
        or (r.state in OPEN_STATES and r.expires_at is not None and r.expires_at > now)
    }
    rows = []
    for version in versions:
        row = VersionRow(version=version)
        row.live_in = [t.environment.name for t in timelines if t.live_now == version.version]
        row.open_findings = sum(
            1
            for f in findings
            if f.model_version_id == version.pk and f.status == FindingStatus.OPEN
        )
        row.pending = [
            r for r in requests if r.model_version_id == version.pk and r.state == "pending"
        ]
        row.may_request_in = _requestable(
            version, environments, deployed_now, open_requests, live_now
        )
        rows.append(row)

    global_roles = _global_roles(user)
    roles = global_roles | registry_selectors.signing_roles_granted(user, model)
    actions = _actions(user, rows=rows, requests=requests, global_roles=global_roles, roles=roles)
    actions.export = not user.is_service_account and may_export_package(user, model, global_roles)
    reports = list(report_list(user=user, model=model.name))
    for report in reports:
        if report.model_version_id in by_pk:
            report.model_version = by_pk[report.model_version_id]
    page, trail_rows, verification = _trail(model, trail_page, hide_gate=hide_gate, now=now)

    drawn = by_pk.get(next((pk for pk, n in numbers.items() if n == lineage_of), -1))
    drawn = drawn or (versions[0] if versions else None)
    svg = ""
    if drawn is not None:
        document = _lineage_document(
            drawn,
            by_pk=by_pk,
            requests=requests,
            deployments=deployments,
            numbers=numbers,
            environments=environments,
        )
        svg = lineage_svg(document, title=f"Lineage of {model.name} v{drawn.version}")
    return ModelPageData(
        model=model,
        now=now,
        versions=rows,
        environments=environments,
        timelines=timelines,
        requests=requests,
        reports=[
            ReportRow(
                r, r.finished_at or r.created_at, relative(r.finished_at or r.created_at, now)
            )
            for r in reports
        ],
        findings=[_finding_row(finding, now) for finding in findings],
        open_findings=sum(1 for f in findings if f.status == FindingStatus.OPEN),
        grants=[
            (grant, Role(grant.role).label)
            for grant in registry_selectors.signing_grant_list(model=model)
        ],
        trail=page,
        trail_rows=trail_rows,
        verification=verification,
        lineage_version=drawn,
        lineage_svg=svg,
        actions=actions,
        roles=roles,
    )

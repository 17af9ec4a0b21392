"""The lineage of a model version (METRICS_SPEC section 3) as a result document.

Where the version comes from (its parent versions, the dataset versions it was trained,
validated and tested on, the code commit), who signed each of its deployment requests, and
where and when it was live. Every fact carries the seq of the audit record that wrote it, so a
reader holding an export bundle can check each line of the report against the signed log.

Findings raised against the version (open or resolved) are listed with it, and the gate's
answer now for its registered artifact in every environment (``gate_decide``, the decision the
CI gate records), beside the record's completeness it judges.

The document is the machine-readable result of a ``lineage`` report: the PDF is drawn from
it, and it is embedded in the PDF as it is. :func:`graph_of` turns it into the drawing that
every report kind shows on its lineage page.

A lineage report also judges the record's completeness (``checks``, ``verdict``): a
training dataset and a source commit are recorded; every deployment relied on an allowing
gate check; every break-glass deployment had its retrospective review signed on time.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from audit import selectors as audit_selectors
from core.errors import DomainError
from governance.approvals import selectors as approval_selectors
from governance.approvals.models import (
    Deployment,
    DeploymentEvent,
    DeploymentRequest,
    Environment,
    Finding,
    SignOff,
)
from governance.reports.pdf import LineageEdge, LineageGraph, LineageNode, PolicyThreshold
from registry.models import ModelVersion

# Checks, in the order the report lists them: name -> what passing means.
CHECKS = {
    "training_data": "at least one training dataset version is recorded",
    "source_commit": "the code commit that produced the artifact is recorded",
    "gated_deployments": "every deployment relied on an allowing gate check for its digest",
    "retrospectives": "every break-glass deployment has its retrospective review, signed in time",
}


def check_title(name: str) -> str:
    """A check's name as the report prints it: ``training_data`` -> ``Training data``."""
    return name.replace("_", " ").capitalize()


# A request's state as the drawing names it.
REQUEST_STATES = {"emergency": "break-glass"}


def thresholds() -> list[PolicyThreshold]:
    """The completeness checks a lineage report is judged by (no sign-off policy sets them)."""
    return [PolicyThreshold(check_title(name), rule) for name, rule in CHECKS.items()]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _minute(value: str) -> str:
    """An ISO 8601 instant of the document as a reason prints it: ``2026-01-05 09:00 UTC``."""
    return f"{dt.datetime.fromisoformat(value).astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _first_seqs(object_type: str, ids: Iterable[Any]) -> dict[str, int]:
    """Object id -> the seq of the first audit record about it (the one that created it)."""
    return audit_selectors.first_seqs(object_type=object_type, object_ids=ids)


def _ancestry(version: ModelVersion) -> list[ModelVersion]:
    """The version, then its parent, its parent's parent... (a cycle cannot be registered,
    but the walk stops at one anyway)."""
    chain: list[ModelVersion] = []
    seen: set[int] = set()
    current: ModelVersion | None = version
    while current is not None and current.pk not in seen:
        seen.add(current.pk)
        chain.append(current)
        current = (
            ModelVersion.objects.select_related("model").get(pk=current.parent_id)
            if current.parent_id
            else None
        )
    return chain


def live_intervals(
    events: Sequence[tuple[int, str, dt.datetime, int]], version_id: int
) -> list[dict[str, Any]]:
    """When ``version_id`` was live, from the deployment events of its model in one
    environment, ``(version id, event, occurred_at, version number)`` in the order they
    happened. The same rules as the live answer of the approvals app: ``deployed`` makes a
    version live, ``rolled_back`` takes it out and makes the previously live one live again,
    ``retired`` takes the live one out.

    Each interval: ``from``, ``until`` (None while live now), ``started_by`` and ``ended_by``
    (``deployed``, ``rolled_back``, ``retired``, ``replaced by vN``, ``rollback of vN``)."""
    stack: list[int] = []
    numbers: dict[int, int] = {}
    intervals: list[dict[str, Any]] = []
    open_interval: dict[str, Any] | None = None
    for vid, event, when, number in events:
        numbers[vid] = number
        before = stack[-1] if stack else None
        if event == DeploymentEvent.DEPLOYED:
            if vid in stack:
                stack.remove(vid)
            stack.append(vid)
        elif event == DeploymentEvent.ROLLED_BACK:
            if vid in stack:
                stack.remove(vid)
        elif event == DeploymentEvent.RETIRED:
            if stack and stack[-1] == vid:
                stack.clear()
            elif vid in stack:
                stack.remove(vid)
        after = stack[-1] if stack else None
        if before == after:
            continue
        if before == version_id and open_interval is not None:
            if after is not None and event == DeploymentEvent.DEPLOYED:
                ended_by = f"replaced by v{numbers[after]}"
            elif event == DeploymentEvent.ROLLED_BACK and vid == version_id:
                ended_by = "rolled_back"
            elif event == DeploymentEvent.RETIRED:
                ended_by = "retired"
            else:
                ended_by = f"{event} of v{number}"
            open_interval["until"] = when.isoformat()
            open_interval["ended_by"] = ended_by
            open_interval = None
        if after == version_id:
            started_by = "deployed" if vid == version_id else f"rollback of v{number}"
            open_interval = {
                "from": when.isoformat(),
                "until": None,
                "started_by": started_by,
                "ended_by": None,
            }
            intervals.append(open_interval)
    return intervals


def lineage_result(version: ModelVersion, *, now: dt.datetime) -> dict[str, Any]:
    """The lineage document of ``version`` as of ``now`` (JSON-ready: strings, ints, bools,
    None, lists and objects)."""
    chain = _ancestry(version)
    usages = [
        (member, usage)
        for member in chain
        for usage in member.dataset_usages.select_related("dataset_version__dataset").order_by(
            "role", "dataset_version__dataset__name", "dataset_version__version"
        )
    ]
    requests = list(
        DeploymentRequest.objects.filter(model_version=version)
        .select_related("environment", "policy", "requester", "closed_by")
        .prefetch_related("signoffs")
        .order_by("created_at", "id")
    )
    signoffs = [s for r in requests for s in r.signoffs.all()]
    own = list(
        Deployment.objects.filter(model_version=version)
        .select_related("environment", "reported_by", "gate_check")
        .order_by("environment__position", "occurred_at", "id")
    )
    version_seqs = _first_seqs("model_version", [m.pk for m in chain])
    dataset_seqs = _first_seqs("dataset_version", [u.dataset_version_id for _, u in usages])
    request_seqs = _first_seqs("deployment_request", [r.pk for r in requests])
    signoff_seqs = _first_seqs("signoff", [s.pk for s in signoffs])
    deployment_seqs = _first_seqs("deployment", [d.pk for d in own])
    findings = list(
        Finding.objects.filter(model_version=version)
        .select_related("owner", "raised_by", "resolved_by")
        .order_by("raised_at", "id")
    )
    finding_seqs = _first_seqs("finding", [f.pk for f in findings])

    def describe(member: ModelVersion) -> dict[str, Any]:
        return {
            "model": member.model.name,
            "version": member.version,
            "artifact_digest": member.artifact_digest,
            "source_commit": member.source_commit or None,
            "training_run_id": member.training_run_id or None,
            "created_at": _iso(member.created_at),
            "audit_seq": version_seqs.get(str(member.pk)),
        }

    subject = {
        **describe(version),
        "risk_tier": version.model.risk_tier,
        "status": version.status,
        "artifact_uri": version.artifact_uri,
        "framework": version.framework or None,
        "environment_digest": version.environment_digest or None,
        "random_seed": version.random_seed,
        "author": version.author.get_username(),
    }
    datasets = [
        {
            "used_by": member.version,
            "role": usage.role,
            "dataset": usage.dataset_version.dataset.name,
            "version": usage.dataset_version.version,
            "content_digest": usage.dataset_version.content_digest,
            "row_count": usage.dataset_version.row_count,
            "pii": usage.dataset_version.pii,
            "source_uri": usage.dataset_version.source_uri or None,
            "audit_seq": dataset_seqs.get(str(usage.dataset_version_id)),
        }
        for member, usage in usages
    ]
    request_rows = [
        {
            "id": request.pk,
            "environment": request.environment.name,
            "state": request.state,
            "policy": str(request.policy),
            "requested_by": request.requester.get_username(),
            "requested_at": _iso(request.created_at),
            "approved_at": _iso(request.approved_at),
            "expires_at": _iso(request.expires_at),
            "closed_at": _iso(request.closed_at),
            "retrospective_due_at": _iso(request.retrospective_due_at),
            "audit_seq": request_seqs.get(str(request.pk)),
            "signoffs": [
                {
                    "step": signoff.step,
                    "decision": signoff.decision,
                    "meaning": signoff.meaning,
                    "printed_name": signoff.printed_name,
                    "signed_at": _iso(signoff.signed_at),
                    "signed_sha256": signoff.signed_sha256,
                    "audit_seq": signoff_seqs.get(str(signoff.pk)),
                }
                for signoff in request.signoffs.all()
            ],
        }
        for request in requests
    ]
    deployments = [
        {
            "environment": deployment.environment.name,
            "event": deployment.event,
            "occurred_at": _iso(deployment.occurred_at),
            "reported_by": deployment.reported_by.get_username(),
            "pipeline_run": deployment.pipeline_run or None,
            "commit": deployment.commit or None,
            "gate_check": str(deployment.gate_check.check_id) if deployment.gate_check else None,
            "request": deployment.gate_check.request_id if deployment.gate_check else None,
            "unchecked": deployment.unchecked,
            "audit_seq": deployment_seqs.get(str(deployment.pk)),
        }
        for deployment in own
    ]
    live: list[dict[str, Any]] = []
    environments = {d.environment_id: d.environment for d in own}
    for environment in sorted(environments.values(), key=lambda e: e.position):
        events = [
            (vid, event, when, number)
            for vid, event, when, number in Deployment.objects.filter(
                environment=environment, model_version__model_id=version.model_id
            )
            .order_by("occurred_at", "id")
            .values_list("model_version_id", "event", "occurred_at", "model_version__version")
        ]
        for interval in live_intervals(events, version.pk):
            live.append({"environment": environment.name, **interval})
    finding_rows = [
        {
            "id": finding.pk,
            "title": finding.title,
            "severity": finding.severity,
            "status": finding.status,
            "raised_by": finding.raised_by.get_username(),
            "raised_at": _iso(finding.raised_at),
            "owner": finding.owner.get_username(),
            "due_date": finding.due_date.isoformat() if finding.due_date else None,
            "resolved_by": finding.resolved_by.get_username() if finding.resolved_by else None,
            "resolved_at": _iso(finding.resolved_at),
            "resolution": finding.resolution or None,
            "audit_seq": finding_seqs.get(str(finding.pk)),
        }
        for finding in findings
    ]
    checks = _checks(version, datasets, deployments, requests, now)
    failed = [check for check in checks if not check["passed"]]
    gate = [_gate_now(version, environment, now) for environment in Environment.objects.all()]
    return {
        "kind": "lineage",
        "as_of": now.isoformat(),
        "model_version": subject,
        "parents": [describe(member) for member in chain[1:]],
        "datasets": datasets,
        "requests": request_rows,
        "deployments": deployments,
        "findings": finding_rows,
        "live": live,
        "live_now": [row["environment"] for row in live if row["until"] is None],
        "gate": gate,
        "checks": checks,
        "verdict": "fail" if failed else "pass",
        "verdict_reasons": [f"{check_title(check['name'])}: {check['detail']}" for check in failed],
    }


def _gate_now(version: ModelVersion, environment: Environment, now: dt.datetime) -> dict[str, Any]:
    """The gate's answer at ``now`` for the version's registered artifact in ``environment``."""
    try:
        decision = approval_selectors.gate_decide(
            version=version, environment=environment, digest=version.artifact_digest, now=now
        )
    except DomainError as error:
        return {"environment": environment.name, "allowed": False, "status": "none",
                "reasons": [error.message]}  # fmt: skip
    return {
        "environment": environment.name,
        "allowed": decision.allowed,
        "status": decision.status,
        "reasons": decision.reasons,
        # Judged even when a break-glass request bypasses it, so the report can say so.
        "evidence": [
            {"kind": result.requirement.kind, "status": str(result.status)}
            for result in decision.evidence
        ],
    }


def _checks(
    version: ModelVersion,
    datasets: Sequence[Mapping[str, Any]],
    deployments: Sequence[Mapping[str, Any]],
    requests: Sequence[DeploymentRequest],
    now: dt.datetime,
) -> list[dict[str, Any]]:
    training = [d for d in datasets if d["used_by"] == version.version and d["role"] == "training"]
    unchecked = [
        d for d in deployments if d["event"] == DeploymentEvent.DEPLOYED and d["unchecked"]
    ]
    overdue: list[str] = []
    for request in requests:
        if request.retrospective_due_at is None:
            continue
        review = next((s for s in request.signoffs.all() if s.step == SignOff.RETROSPECTIVE), None)
        due = request.retrospective_due_at
        if review is None and due is not None and due < now:
            overdue.append(f"#{request.pk} (due {due:%Y-%m-%d %H:%M} UTC, not signed)")
        elif review is not None and due is not None and review.signed_at > due:
            overdue.append(f"#{request.pk} (signed {review.signed_at:%Y-%m-%d} after it was due)")
    results = [
        (
            "training_data",
            bool(training),
            _plural(len(training), "training dataset version")
            if training
            else "no training dataset version is recorded for this version",
        ),
        (
            "source_commit",
            bool(version.source_commit),
            version.source_commit or "no source commit is recorded for this version",
        ),
        (
            "gated_deployments",
            not unchecked,
            "every deployment had an allowing gate check"
            if not unchecked
            else "deployed without an allowing gate check: "
            + ", ".join(f"{d['environment']} at {_minute(d['occurred_at'])}" for d in unchecked),
        ),
        (
            "retrospectives",
            not overdue,
            "no retrospective review is overdue"
            if not overdue
            else "retrospective review overdue: " + ", ".join(overdue),
        ),
    ]
    return [
        {"name": name, "rule": CHECKS[name], "passed": passed, "detail": detail}
        for name, passed, detail in results
    ]


def graph_of(document: Mapping[str, Any]) -> LineageGraph:
    """The left-to-right drawing of a lineage document: dataset versions, model versions
    (parents above the version), sign-offs per deployment request, deployments per
    environment."""
    subject = document["model_version"]
    me = f"mv:{subject['version']}"
    nodes = [
        LineageNode(
            me,
            f"{subject['model']} v{subject['version']}",
            "model_version",
            subject["artifact_digest"][:19]
            + (f" @ {subject['source_commit'][:10]}" if subject.get("source_commit") else ""),
        )
    ]
    edges: list[LineageEdge] = []
    child = me
    for parent in document["parents"]:
        node = f"mv:{parent['version']}"
        nodes.append(
            LineageNode(node, f"{parent['model']} v{parent['version']}", "model_version",
                        parent["artifact_digest"][:19])
        )  # fmt: skip
        edges.append(LineageEdge(node, child, "parent"))
        child = node
    seen: set[str] = set()
    for row in document["datasets"]:
        node = f"ds:{row['dataset']}:{row['version']}"
        if node not in seen:
            seen.add(node)
            detail = f"{row['row_count']:,} rows" + (", PII" if row["pii"] else "")
            nodes.append(
                LineageNode(node, f"{row['dataset']} v{row['version']}", "dataset", detail)
            )
        edges.append(LineageEdge(node, f"mv:{row['used_by']}", row["role"]))
    for request in document["requests"]:
        node = f"rq:{request['id']}"
        signatures = len(request["signoffs"])
        nodes.append(
            LineageNode(
                node,
                f"#{request['id']} to {request['environment']}",
                "request",
                f"{REQUEST_STATES.get(request['state'], request['state'])} \u00b7 "
                + (
                    _plural(signatures, "signature")
                    if signatures
                    else ("awaiting signatures" if request["state"] == "pending" else "unsigned")
                ),
            )
        )
        edges.append(LineageEdge(me, node, "requested"))
    by_environment: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in document["live"]:
        by_environment[row["environment"]].append(row)
    for environment in dict.fromkeys(d["environment"] for d in document["deployments"]):
        node = f"env:{environment}"
        intervals = by_environment.get(environment, [])
        if any(row["until"] is None for row in intervals):
            detail = f"live since {intervals[-1]['from'][:10]}"
        elif intervals:
            times = "once" if len(intervals) == 1 else f"{len(intervals)} times"
            detail = f"live {times}, until {intervals[-1]['until'][:10]}"
        else:
            detail = "never live"
        nodes.append(LineageNode(node, environment, "deployment", detail))
        sources = sorted(
            {
                f"rq:{d['request']}"
                for d in document["deployments"]
                if d["environment"] == environment and d["request"] is not None
            }
        )
        for source in sources or [me]:
            edges.append(LineageEdge(source, node, "deployed"))
    return LineageGraph(nodes=nodes, edges=edges)

"""The regulator's package: one PDF/A-3b about a model (or the whole log) for a regulator.

It says what the inventory holds about the model (its card, its versions and the datasets of
each, every sign-off with its printed name, meaning and time, the reports' summaries, the
findings), shows the model's audit trail as a table bounded in pages, and carries the audit
export bundle (``audit.exports.bundle_write``) embedded byte for byte, verified first with
the offline verifier (``governance.reports.regulator.export_document``), with the checkpoint
it ends at and the fingerprint of the key that signed it. ``pdfdetach`` takes the bundle out
and ``python -m audit.verifier`` checks it without Warden.

A model's package is a filtered export: each record is proven to be in the log, but it cannot
prove that none is missing (the verifier's ``W_PARTIAL``), and its first page says so. A
package of the whole log without a time range is complete, and says that instead.

Writing a package is recorded once it is in place (``regulator_package.exported``: model,
range, record count, the package's and the bundle's SHA-256, who). From the pages a package
is a job (:class:`~governance.reports.models.RegulatorPackage`, run by
``governance.reports.tasks.run_package``); the command ``regulator_package`` writes one
directly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.utils import timezone

from audit import keys
from audit.actions import AuditAction
from audit.exports import ExportFailed, bundle_write, export_filter, export_permitted
from audit.models import AuditRecord, Checkpoint
from audit.services import Subject, audit_record
from core.accounts.actors import actor_for
from core.accounts.models import User
from core.actors import Actor
from core.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from core.roles import Role, has_role
from core.tasks import send_on_commit
from governance.approvals.models import Finding, SignOff
from governance.reports.models import (
    PackageStatus,
    RegulatorPackage,
    Report,
    ReportStatus,
)
from governance.reports.summary import result_summary
from registry.models import DatasetUsage, ModelVersion, RegisteredModel
from registry.selectors import visible_models

logger = logging.getLogger(__name__)

EXPORTED = AuditAction.REGULATOR_PACKAGE_EXPORTED
RUN_PACKAGE = "governance.reports.tasks.run_package"
# The audit trail printed: the latest records (the bundle holds them all). The export
# document keeps the first and last 250 of any bundle, so this many are always the latest.
TRAIL_LISTED = 120
MAX_LISTED = 400  # sign-offs, reports, findings, versions, models: beyond this, a count
READ_LOG = "audit.view_auditrecord"
# Who may package the whole log: those who read everything (DESIGN 4: auditors, "read-only
# everything, can export") and the officers who answer to the regulator; validators read
# the log too but do not speak for the institution.
FULL_LOG_ROLES = (Role.AUDITOR, Role.RISK_OFFICER, Role.COMPLIANCE_OFFICER, Role.ADMIN)

Progress = Callable[[str], None]


# Who may


def package_permitted(user: User, model: RegisteredModel) -> bool:
    """Whether ``user`` may make (and read) the package of ``model``: they see the model
    (``visible_models``) and may read the audit log, whose records the package carries
    (``audit.view_auditrecord``: validators, officers, auditors, administrators)."""
    if not user.is_active or not user.has_perm(READ_LOG):
        return False
    return RegisteredModel.objects.filter(visible_models(user), pk=model.pk).exists()


def full_log_permitted(user: User) -> bool:
    """Whether ``user`` may make (and read) the package of the whole log: auditors, risk and
    compliance officers, administrators (holders of the export permission included)."""
    if not user.is_active or not user.has_perm(READ_LOG):
        return False
    return export_permitted(user) or any(has_role(user, role) for role in FULL_LOG_ROLES)


# The request


@dataclass(frozen=True)
class PackageScope:
    """What a package covers: one model (``model``) or the whole log, within ``since``
    (inclusive) and ``until`` (exclusive), both aware or None."""

    model: str | None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    @property
    def complete(self) -> bool:
        """A package of every record: no model, no range (a full export)."""
        return self.model is None and self.since is None and self.until is None

    def describe(self) -> str:
        subject = f"model {self.model}" if self.model else "the whole audit log"
        return subject + range_words(self.since, self.until)


def range_words(since: dt.datetime | None, until: dt.datetime | None) -> str:
    """``, from ... to before ...`` (UTC), or nothing without a range."""
    if since and until:
        return f", from {_when(since)} to before {_when(until)}"
    if since:
        return f", from {_when(since)}"
    if until:
        return f", before {_when(until)}"
    return ""


def package_scope(
    *,
    model: str | None,
    full: bool,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> PackageScope:
    """A checked scope: exactly one of a model (which must be registered) or the whole log;
    times with a zone, ``since`` before ``until``. ``InvalidInput`` / ``NotFound`` with the
    field they concern."""
    if full and model:
        raise InvalidInput(
            "give a model or ask for the whole log, not both",
            fields={"model": ["leave empty for a package of the whole log"]},
        )
    if not full and not (model or "").strip():
        raise InvalidInput(
            "name a model, or ask for the whole log",
            fields={"model": ["name a registered model"]},
        )
    export_filter(model=model, since=since, until=until)  # zones and order, one wording
    if model is not None and not RegisteredModel.objects.filter(name=model).exists():
        raise NotFound(
            f"no registered model is named {model!r}",
            fields={"model": [f"no registered model is named {model!r}"]},
        )
    return PackageScope(model=model if not full else None, since=since, until=until)


# The content


def _when(value: dt.datetime | str | None) -> str:
    if value is None or value == "":
        return "\u2014"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _day(value: dt.date | None) -> str:
    return value.isoformat() if value else "\u2014"


def _name(user: User | None) -> str:
    if user is None:
        return "\u2014"
    return user.get_full_name() or user.get_username()


def _bounded(rows: Iterable[Any]) -> tuple[list[Any], int]:
    """At most ``MAX_LISTED`` rows and how many more there are."""
    listed: list[Any] = []
    more = 0
    for row in rows:
        if len(listed) < MAX_LISTED:
            listed.append(row)
        else:
            more += 1
    return listed, more


def _in_range(field: str, scope: PackageScope) -> Q:
    condition = Q()
    if scope.since is not None:
        condition &= Q(**{f"{field}__gte": scope.since})
    if scope.until is not None:
        condition &= Q(**{f"{field}__lt": scope.until})
    return condition


def _models(scope: PackageScope, using: str) -> list[RegisteredModel]:
    found = RegisteredModel.objects.using(using).select_related("owner", "team").order_by("name")
    if scope.model is not None:
        found = found.filter(name=scope.model)
    return list(found[: MAX_LISTED + 1])


def _card(model: RegisteredModel) -> dict[str, Any]:
    return {
        "name": model.name,
        "description": model.description,
        "owner": _name(model.owner),
        "team": model.team.name if model.team else "\u2014",
        "risk_tier": model.get_risk_tier_display(),
        "status": model.get_status_display(),
        "intended_use": model.intended_use,
        "limitations": model.limitations,
        "sensitive": ", ".join(str(a) for a in model.sensitive_attributes or []) or "none",
        "last_validated": _day(model.last_validated),
        "next_review": _day(model.next_review),
        "registered": _when(model.created_at),
    }


def _versions(scope: PackageScope, using: str) -> tuple[list[dict[str, Any]], int]:
    versions = ModelVersion.objects.using(using).select_related("model", "author", "parent")
    if scope.model is not None:
        versions = versions.filter(model__name=scope.model)
    versions = versions.order_by("model__name", "version")
    listed, more = _bounded(versions.iterator(chunk_size=200))
    usages: dict[int, list[dict[str, Any]]] = {}
    rows = (
        DatasetUsage.objects.using(using)
        .filter(model_version__in=[v.pk for v in listed])
        .select_related("dataset_version__dataset")
        .order_by("role", "dataset_version__dataset__name", "dataset_version__version")
    )
    for usage in rows:
        dataset = usage.dataset_version
        usages.setdefault(usage.model_version_id, []).append(
            {
                "role": usage.get_role_display(),
                "name": f"{dataset.dataset.name} v{dataset.version}",
                "digest": dataset.content_digest,
                "rows": f"{dataset.row_count:,}" if dataset.row_count is not None else "",
                "pii": bool(dataset.pii),
            }
        )
    return [
        {
            "model": v.model.name,
            "version": v.version,
            "status": v.get_status_display(),
            "registered": _when(v.created_at),
            "author": _name(v.author),
            "digest": v.artifact_digest,
            "framework": v.framework or "",
            "commit": v.source_commit or "",
            "parent": f"v{v.parent.version}" if v.parent else "",
            "datasets": usages.get(v.pk, []),
        }
        for v in listed
    ], more


def _signoffs(scope: PackageScope, using: str) -> tuple[list[dict[str, Any]], int]:
    found = (
        SignOff.objects.using(using)
        .select_related("request__environment", "request__model_version__model")
        .filter(_in_range("signed_at", scope))
        .order_by("signed_at", "id")
    )
    if scope.model is not None:
        found = found.filter(request__model_version__model__name=scope.model)
    listed, more = _bounded(found.iterator(chunk_size=200))
    return [
        {
            "printed_name": s.printed_name,
            "meaning": s.get_meaning_display(),
            "decision": s.get_decision_display(),
            "signed_at": _when(s.signed_at),
            "step": s.step,
            "request": s.request_id,
            "model": s.request.model_version.model.name,
            "version": s.request.model_version.version,
            "environment": s.request.environment.name,
            "state": s.request.get_state_display(),
            "comment": s.comment,
            "signed_sha256": s.signed_sha256,
        }
        for s in listed
    ], more


FIGURES = {
    "fairness": (
        ("demographic_parity_ratio", "demographic parity ratio"),
        ("equalized_odds_difference", "equalized odds difference"),
    ),
}


def _figures(kind: str, summary: dict[str, Any]) -> list[str]:
    """The key figures of a report, in words."""
    if kind == "fairness":
        metrics = summary.get("metrics") or {}
        shown = [
            f"{label} {float(metrics[key]):.3f}"
            for key, label in FIGURES["fairness"]
            if metrics.get(key) is not None
        ]
        flagged = len(summary.get("flagged_groups") or [])
        groups = summary.get("groups", 0)
        plural = "" if groups == 1 else "s"
        return [*shown, f"{flagged} of {groups} group{plural} below the four-fifths line"]
    if kind == "drift":
        share = summary.get("share")
        columns = summary.get("drifted_columns") or []
        return [
            f"{summary.get('drifted_count', 0)} of {summary.get('evaluated_count', 0)} columns "
            f"drifted" + (f" ({float(share) * 100:.0f} %)" if share is not None else ""),
            *([f"drifted: {', '.join(str(c) for c in columns[:8])}"] if columns else []),
        ]
    if kind == "lineage":
        live = summary.get("live_now") or []
        return [
            f"{summary.get('datasets', 0)} dataset versions, {summary.get('requests', 0)} "
            f"requests, {summary.get('signoffs', 0)} signatures",
            f"live in {', '.join(live) if live else 'no environment'}",
        ]
    return []


def _reports(scope: PackageScope, using: str) -> tuple[list[dict[str, Any]], int]:
    found = (
        Report.objects.using(using)
        .select_related("model_version__model", "requested_by")
        .filter(status=ReportStatus.DONE, model_version__isnull=False)
        .filter(_in_range("finished_at", scope))
        .order_by("finished_at", "id")
    )
    if scope.model is not None:
        found = found.filter(model_version__model__name=scope.model)
    listed, more = _bounded(found.iterator(chunk_size=50))
    rows = []
    for report in listed:
        try:
            summary = result_summary(json.loads(report.result_json))
        except (ValueError, KeyError, TypeError):
            summary = {}
        version = report.model_version
        rows.append(
            {
                "kind": report.get_kind_display(),
                "model": version.model.name if version else "",
                "version": version.version if version else "",
                "verdict": report.get_verdict_display(),
                "passed": report.verdict == "pass",
                "figures": _figures(report.kind, summary),
                "overridden": report.thresholds_overridden,
                "finished": _when(report.finished_at),
                "requested_by": _name(report.requested_by),
                "pdf_sha256": report.pdf_sha256,
                "id": str(report.pk),
            }
        )
    return rows, more


def _findings(scope: PackageScope, using: str) -> tuple[list[dict[str, Any]], int]:
    found = (
        Finding.objects.using(using)
        .select_related("model_version__model", "owner", "raised_by", "resolved_by")
        .order_by("raised_at", "id")
    )
    if scope.model is not None:
        found = found.filter(model_version__model__name=scope.model)
    if scope.until is not None:
        found = found.filter(raised_at__lt=scope.until)
    if scope.since is not None:  # open at some time in the range
        found = found.filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=scope.since))
    listed, more = _bounded(found.iterator(chunk_size=200))
    return [
        {
            "title": f.title,
            "model": f.model_version.model.name,
            "version": f.model_version.version,
            "severity": f.get_severity_display(),
            "high": f.severity in ("high", "critical"),
            "status": f.get_status_display(),
            "open": f.resolved_at is None,
            "owner": _name(f.owner),
            "due": _day(f.due_date),
            "raised": f"{_when(f.raised_at)} by {_name(f.raised_by)}",
            "resolved": f"{_when(f.resolved_at)} by {_name(f.resolved_by)}: {f.resolution}"
            if f.resolved_at
            else "",
        }
        for f in listed
    ], more


def _breakable(action: str) -> str:
    return action.replace(".", ".\u200b").replace("_", "_\u200b")


def _fingerprints() -> list[dict[str, str]]:
    """Each trusted verification key: name, key id, SHA-256 of the raw public key (the
    fingerprint to compare with the one published), and the key string to give
    ``--key``."""
    out = []
    for verifier in keys.trusted_verifiers():
        digest = hashlib.sha256(verifier.public_key).hexdigest()
        out.append(
            {
                "name": verifier.name,
                "key_id": verifier.key_id_hex,
                "fingerprint": " ".join(digest[i : i + 4] for i in range(0, 64, 4)),
                "key": verifier.key_string(),
            }
        )
    return out


def _statement(scope: PackageScope, records: int, size: int) -> tuple[str, str]:
    """The first page's headline and sentence on what the package proves."""
    if scope.complete:
        return (
            "Complete audit log",
            f"This package holds every record of the audit log, {records:,} in all, up to the "
            f"signed checkpoint of size {size:,}. It is complete: the verifier recomputes the "
            "checkpoint's root from all of them, so a record removed, added or changed would "
            "be detected.",
        )
    what = f"the records about model {scope.model}" if scope.model else "the records"
    return (
        "Filtered export: completeness not proven",
        f"This package holds {what}{range_words(scope.since, scope.until)}, {records:,} "
        f"in all. Each of them is proven to be in the signed audit log (an inclusion proof "
        f"against the checkpoint of size {size:,}), but a filtered export does not prove "
        "that no record is missing: a record left out would not be detected. Only a package "
        "of the whole log proves completeness.",
    )


# Building


@dataclass(frozen=True)
class PackageBuilt:
    """A package written at ``path``: its SHA-256 and size, and the bundle it embeds."""

    path: Path
    sha256: str
    size_bytes: int
    records: int
    bundle_sha256: str
    bundle_name: str
    checkpoint_size: int
    verified: bool
    pages_listed: int


def _bundle_name(scope: PackageScope, moment: dt.datetime) -> str:
    stamp = moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"warden-audit-{scope.model or 'full'}-{stamp}.zip"


def _document(
    scope: PackageScope,
    *,
    package_id: str,
    exported: dict[str, Any],
    checkpoint: Checkpoint | None,
    actor: Actor,
    generated_at: dt.datetime,
    using: str,
) -> dict[str, Any]:
    """Everything the package shows, JSON-ready (it is embedded as the machine-readable
    content)."""
    models = _models(scope, using)
    versions, versions_more = _versions(scope, using)
    signoffs, signoffs_more = _signoffs(scope, using)
    reports, reports_more = _reports(scope, using)
    findings, findings_more = _findings(scope, using)
    summary = exported["summary"]
    verification = exported["verification"]
    records = int(summary["records"])
    size = checkpoint.size if checkpoint else 0
    headline, statement = _statement(scope, records, size)
    listed = exported["records_listed"][-TRAIL_LISTED:]
    warnings = [f for f in verification.get("findings") or [] if not f["code"].startswith("E_")]
    return {
        "kind": "regulator_package",
        "package": package_id,
        "scope": {
            "model": scope.model,
            "since": scope.since.isoformat() if scope.since else None,
            "until": scope.until.isoformat() if scope.until else None,
            "complete": scope.complete,
            "described": scope.describe(),
            "period": range_words(scope.since, scope.until).removeprefix(", "),
        },
        "generated_at": _when(generated_at),
        "generated_by": actor.name,
        "headline": headline,
        "statement": statement,
        "models": [_card(m) for m in models[:MAX_LISTED]],
        "models_more": max(len(models) - MAX_LISTED, 0),
        "versions": versions,
        "versions_more": versions_more,
        "signoffs": signoffs,
        "signoffs_more": signoffs_more,
        "reports": reports,
        "reports_more": reports_more,
        "findings": findings,
        "findings_more": findings_more,
        "open_findings": sum(1 for f in findings if f["open"]),
        "trail": [
            # Long dotted actions break at their dots and underscores, not mid-word.
            {**row, "ts": _when(row["ts"]), "action_shown": _breakable(str(row["action"]))}
            for row in reversed(listed)
        ],
        "trail_total": records,
        "trail_listed": len(listed),
        "bundle": exported["bundle"],
        "verified": exported["verdict"] == "pass",
        "verdict_reasons": exported["verdict_reasons"],
        "warnings": warnings,
        "verification": {
            "kind": verification.get("kind"),
            "records": verification.get("records"),
            "first_seq": verification.get("first_seq"),
            "last_seq": verification.get("last_seq"),
            "errors": sum(
                1 for f in verification.get("findings") or [] if f["code"].startswith("E_")
            ),
        },
        "checkpoint": {
            "size": size,
            "root": checkpoint.root if checkpoint else "",
            "signed_at": _when(checkpoint.created_at) if checkpoint else "\u2014",
            "keys": list(checkpoint.key_names) if checkpoint else [],
            "note": checkpoint.note if checkpoint else "",
        },
        "keys": _fingerprints(),
        "signatures_in_bundle": summary["signatures"],
        "actions": summary["actions"][:12],
    }


def _write_new(path: Path, data: bytes) -> None:
    """``data`` beside ``path`` under a temporary name, then renamed there."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o640)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def package_write(
    *,
    out: Path,
    scope: PackageScope,
    actor: Actor,
    package_id: str | None = None,
    progress: Progress | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> PackageBuilt:
    """Export the scope's bundle (a checkpoint is signed first), verify it with the offline
    verifier against the log's verification keys, and write the package at ``out``
    (replaced whole: written beside it, then renamed). Does not record it:
    :func:`package_record` does, once the caller has the file where it belongs.

    Raises the export's errors (``ExportFailed``, ``Conflict`` on an empty log, ``NotFound``)
    and ``OSError``; nothing is left at ``out`` on failure."""
    step = progress or (lambda _stage: None)
    step("loading the PDF renderer")
    # The PDF libraries load with the job, never with the pages that start it.
    from governance.reports.pdf import EmbeddedFile
    from governance.reports.pdf.render import html_to_pdf
    from governance.reports.regulator import export_document

    package_id = package_id or str(uuid.uuid4())
    generated_at = timezone.now()
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".package-") as directory:
        name = _bundle_name(scope, generated_at)
        step("exporting the audit records")
        bundle = bundle_write(
            path=Path(directory) / name,
            actor=actor,
            model=scope.model,
            since=scope.since,
            until=scope.until,
            using=using,
        )
        step(f"verifying {bundle.records:,} records offline")
        exported = export_document(bundle.path, keys.verification_key_lines(), name=name)
        checkpoint = (
            Checkpoint.objects.using(using)
            .filter(log=settings.AUDIT_LOG_ORIGIN, size=bundle.checkpoint_size)
            .first()
        )
        step("collecting the inventory, sign-offs, reports and findings")
        document = _document(
            scope,
            package_id=package_id,
            exported=exported,
            checkpoint=checkpoint,
            actor=actor,
            generated_at=generated_at,
            using=using,
        )
        payload = json.dumps(document, ensure_ascii=False, allow_nan=False).encode()
        step("rendering the PDF")
        html = render_to_string(
            "reports/package/package.html",
            {**document, "payload_sha256": hashlib.sha256(payload).hexdigest()},
        )
        pdf = html_to_pdf(
            html,
            attachment=payload,
            attachment_name=f"warden-package-{package_id}.json",
            generated_at=generated_at,
            embedded=[
                EmbeddedFile(
                    name=name,
                    path=str(bundle.path),
                    description="The audit export bundle (zip) of this package, as exported; "
                    "verify it with python -m audit.verifier",
                )
            ],
        )
        _write_new(out, pdf)
    return PackageBuilt(
        path=out,
        sha256=hashlib.sha256(pdf).hexdigest(),
        size_bytes=len(pdf),
        records=bundle.records,
        bundle_sha256=bundle.sha256,
        bundle_name=name,
        checkpoint_size=bundle.checkpoint_size,
        verified=bool(document["verified"]),
        pages_listed=len(document["trail"]),
    )


def package_record(
    *,
    built: PackageBuilt,
    scope: PackageScope,
    actor: Actor,
    package_id: str,
    using: str = DEFAULT_DB_ALIAS,
) -> AuditRecord:
    """Record ``regulator_package.exported`` (in the caller's transaction): who wrote the
    package of what, with its SHA-256 and that of the bundle it embeds."""
    return audit_record(
        action=EXPORTED,
        actor=actor,
        object=Subject(
            type="regulator_package", id=package_id, label=f"package of {scope.describe()}"
        ),
        scope={"model": scope.model} if scope.model else {},
        data={
            "model": scope.model,
            "since": scope.since.isoformat() if scope.since else None,
            "until": scope.until.isoformat() if scope.until else None,
            "complete": scope.complete,
            "records": built.records,
            "checkpoint_size": built.checkpoint_size,
            "verified": built.verified,
            "sha256": built.sha256,
            "bytes": built.size_bytes,
            "bundle_sha256": built.bundle_sha256,
            "bundle": built.bundle_name,
        },
        using=using,
    )


def package_export(
    *,
    out: Path,
    scope: PackageScope,
    actor: Actor,
    progress: Progress | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> tuple[PackageBuilt, AuditRecord]:
    """Write the package at ``out`` and record it: the command line's package. ``InvalidInput``
    when ``out``'s directory does not exist; the file is removed again if the record cannot
    be appended."""
    if not out.parent.is_dir():
        raise InvalidInput(f"directory {out.parent} does not exist")
    package_id = str(uuid.uuid4())
    built = package_write(
        out=out, scope=scope, actor=actor, package_id=package_id, progress=progress, using=using
    )
    try:
        with transaction.atomic(using=using, durable=True):
            record = package_record(
                built=built, scope=scope, actor=actor, package_id=package_id, using=using
            )
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            out.unlink()
        raise
    return built, record


# The job of the pages


def package_directory() -> Path:
    """Where the pages' packages are stored: ``REPORTS_DIR/packages``."""
    return Path(settings.REPORTS_DIR) / "packages"


def package_request(
    *,
    user: User,
    model: RegisteredModel | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> RegulatorPackage:
    """Queue the package of ``model`` (None: the whole log) for ``user`` and send its job once
    the row commits. ``Forbidden`` unless :func:`package_permitted` (or
    :func:`full_log_permitted`); the view has already found the model among those the user
    sees. Nothing is recorded yet: the package is, once written."""
    if model is None and not full_log_permitted(user):
        raise Forbidden("a package of the whole log is for auditors, risk and compliance officers")
    if model is not None and not package_permitted(user, model):
        raise Forbidden("a regulator's package needs the right to read the audit log")
    scope = package_scope(
        model=model.name if model else None, full=model is None, since=since, until=until
    )
    with transaction.atomic():
        package = RegulatorPackage.objects.create(
            model=model,
            full=model is None,
            since=scope.since,
            until=scope.until,
            requested_by=user,
            progress="queued",
        )
        send_on_commit(RUN_PACKAGE, str(package.pk))
    return package


def package_visible(user: User, package: RegulatorPackage) -> bool:
    """Whether ``user`` may see ``package``: whoever may make the same package."""
    if package.model is None:
        return full_log_permitted(user)
    return package_permitted(user, package.model)


def package_get(*, user: User, package_id: uuid.UUID | str) -> RegulatorPackage:
    """One package ``user`` may see; ``NotFound`` otherwise (out of scope looks the same)."""
    package = (
        RegulatorPackage.objects.select_related("model", "requested_by")
        .filter(pk=package_id)
        .first()
    )
    if package is None or not package_visible(user, package):
        raise NotFound(f"no regulator's package {package_id}")
    return package


def package_file(package: RegulatorPackage) -> Path:
    """The PDF of a done package; ``Conflict`` before, ``NotFound`` if the file is gone."""
    if package.status != PackageStatus.DONE:
        raise Conflict(f"the package is {package.get_status_display().lower()}")
    path = package_directory() / package.file
    if not path.is_file():
        raise NotFound("the package's file is missing from REPORTS_DIR")
    return path


def package_run(package_id: str) -> str:
    """Run a package's job once: ``done`` (written as ``<id>-<attempt>.pdf``, recorded in the
    transaction that makes the row done), ``failed`` (the reason in ``error``), ``skipped``
    when there is nothing to do (done, failed, or running under another live attempt), or
    ``lost`` when another attempt finished first.

    The claim is one conditional UPDATE: a queued package, or a running one whose attempt
    started longer than ``REPORTS_LEASE_SECONDS`` ago (its worker was lost and the message
    redelivered). Each attempt writes its own file and finishes only if it is still the
    package's attempt, so two runs never both record."""
    now = timezone.now()
    stale = now - dt.timedelta(seconds=settings.REPORTS_LEASE_SECONDS)
    claimable = Q(status=PackageStatus.QUEUED) | Q(
        status=PackageStatus.RUNNING, started_at__lt=stale
    )
    claimed = RegulatorPackage.objects.filter(claimable, pk=package_id).update(
        status=PackageStatus.RUNNING, started_at=now, progress="starting"
    )
    if not claimed:
        return "skipped"
    package = RegulatorPackage.objects.select_related("model", "requested_by").get(pk=package_id)
    mine = RegulatorPackage.objects.filter(
        pk=package.pk, status=PackageStatus.RUNNING, started_at=now
    )
    actor = actor_for(package.requested_by, "session")  # the person who asked on the pages
    scope = PackageScope(
        model=package.model.name if package.model else None,
        since=package.since,
        until=package.until,
    )
    directory = package_directory()
    target = directory / f"{package.pk}-{now.strftime('%Y%m%dT%H%M%S%f')}.pdf"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        built = package_write(
            out=target,
            scope=scope,
            actor=actor,
            package_id=str(package.pk),
            progress=lambda stage: _progress(mine, stage),
        )
        with transaction.atomic():
            finished = mine.update(
                status=PackageStatus.DONE,
                progress="done",
                file=target.name,
                sha256=built.sha256,
                size_bytes=built.size_bytes,
                record_count=built.records,
                bundle_sha256=built.bundle_sha256,
                finished_at=timezone.now(),
            )
            if finished:
                package_record(built=built, scope=scope, actor=actor, package_id=str(package.pk))
        if not finished:
            target.unlink(missing_ok=True)
            return "lost"
    except (ExportFailed, DomainError) as exc:
        return _fail(mine, target, exc.message)
    except OSError as exc:
        return _fail(mine, target, f"cannot write the package: {exc}")
    except Exception as exc:
        logger.exception("regulator's package %s failed", package.pk)
        return _fail(mine, target, f"internal error ({type(exc).__name__}): {exc}")
    return "done"


def _progress(mine: QuerySet[RegulatorPackage], stage: str) -> None:
    mine.update(progress=stage)


def _fail(mine: QuerySet[RegulatorPackage], target: Path, message: str) -> str:
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    mine.update(
        status=PackageStatus.FAILED,
        progress="failed",
        error=message[:2000],
        finished_at=timezone.now(),
    )
    logger.warning("regulator's package failed (%s): %s", target.name, message)
    return "failed"

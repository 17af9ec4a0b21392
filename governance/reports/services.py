"""Writes of reports: requesting one, and the job's claim, progress, completion and failure.

Every change of a ``Report`` commits with its audit record: ``report.requested`` (inputs and
their SHA-256, parameters, thresholds), ``report.started`` (which worker, which attempt,
whether it took over an expired lease), ``report.completed`` (verdict, the PDF's SHA-256, the
audit seq at generation) and ``report.failed`` (the message). Progress and heartbeats touch
only the ``ReportJob`` row.

A job is claimed by one conditional UPDATE on ``ReportJob`` (not finished, and never claimed
or its lease expired), so when a message is delivered twice, or a dead worker's report is
requeued, exactly one worker wins; a worker that lost its lease can neither report progress
nor complete (``LeaseLost``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.actions import AuditAction
from audit.exports import EXPORT_PERMISSION, audit_export_file
from audit.models import AuditExport, LogHead
from audit.services import Subject, audit_record
from core.accounts.callers import Caller
from core.actors import Actor
from core.errors import (
    UPLOAD_NO_SPACE_MESSAGE,
    Forbidden,
    InvalidInput,
    insufficient_storage,
    is_out_of_space,
)
from core.roles import REPORT_REQUESTING_ROLES, has_role
from core.tasks import send_on_commit
from governance.approvals.models import Environment, SignOffPolicy
from governance.reports.engine import DriftOptions, FairnessOptions, InputError, MethodChoice
from governance.reports.evidence import evidence_entry_write
from governance.reports.models import (
    InputRole,
    Report,
    ReportInput,
    ReportJob,
    ReportKind,
    ReportStatus,
    Verdict,
)
from registry.models import DatasetVersion, ModelVersion

# The task that runs the report job, by its registered name (its module imports this one).
RUN_REPORT = "governance.reports.tasks.run_report"

# Holders of these roles may request reports on the versions they can see; auditors only read.
REQUESTING_ROLES = REPORT_REQUESTING_ROLES
ROLES_BY_KIND = {
    ReportKind.FAIRNESS: (InputRole.EVALUATION,),
    ReportKind.DRIFT: (InputRole.REFERENCE, InputRole.CURRENT),
    ReportKind.LINEAGE: (),
}
FAIRNESS_DEFAULTS = {"min_impact_ratio": "0.8", "max_equalized_odds_difference": "0.1"}
DRIFT_DEFAULTS = {"drift_share": "0.5"}
CHUNK = 1 << 20
LINEAGE_POLICY_LABEL = "none: completeness checks of the lineage record"
REGULATOR_POLICY_LABEL = "none: the offline verifier's checks"


class LeaseLost(RuntimeError):
    """This worker no longer holds the report's job (another took it over, or it is done)."""


@dataclass(frozen=True)
class StagedInput:
    """An input ready to be recorded: where it is, what it is, its digest."""

    role: str
    name: str
    path: str
    relative: str
    sha256: str
    size: int
    dataset_version: DatasetVersion | None


def _subject(report: Report) -> Subject:
    return Subject(type="report", id=str(report.pk), label=f"{report.kind} report")


def _scope(version: ModelVersion | None) -> dict[str, Any]:
    """What a report's records belong to: its model version (a regulator's export belongs
    to no model: ``{}``)."""
    if version is None:
        return {}
    return {"model": version.model.name, "version": version.version}


def _decimal(value: Any) -> str:
    return format(Decimal(str(value)).normalize(), "f")


def policy_thresholds(
    version: ModelVersion, kind: str
) -> tuple[SignOffPolicy | None, str, dict[str, str]]:
    """The thresholds a report of ``kind`` on ``version`` is judged against: those of the
    current policy of the highest environment whose policy for the model's risk tier requires
    this kind of evidence, else the engine's defaults (METRICS_SPEC)."""
    defaults = FAIRNESS_DEFAULTS if kind == ReportKind.FAIRNESS else DRIFT_DEFAULTS
    tier = version.model.risk_tier
    for environment in Environment.objects.order_by("-position"):
        policy = (
            SignOffPolicy.objects.filter(environment=environment, risk_tier=tier)
            .order_by("-version")
            .first()
        )
        if policy is None:
            continue
        for item in policy.evidence or []:
            if item.get("kind") != kind:
                continue
            thresholds = dict(defaults)
            for key, value in (item.get("thresholds") or {}).items():
                if key in defaults:
                    thresholds[key] = _decimal(value)
            return policy, str(policy), thresholds
    return None, "none: engine defaults", dict(defaults)


def fairness_options(
    parameters: Mapping[str, Any], thresholds: Mapping[str, str]
) -> FairnessOptions:
    """The engine's options of a fairness report's parameters and thresholds."""
    return FairnessOptions(
        label=parameters["label"],
        prediction=parameters["prediction"],
        sensitive=list(parameters["sensitive"]),
        positive_label=parameters.get("positive_label"),
        prediction_positive=parameters.get("prediction_positive") or None,
        favorable_label=parameters.get("favorable_label"),
        privileged=dict(parameters.get("privileged") or {}),
        min_group_size=int(thresholds.get("min_group_size", 30)),
        min_impact_ratio=float(thresholds["min_impact_ratio"]),
        max_equalized_odds_difference=float(thresholds["max_equalized_odds_difference"]),
        thresholds_source=str(parameters.get("thresholds_source", "default")),
    )


def drift_options(parameters: Mapping[str, Any], thresholds: Mapping[str, str]) -> DriftOptions:
    """The engine's options of a drift report's parameters and thresholds."""
    threshold = thresholds.get("threshold")
    return DriftOptions(
        column_types=dict(parameters.get("column_types") or {}),
        columns=list(parameters["columns"]) if parameters.get("columns") else None,
        exclude=list(parameters.get("exclude") or []),
        method=MethodChoice(threshold=float(threshold) if threshold is not None else None),
        drift_share=float(thresholds["drift_share"]),
        thresholds_source=str(parameters.get("thresholds_source", "default")),
    )


def _store_upload(upload: UploadedFile, target: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with target.open("wb") as out:
        for chunk in upload.chunks(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return digest.hexdigest(), size


def dataset_file(dataset_version: DatasetVersion) -> Path:
    """The local file of a registered dataset version: its ``source_uri`` (a path or a
    ``file://`` URI) inside one of ``REPORTS_DATASET_ROOTS``."""
    uri = dataset_version.source_uri
    raw = uri.removeprefix("file://")
    label = f"dataset {dataset_version}"
    if not raw or "://" in raw:
        raise InputError(f"source_uri {uri!r} is not a local file", source=label)
    path = Path(raw).resolve()
    roots = [Path(root).resolve() for root in settings.REPORTS_DATASET_ROOTS]
    if not any(path.is_relative_to(root) for root in roots):
        raise InputError(
            f"source_uri {uri!r} is outside the readable dataset directories "
            "(REPORTS_DATASET_ROOTS)",
            source=label,
        )
    if not path.is_file():
        raise InputError(f"source_uri {uri!r}: file does not exist", source=label)
    return path


def _file_sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


@contextmanager
def _staging(report_id: uuid.UUID) -> Iterator[Path]:
    """The report's upload directory, removed again if anything fails before commit."""
    directory = Path(settings.REPORTS_UPLOAD_DIR) / str(report_id)
    directory.mkdir(parents=True, exist_ok=False)
    try:
        yield directory
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


@contextmanager
def _refused_when_full() -> Iterator[None]:
    """A disk (or quota) that fills up while the inputs are stored refuses the request
    (``InsufficientStorage``, 507); ``_staging`` has removed what was written by then."""
    try:
        yield
    except OSError as exc:
        if is_out_of_space(exc):
            raise insufficient_storage(exc, UPLOAD_NO_SPACE_MESSAGE) from exc
        raise


def _stage(
    *,
    version: ModelVersion,
    directory: Path,
    role: str,
    upload: UploadedFile | None,
    dataset_version: DatasetVersion | None,
) -> StagedInput:
    registered = DatasetVersion.objects.filter(usages__model_version=version)
    if upload is not None:
        name = Path(upload.name or role).name or role
        suffix = "".join(Path(name).suffixes[-1:]).lower()
        target = directory / f"{role}{suffix if suffix in ('.csv', '.parquet') else ''}"
        sha256, size = _store_upload(upload, target)
        # An upload of a registered dataset version's bytes is that dataset version.
        match = registered.filter(content_digest=f"sha256:{sha256}").first()
        relative = str(target.relative_to(Path(settings.REPORTS_UPLOAD_DIR)))
        return StagedInput(role, name, str(target), relative, sha256, size, match)
    if dataset_version is None:  # report_request asks for one of the two first
        raise InvalidInput(
            f"the {role} input needs a file or a dataset version",
            fields={role: ["give a file or a dataset version"]},
        )
    path = dataset_file(dataset_version)
    sha256, size = _file_sha256(path)
    if f"sha256:{sha256}" != dataset_version.content_digest:
        raise InputError(
            f"the file's SHA-256 {sha256} differs from the registered content digest",
            source=f"dataset {dataset_version}",
        )
    return StagedInput(role, str(dataset_version), str(path), "", sha256, size, dataset_version)


def _check(
    kind: str,
    staged: list[StagedInput],
    parameters: Mapping[str, Any],
    thresholds: Mapping[str, str],
) -> None:
    """Run the engine on the first rows of the staged inputs (nothing to check for a
    lineage report). The computation, and with it pandas and pyarrow, is imported here, by the
    first fairness or drift request, not with the API."""
    if kind == ReportKind.LINEAGE:
        return
    from governance.reports import computation

    files = {s.role: computation.InputFile(s.path, s.name, s.role) for s in staged}
    if kind == ReportKind.FAIRNESS:
        computation.check_fairness(
            files[InputRole.EVALUATION], fairness_options(parameters, thresholds)
        )
    else:
        computation.check_drift(
            files[InputRole.REFERENCE],
            files[InputRole.CURRENT],
            drift_options(parameters, thresholds),
        )


def report_request(
    *,
    caller: Caller,
    version: ModelVersion,
    kind: str,
    parameters: Mapping[str, Any],
    uploads: Mapping[str, UploadedFile],
    datasets: Mapping[str, DatasetVersion],
    overrides: Mapping[str, Any],
) -> Report:
    """Record a report request on a version the caller can see (the view found it through
    the registry's selectors) and stage its inputs.

    The inputs are stored under ``REPORTS_UPLOAD_DIR/<id>/`` with their SHA-256, then checked
    (header, columns, the engine on the first rows): bad input is ``InvalidInput`` and leaves
    nothing behind, neither files nor rows; so is a disk that fills up meanwhile
    (``InsufficientStorage``). ``overrides`` replace policy thresholds; such a
    report is marked ``thresholds_overridden`` and never counts as evidence. The job's task
    is sent once the request commits (``_queue``), whoever calls.
    """
    if not any(has_role(caller.user, role) for role in REQUESTING_ROLES):
        raise Forbidden(
            "requesting a report needs a data science, validation, officer or admin role"
        )
    roles = ROLES_BY_KIND[ReportKind(kind)]
    for role in roles:
        if (role in uploads) == (role in datasets):
            raise InvalidInput(
                f"{kind} needs exactly one {role} input: a file or a dataset version",
                fields={role: ["give a file or a dataset version, not both or neither"]},
            )
    thresholds: dict[str, str]
    if kind == ReportKind.LINEAGE:
        policy, policy_label, thresholds = None, LINEAGE_POLICY_LABEL, {}
    else:
        policy, policy_label, thresholds = policy_thresholds(version, kind)
    clean_overrides = {
        key: _decimal(value) for key, value in overrides.items() if value is not None
    }
    thresholds = {**thresholds, **clean_overrides}
    if "min_group_size" in clean_overrides:
        thresholds["min_group_size"] = str(int(Decimal(clean_overrides["min_group_size"])))
    report_id = uuid.uuid4()
    staging = _staging(report_id) if roles else nullcontext(Path())
    with _refused_when_full(), staging as directory:
        try:
            staged = [
                _stage(
                    version=version,
                    directory=directory,
                    role=role,
                    upload=uploads.get(role),
                    dataset_version=datasets.get(role),
                )
                for role in roles
            ]
            _check(kind, staged, parameters, thresholds)
        except InputError as exc:
            raise InvalidInput(exc.message) from exc
        with transaction.atomic():
            report = Report.objects.create(
                id=report_id,
                kind=kind,
                model_version=version,
                parameters=dict(parameters),
                thresholds=thresholds,
                thresholds_overridden=bool(clean_overrides),
                policy=policy,
                policy_label=policy_label,
                requested_by=caller.user,
            )
            for item in staged:
                ReportInput.objects.create(
                    report=report,
                    role=item.role,
                    name=item.name,
                    path=item.relative,
                    dataset_version=item.dataset_version,
                    sha256=item.sha256,
                    size=item.size,
                )
            _queue(
                report,
                caller,
                {
                    "kind": kind,
                    "parameters": json.loads(json.dumps(dict(parameters))),
                    "thresholds": thresholds,
                    "thresholds_overridden": bool(clean_overrides),
                    "policy": policy_label,
                    "inputs": [
                        {
                            "role": item.role,
                            "name": item.name,
                            "sha256": item.sha256,
                            "size": item.size,
                            "dataset_version": item.dataset_version.pk
                            if item.dataset_version
                            else None,
                        }
                        for item in staged
                    ],
                },
            )
    return report


def _queue(report: Report, caller: Caller, data: dict[str, Any]) -> None:
    """The report's job and its ``report.requested`` record, in the caller's transaction,
    and ``run_report`` sent once it commits (never for a request that rolled back): the API,
    the admin and commands enqueue alike."""
    ReportJob.objects.create(report=report)
    send_on_commit(RUN_REPORT, str(report.pk))
    audit_record(
        action=AuditAction.REPORT_REQUESTED,
        actor=caller.actor,
        object=_subject(report),
        scope=_scope(report.model_version),
        data=data,
    )


def regulator_export_request_authorize(*, caller: Caller) -> None:
    """``Forbidden`` unless the caller holds the export permission."""
    if not caller.user.has_perm(EXPORT_PERMISSION):
        raise Forbidden(
            f"the regulator's PDF of an export needs the {EXPORT_PERMISSION} permission"
        )


def regulator_export_request(*, caller: Caller, export: AuditExport) -> Report:
    """Record a request for the regulator's PDF of an audit export bundle (one the view
    found among the caller's own exports). Only holders of the export permission may ask,
    and only for a done export whose bundle is still there; the job verifies the bundle with
    the offline verifier and the log's verification keys and renders it. The job's task is
    sent once the request commits (``_queue``)."""
    regulator_export_request_authorize(caller=caller)
    audit_export_file(export=export)  # Conflict until done, NotFound if the file is gone
    with transaction.atomic():
        report = Report.objects.create(
            kind=ReportKind.REGULATOR_EXPORT,
            audit_export=export,
            policy_label=REGULATOR_POLICY_LABEL,
            requested_by=caller.user,
        )
        _queue(
            report,
            caller,
            {
                "kind": ReportKind.REGULATOR_EXPORT.value,
                "export": str(export.pk),
                "bundle_sha256": export.sha256,
                "records": export.record_count,
                "checkpoint_size": export.checkpoint_size,
            },
        )
    return report


def _worker_actor(worker: str) -> Actor:
    return Actor(type="system", id="warden", name="Warden", auth=f"worker:{worker}"[:200])


def report_claim(*, report_id: str | uuid.UUID, worker: str) -> Report | None:
    """Take the report's job for ``worker``: a conditional UPDATE that succeeds only when the
    job is not finished and has no live lease, so exactly one worker wins. The report becomes
    ``running`` (``report.started``); None when done, failed or held by a live lease."""
    now = timezone.now()
    lease = now + dt.timedelta(seconds=settings.REPORTS_LEASE_SECONDS)
    with transaction.atomic():
        won = (
            ReportJob.objects.filter(report_id=report_id, finished=False)
            .filter(Q(worker="") | Q(lease_expires_at__lt=now))
            .update(
                worker=worker, lease_expires_at=lease, heartbeat_at=now, progress=0, stage="claimed"
            )
        )
        if not won:
            return None
        report = Report.objects.select_related("model_version__model", "audit_export").get(
            pk=report_id
        )
        took_over = report.status == ReportStatus.RUNNING
        report.status = ReportStatus.RUNNING
        report.attempts += 1
        report.started_at = now
        report.save(update_fields=["status", "attempts", "started_at"])
        audit_record(
            action=AuditAction.REPORT_STARTED,
            actor=_worker_actor(worker),
            object=_subject(report),
            scope=_scope(report.model_version),
            data={"worker": worker, "attempt": report.attempts, "took_over": took_over},
        )
    return report


def report_progress(*, report: Report, worker: str, progress: int, stage: str) -> None:
    """Record progress and extend the lease, only while ``worker`` holds it (``LeaseLost``
    otherwise)."""
    now = timezone.now()
    updated = ReportJob.objects.filter(report_id=report.pk, worker=worker, finished=False).update(
        progress=progress,
        stage=stage,
        heartbeat_at=now,
        lease_expires_at=now + dt.timedelta(seconds=settings.REPORTS_LEASE_SECONDS),
    )
    if not updated:
        raise LeaseLost(f"report {report.pk}: {worker} no longer holds the job")


def _finish_job(report_id: Any, worker: str, progress: int, stage: str) -> None:
    finished = ReportJob.objects.filter(report_id=report_id, worker=worker, finished=False).update(
        finished=True, progress=progress, stage=stage, heartbeat_at=timezone.now()
    )
    if not finished:
        raise LeaseLost(f"report {report_id}: {worker} no longer holds the job")


def audit_seq_now() -> int | None:
    """The seq of the newest record of this log (None while the log is empty)."""
    head = LogHead.objects.filter(log=settings.AUDIT_LOG_ORIGIN).first()
    return head.size - 1 if head and head.size else None


def store_pdf(report: Report, pdf: bytes) -> tuple[str, str]:
    """Write the PDF under ``REPORTS_DIR`` (one file per attempt, written then renamed, so a
    worker that lost its lease never overwrites the file another recorded) and return its
    relative path and SHA-256."""
    directory = Path(settings.REPORTS_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{report.pk}-{report.attempts}.pdf"
    handle, temporary = tempfile.mkstemp(dir=directory, suffix=".part")
    with os.fdopen(handle, "wb") as out:
        out.write(pdf)
    os.replace(temporary, directory / name)
    return name, hashlib.sha256(pdf).hexdigest()


def report_complete(
    *,
    report: Report,
    worker: str,
    result_json: str,
    passed: bool,
    pdf_path: str,
    pdf_sha256: str,
    audit_seq: int | None,
    summary: Mapping[str, Any],
) -> Report:
    """Mark the report done with its result, verdict and PDF, if ``worker`` still holds the
    job; ``report.completed`` records the PDF's SHA-256 and the audit seq at generation."""
    with transaction.atomic():
        _finish_job(report.pk, worker, 100, "done")
        report.status = ReportStatus.DONE
        report.result_json = result_json
        report.verdict = Verdict.PASS if passed else Verdict.FAIL
        report.pdf_path = pdf_path
        report.pdf_sha256 = pdf_sha256
        report.audit_seq = audit_seq
        report.finished_at = timezone.now()
        report.error = ""
        report.error_code = ""
        report.save(
            update_fields=[
                "status", "result_json", "verdict", "pdf_path", "pdf_sha256",
                "audit_seq", "finished_at", "error", "error_code",
            ]
        )  # fmt: skip
        evidence_entry_write(report)
        audit_record(
            action=AuditAction.REPORT_COMPLETED,
            actor=_worker_actor(worker),
            object=_subject(report),
            scope=_scope(report.model_version),
            data={
                "verdict": report.verdict,
                "pdf_sha256": pdf_sha256,
                "result_sha256": hashlib.sha256(result_json.encode()).hexdigest(),
                "audit_seq_at_generation": audit_seq,
                "attempt": report.attempts,
                "summary": summary,
            },
        )
    return report


def report_fail(
    *, report: Report, worker: str, message: str, code: str = InvalidInput.code
) -> Report:
    """Mark the report failed with one clear message and its code in the API's error format
    (``invalid`` for bad input, ``internal_error`` for a fault of Warden's), recorded by
    ``report.failed``, if ``worker`` still holds the job."""
    with transaction.atomic():
        _finish_job(report.pk, worker, 100, "failed")
        report.status = ReportStatus.FAILED
        report.error = message
        report.error_code = code
        report.finished_at = timezone.now()
        report.save(update_fields=["status", "error", "error_code", "finished_at"])
        audit_record(
            action=AuditAction.REPORT_FAILED,
            actor=_worker_actor(worker),
            object=_subject(report),
            scope=_scope(report.model_version),
            data={"error": message, "code": code, "attempt": report.attempts},
        )
    return report


def reports_expired(*, now: dt.datetime | None = None) -> list[str]:
    """Reports a worker should (re)start: running with an expired lease, or queued for longer
    than a lease (their message was lost)."""
    now = now or timezone.now()
    stale = now - dt.timedelta(seconds=settings.REPORTS_LEASE_SECONDS)
    jobs = ReportJob.objects.filter(finished=False).filter(
        Q(worker="", report__created_at__lt=stale) | Q(lease_expires_at__lt=now)
    )
    return [str(pk) for pk in jobs.values_list("report_id", flat=True)]

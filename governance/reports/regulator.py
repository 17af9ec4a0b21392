"""An audit export bundle (AUDIT_SPEC section 6) as the document of a regulator's PDF.

The bundle is verified first with the offline verifier (``audit.verifier``, the same single
file a regulator runs), against the verification keys the caller trusts; its findings are the
verdict. The document then says what the bundle holds: its manifest, its checkpoints, counts
of records by action, object type and actor, the electronic signatures it carries, and the
records themselves (all of them up to :data:`MAX_LISTED`, else the first and last halves of
that many). The PDF embeds this document and the bundle itself, byte for byte, so the
regulator can detach the zip and run the verifier on it.

Nothing here needs the database: a bundle is all it reads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import zipfile
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from audit import verifier
from governance.reports.pdf import EmbeddedFile, PolicyInfo, ReportContext, ReportSubject
from governance.reports.pdf.render import render_report

MAX_LISTED = 500
MAX_SIGNATURES = 500
RECORDS = "records.jsonl"
MANIFEST = "manifest.json"


class BundleUnreadable(ValueError):
    """The file is not an export bundle the verifier can open (one clear message)."""


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checkpoint_size(name: str) -> int:
    stem = name.rsplit("/", 1)[-1].removesuffix(".note")
    return int(stem) if stem.isdigit() else -1


def _lines(archive: zipfile.ZipFile) -> Iterator[bytes]:
    with archive.open(RECORDS) as handle:
        for line in handle:
            yield line.rstrip(b"\n")


def _row(record: dict[str, Any]) -> dict[str, Any]:
    actor = record.get("actor") or {}
    subject = record.get("object") or {}
    scope = record.get("scope") or {}
    where = " ".join(
        str(part)
        for part in (
            scope.get("model"),
            f"v{scope['version']}" if scope.get("version") is not None else None,
            scope.get("environment"),
        )
        if part
    )
    return {
        "seq": record.get("seq"),
        "ts": record.get("ts"),
        "action": record.get("action"),
        "actor": actor.get("name") or actor.get("id") or "",
        "actor_type": actor.get("type") or "",
        "object": f"{subject.get('type', '')} {subject.get('label') or subject.get('id', '')}",
        "scope": where,
    }


def _signature(record: dict[str, Any]) -> dict[str, Any] | None:
    data = record.get("data") or {}
    content = data.get("signed_content")
    if "signed_sha256" not in data or not isinstance(content, dict):
        return None
    return {
        "seq": record.get("seq"),
        "signed_at": content.get("signed_at"),
        "printed_name": content.get("printed_name"),
        "meaning": content.get("meaning"),
        "decision": content.get("decision"),
        "step": content.get("step"),
        "request": content.get("request"),
        "model": content.get("model"),
        "version": content.get("version"),
        "environment": content.get("environment"),
        "signed_sha256": data.get("signed_sha256"),
    }


def export_document(
    bundle: str | os.PathLike[str],
    keys: Sequence[str],
    *,
    prior: bytes | None = None,
    workers: int = 1,
    name: str | None = None,
) -> dict[str, Any]:
    """Verify ``bundle`` against ``keys`` (verification key strings, or files of them one
    per line, as the verifier's ``--key`` takes them) and describe it. ``name`` is what the
    bundle is called in the document and the PDF (its file name by default).

    Raises :class:`BundleUnreadable` when the file is not a zip the verifier can open, or a
    key is malformed; every other problem is a finding of the verification and fails the
    verdict."""
    path = Path(bundle)
    if not path.is_file():
        raise BundleUnreadable(f"{path}: no such file")
    try:
        trusted = verifier.read_keys(keys)
        report = verifier.verify_bundle(path, trusted, prior=prior, workers=workers)
    except verifier.BundleError as exc:
        raise BundleUnreadable(str(exc)) from exc
    tally = _Tally()
    with zipfile.ZipFile(path) as archive:
        try:
            manifest = json.loads(archive.read(MANIFEST))
        except (KeyError, ValueError):
            manifest = None
        checkpoints = sorted(
            (name for name in archive.namelist() if name.startswith("checkpoints/")),
            key=_checkpoint_size,
        )
        for line in _lines(archive):
            tally.add(line)
    shown = name or path.name
    verification = report.as_dict()
    verification["bundle"] = shown
    return {
        "kind": "regulator_export",
        "bundle": {"file": shown, "sha256": _sha256_of(path), "size": path.stat().st_size},
        "manifest": manifest,
        "verification": verification,
        "verdict": "pass" if report.ok else "fail",
        "verdict_reasons": [
            f"{f.code}"
            + (f" at seq {f.seq}" if f.seq is not None else "")
            + (f" in {f.file}" if f.file else "")
            + f": {f.message}"
            for f in report.errors
        ],
        "checkpoint_files": checkpoints,
        **tally.result(),
    }


class _Tally:
    """Counts and listings over the bundle's records, in one pass and bounded memory."""

    def __init__(self) -> None:
        self.actions: Counter[str] = Counter()
        self.objects: Counter[str] = Counter()
        self.actors: Counter[tuple[str, str]] = Counter()
        self.models: Counter[str] = Counter()
        self.head: list[dict[str, Any]] = []
        self.tail: deque[dict[str, Any]] = deque(maxlen=MAX_LISTED // 2)
        self.signatures: list[dict[str, Any]] = []
        self.total = self.unreadable = self.signed = 0
        self.first_ts: str | None = None
        self.last_ts: str | None = None

    def add(self, line: bytes) -> None:
        self.total += 1
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            self.unreadable += 1  # the verification names it
            return
        row = _row(record)
        self.actions[str(row["action"])] += 1
        self.objects[str((record.get("object") or {}).get("type", ""))] += 1
        self.actors[(row["actor_type"], row["actor"])] += 1
        model = (record.get("scope") or {}).get("model")
        if model:
            self.models[str(model)] += 1
        self.first_ts = self.first_ts or row["ts"]
        self.last_ts = row["ts"]
        if len(self.head) < MAX_LISTED - MAX_LISTED // 2:
            self.head.append(row)
        else:
            self.tail.append(row)
        signature = _signature(record)
        if signature is not None:
            self.signed += 1
            if len(self.signatures) < MAX_SIGNATURES:
                self.signatures.append(signature)

    def result(self) -> dict[str, Any]:
        def ranked(counter: Counter[Any]) -> list[Any]:
            return [list(item) for item in sorted(counter.items(), key=lambda i: (-i[1], i[0]))]

        listed = self.head + list(self.tail)
        return {
            "summary": {
                "records": self.total,
                "unreadable": self.unreadable,
                "first_ts": self.first_ts,
                "last_ts": self.last_ts,
                "actions": ranked(self.actions),
                "object_types": ranked(self.objects),
                "actors": [[kind, name, count] for (kind, name), count in ranked(self.actors)],
                "models": ranked(self.models),
                "signatures": self.signed,
            },
            "records_listed": listed,
            "records_omitted": self.total - self.unreadable - len(listed),
            "signatures": self.signatures,
        }


def regulator_pdf(
    payload: str,
    bundle: Path,
    *,
    report_id: str,
    generated_at: dt.datetime,
    audit_seq: int | None = None,
) -> bytes:
    """The PDF/A-3b of an export document serialised as ``payload`` (the JSON of what
    :func:`export_document` made of ``bundle``, embedded verbatim), with the bundle embedded
    byte for byte."""
    document = json.loads(payload)
    context = ReportContext(
        report_id=report_id,
        subject=ReportSubject(
            model=document["verification"].get("origin") or "audit log",
            version="export",
            artifact_digest=f"sha256:{document['bundle']['sha256']}",
        ),
        generated_at=generated_at,
        audit_seq=audit_seq,
        policy=PolicyInfo("none: the verifier's checks"),
        result_json=payload.encode(),
        embedded=[
            EmbeddedFile(
                name=document["bundle"]["file"],
                path=str(bundle),
                description="The audit export bundle (zip) this report describes, as exported",
            )
        ],
    )
    return render_report(document, context)

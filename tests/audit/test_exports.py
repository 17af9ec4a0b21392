"""Export bundles (AUDIT_SPEC.md section 6, docs/audit-bundle.md): the zip's layout and
manifest, records and notes byte for byte as stored, proofs that verify against the signed
roots, the export's own record, the ``audit_export`` command and the exports API."""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from rest_framework.test import APIClient

from audit import clock, keys, merkle
from audit.checkpoints import checkpoint_create
from audit.exports import (
    EXPORTED,
    ExportFailed,
    audit_export_request,
    audit_export_run,
    bundle_export,
    bundle_write,
)
from audit.models import AuditExport, AuditExportStatus, AuditRecord, Checkpoint
from audit.notes import Signer, open_checkpoint, parse_verifier
from audit.publication import PublishDir
from audit.services import AuditEvent, Subject, audit_append
from audit.tasks import export_bundle
from audit.verifier import verify_bundle
from core.accounts.callers import Caller
from core.accounts.models import User
from core.actors import SYSTEM_ACTOR, Actor
from core.errors import Conflict, InvalidInput, NotFound
from core.roles import Role
from governance.accounts.services import api_key_create
from tests.apitools import (
    assert_error,
    assert_unauthenticated,
    last_seq,
    only_record_since,
    records_since,
)
from tests.audit.helpers import LABEL, origin, stored_bodies
from tests.conftest import client_for, client_with_key, make_person

pytestmark = pytest.mark.django_db

EXPORTS = "/api/v1/audit/exports/"
CREDIT = "credit-scoring"
FRAUD = "fraud-detection"
AUDITOR = Actor(type="user", id="42", name="Audrey Adams", auth="cli")


@pytest.fixture(autouse=True)
def export_dir(settings: Any, tmp_path: Path) -> Path:
    path = tmp_path / "exports"
    settings.AUDIT_EXPORT_DIR = str(path)
    return path


def scoped_event(n: int, model: str | None = None) -> AuditEvent:
    """A system event, in ``model``'s scope when one is given."""
    return AuditEvent(
        action="test.appended",
        actor=SYSTEM_ACTOR,
        object=Subject(type="test_object", id=str(n), label=f"object {n}"),
        data={"n": n, "label": LABEL},
        scope={"model": model} if model else {},
    )


def grow(*models: str | None) -> None:
    """Append one record per entry of ``models`` (None: no model scope), in one transaction."""
    start = AuditRecord.objects.count()
    with transaction.atomic():
        audit_append(events=[scoped_event(start + n, model) for n, model in enumerate(models)])


def grow_plain(count: int) -> None:
    grow(*([None] * count))


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def manifest_of(path: Path) -> dict[str, Any]:
    return dict(json.loads(members(path)["manifest.json"]))


def files_in(directory: Path) -> list[str]:
    """The files (hidden ones included) directly in ``directory``."""
    return sorted(path.name for path in directory.iterdir() if path.is_file())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def trusted() -> list[Any]:
    return [parse_verifier(line) for line in keys.verification_key_lines()]


def leaf(body: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + body).digest()


def lines(data: bytes) -> list[bytes]:
    assert data == b"" or data.endswith(b"\n")
    return data.split(b"\n")[:-1] if data else []


def bodies_of(model: str | None = None, below: int | None = None) -> list[bytes]:
    """Stored bodies in seq order, of one model's scope and below a size if given."""
    rows = AuditRecord.objects.filter(log=origin()).order_by("seq")
    if model is not None:
        rows = rows.filter(scope_model=model)
    if below is not None:
        rows = rows.filter(seq__lt=below)
    return [body.encode("utf-8") for body in rows.values_list("body", flat=True)]


def exported_record(since: int) -> tuple[AuditRecord, dict[str, Any]]:
    record, body = only_record_since(since)
    assert record.action == EXPORTED
    return record, body


def test_a_full_export_holds_every_record_and_checkpoint_exactly_as_stored(
    signing_key: Signer, publish_dir: PublishDir, tmp_path: Path
) -> None:
    grow_plain(5)
    checkpoint_create()
    grow_plain(7)
    checkpoint_create()
    grow_plain(3)  # not yet checkpointed: the export signs size 15 first
    before = last_seq()

    out = tmp_path / "full.zip"
    bundle, record = bundle_export(out=out, actor=AUDITOR)

    assert bundle.checkpoint_size == 15
    assert [c.size for c in Checkpoint.objects.order_by("size")] == [5, 12, 15]
    files = members(out)
    assert set(files) == {
        "manifest.json",
        "records.jsonl",
        "checkpoints/5.note",
        "checkpoints/12.note",
        "checkpoints/15.note",
    }
    assert files["records.jsonl"] == b"".join(body + b"\n" for body in stored_bodies()[:15])
    for checkpoint in Checkpoint.objects.all():
        note = files[f"checkpoints/{checkpoint.size}.note"]
        assert note == checkpoint.note.encode("utf-8")
        assert note == publish_dir.read(checkpoint.size)
    with zipfile.ZipFile(out) as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_DEFLATED}

    latest = Checkpoint.objects.get(size=15)
    manifest = json.loads(files["manifest.json"])
    assert manifest == {
        "format": "warden-audit-bundle/1",
        "origin": origin(),
        "kind": "full",
        "filter": {"model": None, "since": None, "until": None},
        "range": {"first_seq": 0, "last_seq": 14},
        "counts": {"records": 15, "checkpoints": 3, "inclusion_proofs": 0, "consistency_proofs": 0},
        "checkpoint": {"size": 15, "root": latest.root},
        "prior_size": None,
        "keys": [signing_key.verifier().key_string()],
        "exported_at": manifest["exported_at"],
        "exported_by": {"type": "user", "id": "42", "name": "Audrey Adams"},
        "statement": "Every record of the log up to the signed checkpoint of size 15.",
        "files": {name: sha256(data) for name, data in files.items() if name != "manifest.json"},
    }
    assert dt.datetime.strptime(manifest["exported_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    # The root of the records equals the signed root.
    parsed, _ = open_checkpoint(files["checkpoints/15.note"], trusted())
    assert parsed.root == merkle.root([leaf(b) for b in lines(files["records.jsonl"])])
    assert record.seq == before + 1 == 15


def test_a_log_that_has_not_grown_is_exported_at_its_latest_checkpoint(
    signing_key: Signer, tmp_path: Path
) -> None:
    grow_plain(4)
    checkpoint_create()
    bundle, _ = bundle_export(out=tmp_path / "a.zip", actor=AUDITOR)
    assert bundle.checkpoint_size == 4
    assert Checkpoint.objects.count() == 1
    # The first export's record made the log grow: the second signs a new checkpoint for it.
    second, _ = bundle_export(out=tmp_path / "b.zip", actor=AUDITOR)
    assert second.checkpoint_size == 5
    assert lines(members(tmp_path / "b.zip")["records.jsonl"])[-1] == stored_bodies()[4]
    assert json.loads(stored_bodies()[4])["action"] == EXPORTED


def test_the_export_is_recorded_with_the_bundles_sha256(
    signing_key: Signer, tmp_path: Path
) -> None:
    grow(CREDIT, None, CREDIT)
    before = last_seq()
    out = tmp_path / "bundle.zip"
    bundle, record = bundle_export(out=out, actor=AUDITOR, model=CREDIT, prior_size=None)

    stored, body = exported_record(before)
    assert stored.pk == record.pk
    data = out.read_bytes()
    assert body["actor"] == AUDITOR.as_record()
    assert body["object"]["type"] == "audit_export"
    assert body["data"] == {
        "kind": "partial",
        "filter": {"model": CREDIT, "since": None, "until": None},
        "checkpoint_size": 3,
        "prior_size": None,
        "records": 2,
        "sha256": sha256(data),
        "bytes": len(data),
        "file": "bundle.zip",
    }
    assert (bundle.sha256, bundle.size_bytes) == (sha256(data), len(data))


def test_a_partial_export_by_model_holds_that_models_records_with_inclusion_proofs(
    signing_key: Signer, tmp_path: Path
) -> None:
    grow(CREDIT, FRAUD, None, CREDIT)
    checkpoint_create()
    grow(*[CREDIT if n % 3 == 0 else FRAUD for n in range(300)])  # past a block of 256
    out = tmp_path / "credit.zip"
    bundle, _ = bundle_export(out=out, actor=AUDITOR, model=CREDIT)

    size = bundle.checkpoint_size
    assert size == 304
    files = members(out)
    assert set(files) == {
        "manifest.json",
        "records.jsonl",
        "proofs/inclusion.jsonl",
        f"checkpoints/{size}.note",
    }
    records = lines(files["records.jsonl"])
    assert records == bodies_of(CREDIT, below=size)
    assert {json.loads(body)["scope"]["model"] for body in records} == {CREDIT}

    parsed, _ = open_checkpoint(files[f"checkpoints/{size}.note"], trusted())
    assert parsed.size == size
    proofs = [json.loads(line) for line in lines(files["proofs/inclusion.jsonl"])]
    assert len(proofs) == len(records) == 102
    for body, proof in zip(records, proofs, strict=True):
        seq = json.loads(body)["seq"]
        assert (proof["seq"], proof["size"]) == (seq, size)
        path = [bytes.fromhex(node) for node in proof["proof"]]
        assert merkle.verify_inclusion(leaf(body), seq, size, path, parsed.root)

    manifest = json.loads(files["manifest.json"])
    assert manifest["kind"] == "partial"
    assert manifest["filter"] == {"model": CREDIT, "since": None, "until": None}
    assert manifest["range"] == {
        "first_seq": json.loads(records[0])["seq"],
        "last_seq": json.loads(records[-1])["seq"],
    }
    assert manifest["counts"] == {
        "records": 102,
        "checkpoints": 1,
        "inclusion_proofs": 102,
        "consistency_proofs": 0,
    }
    assert manifest["checkpoint"] == {"size": size, "root": parsed.root.hex()}
    assert "proven to be in the log" in manifest["statement"]
    assert "may be missing" in manifest["statement"]
    assert manifest["files"] == {
        name: sha256(data) for name, data in files.items() if name != "manifest.json"
    }


def test_a_partial_export_by_time_is_inclusive_since_and_exclusive_until(
    signing_key: Signer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    t0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    moments = iter([t0 + dt.timedelta(hours=hour) for hour in range(5)])
    monkeypatch.setattr(clock, "now", lambda: next(moments))
    for _ in range(5):
        grow(FRAUD)
    monkeypatch.undo()

    since = t0 + dt.timedelta(hours=1)
    until = (t0 + dt.timedelta(hours=3)).astimezone(dt.timezone(dt.timedelta(hours=2)))
    out = tmp_path / "window.zip"
    bundle, _ = bundle_export(out=out, actor=AUDITOR, since=since, until=until)

    records = lines(members(out)["records.jsonl"])
    assert [json.loads(body)["seq"] for body in records] == [1, 2]
    assert bundle.selection.as_dict() == {
        "model": None,
        "since": "2026-03-01T13:00:00.000000Z",
        "until": "2026-03-01T15:00:00.000000Z",
    }
    assert manifest_of(out)["filter"] == bundle.selection.as_dict()


def test_an_export_that_matches_nothing_is_a_valid_empty_bundle(
    signing_key: Signer, tmp_path: Path
) -> None:
    grow(CREDIT, FRAUD)
    out = tmp_path / "empty.zip"
    bundle, _ = bundle_export(
        out=out, actor=AUDITOR, model=CREDIT, since=dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
    )
    files = members(out)
    assert files["records.jsonl"] == b""
    assert files["proofs/inclusion.jsonl"] == b""
    manifest = json.loads(files["manifest.json"])
    assert manifest["range"] is None
    assert manifest["counts"] == {
        "records": 0,
        "checkpoints": 1,
        "inclusion_proofs": 0,
        "consistency_proofs": 0,
    }
    assert manifest["statement"].startswith("No record of the log")
    assert "may be missing" in manifest["statement"]
    assert bundle.records == 0


def test_a_prior_size_adds_a_consistency_proof_that_verifies(
    signing_key: Signer, tmp_path: Path
) -> None:
    grow_plain(5)
    checkpoint_create()
    grow_plain(300)
    checkpoint_create()
    grow(CREDIT, CREDIT)
    for name, model in (("full.zip", None), ("partial.zip", CREDIT)):
        out = tmp_path / name
        bundle = bundle_export(out=out, actor=AUDITOR, model=model, prior_size=5)[0]
        files = members(out)
        assert "checkpoints/5.note" in files
        [line] = lines(files["proofs/consistency.jsonl"])
        proof = json.loads(line)
        assert (proof["from"], proof["to"]) == (5, bundle.checkpoint_size)
        old, _ = open_checkpoint(files["checkpoints/5.note"], trusted())
        new, _ = open_checkpoint(files[f"checkpoints/{bundle.checkpoint_size}.note"], trusted())
        path = [bytes.fromhex(node) for node in proof["proof"]]
        assert merkle.verify_consistency(5, new.size, old.root, new.root, path)
        manifest = json.loads(files["manifest.json"])
        assert manifest["prior_size"] == 5
        assert manifest["counts"]["consistency_proofs"] == 1
    assert set(members(tmp_path / "partial.zip")) == {
        "manifest.json",
        "records.jsonl",
        "proofs/inclusion.jsonl",
        "proofs/consistency.jsonl",
        "checkpoints/5.note",
        "checkpoints/308.note",
    }


@pytest.mark.parametrize(
    ("prior_size", "error"), [(7, NotFound), (0, InvalidInput), (-1, InvalidInput)]
)
def test_a_prior_size_must_be_a_signed_checkpoint(
    signing_key: Signer, tmp_path: Path, prior_size: int, error: type[Exception]
) -> None:
    grow_plain(5)
    checkpoint_create()
    grow_plain(5)
    with pytest.raises(error, match="checkpoint"):
        bundle_export(out=tmp_path / "x.zip", actor=AUDITOR, prior_size=prior_size)
    assert Checkpoint.objects.count() == 1  # refused before signing anything
    assert not (tmp_path / "x.zip").exists()


@pytest.mark.parametrize(
    ("filters", "error", "message"),
    [
        ({"model": "no-such-model"}, NotFound, "no record of the audit log concerns"),
        ({"model": " "}, InvalidInput, "blank"),
        ({"since": dt.datetime(2026, 1, 1)}, InvalidInput, "time zone"),
        ({"until": dt.datetime(2026, 1, 1)}, InvalidInput, "time zone"),
        (
            {
                "since": dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
                "until": dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
            },
            InvalidInput,
            "since must be earlier than until",
        ),
    ],
)
def test_bad_requests_are_refused_before_signing_or_writing(
    signing_key: Signer,
    tmp_path: Path,
    filters: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    grow(CREDIT)
    before = last_seq()
    with pytest.raises(error, match=message):
        bundle_export(out=tmp_path / "x.zip", actor=AUDITOR, **filters)
    assert Checkpoint.objects.count() == 0
    assert files_in(tmp_path) == []
    assert records_since(before) == []


def test_without_a_signing_key_nothing_is_exported(settings: Any, tmp_path: Path) -> None:
    settings.AUDIT_SIGNING_KEY_FILE = []
    grow_plain(3)
    before = last_seq()
    with pytest.raises(ExportFailed, match="no checkpoint signing key"):
        bundle_export(out=tmp_path / "x.zip", actor=AUDITOR)
    assert files_in(tmp_path) == []  # no bundle, no temporary file left
    assert records_since(before) == []


def test_an_empty_log_has_nothing_to_export(signing_key: Signer, tmp_path: Path) -> None:
    with pytest.raises(Conflict, match="empty"):
        bundle_export(out=tmp_path / "x.zip", actor=AUDITOR)
    assert not (tmp_path / "x.zip").exists()


def test_an_export_never_overwrites_a_file(signing_key: Signer, tmp_path: Path) -> None:
    grow_plain(2)
    out = tmp_path / "taken.zip"
    out.write_bytes(b"precious")
    with pytest.raises(Conflict, match="never overwrites"):
        bundle_export(out=out, actor=AUDITOR)
    with pytest.raises(Conflict, match="never overwrites"):
        bundle_write(path=out, actor=AUDITOR)
    assert out.read_bytes() == b"precious"
    assert files_in(tmp_path) == ["taken.zip"]


def test_full_and_partial_bundles_pass_the_offline_verifier(
    signing_key: Signer, tmp_path: Path
) -> None:
    grow_plain(5)
    checkpoint_create()
    grow(*[CREDIT if n % 4 == 0 else FRAUD for n in range(270)])
    checkpoint_create()
    grow(CREDIT, None)
    key = signing_key.verifier().key_string()
    prior_note = Checkpoint.objects.get(size=5).note.encode("utf-8")

    bundle_export(out=tmp_path / "full.zip", actor=AUDITOR, prior_size=5)
    report = verify_bundle(tmp_path / "full.zip", [key], prior=prior_note)
    assert report.ok, report.findings
    assert [f.code for f in report.findings] == []
    assert (report.kind, report.records) == ("full", 277)

    bundle_export(out=tmp_path / "credit.zip", actor=AUDITOR, model=CREDIT, prior_size=5)
    report = verify_bundle(tmp_path / "credit.zip", [key], prior=prior_note)
    assert report.ok, report.findings
    assert [f.code for f in report.findings] == ["W_PARTIAL"]
    assert (report.kind, report.records) == ("partial", 69)


def test_an_empty_partial_bundle_passes_the_offline_verifier(
    signing_key: Signer, tmp_path: Path
) -> None:
    grow(CREDIT, None)
    bundle_export(
        out=tmp_path / "nothing.zip",
        actor=AUDITOR,
        model=CREDIT,
        until=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
    )
    report = verify_bundle(tmp_path / "nothing.zip", [signing_key.verifier().key_string()])
    assert report.ok, report.findings
    assert [f.code for f in report.findings] == ["W_PARTIAL"]
    assert report.records == 0


class RecordReads:
    """``(sql, params)`` of every query that reads record bodies."""

    def __init__(self) -> None:
        self.queries: list[tuple[str, list[Any]]] = []

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        if sql.lstrip().upper().startswith("SELECT") and '"body"' in sql:
            self.queries.append((sql, list(params or ())))
        return execute(sql, params, many, context)


@pytest.mark.parametrize("model", [None, CREDIT])
def test_records_are_read_in_chunks_of_the_configured_size(
    signing_key: Signer, settings: Any, tmp_path: Path, model: str | None
) -> None:
    settings.AUDIT_EXPORT_CHUNK_RECORDS = 4
    grow(*[CREDIT] * 10)
    reads = RecordReads()
    with connection.execute_wrapper(reads):
        bundle, _ = bundle_export(out=tmp_path / "x.zip", actor=AUDITOR, model=model)
    assert bundle.records == 10
    # 4 + 4 + 2 bodies: three bounded queries (the checkpointer reads bodies too, by its own
    # chunks; these are the exporter's, ordered by seq with a LIMIT of 4).
    exporter = [(sql, params) for sql, params in reads.queries if sql.endswith("LIMIT 4")]
    assert len(exporter) == 3, reads.queries
    assert all("ORDER BY" in sql for sql, _ in exporter)
    assert [params[-1] for _, params in exporter] == [0, 4, 8]  # keyset: seq >= next
    assert lines(members(tmp_path / "x.zip")["records.jsonl"]) == bodies_of(below=10)


def run_export(*args: str) -> str:
    out = io.StringIO()
    call_command("audit_export", *args, stdout=out)
    return out.getvalue()


def test_the_command_writes_the_bundle_and_prints_a_summary(
    signing_key: Signer, tmp_path: Path
) -> None:
    grow(CREDIT, FRAUD)
    before = last_seq()
    out = tmp_path / "bundle.zip"
    printed = run_export("--out", str(out))
    digest = sha256(out.read_bytes())
    assert printed.count("\n") == 1
    assert f"sha256 {digest}" in printed
    assert "full export, 2 records, checkpoint 2" in printed
    assert files_in(tmp_path) == ["bundle.zip"]
    _, body = exported_record(before)
    assert body["data"]["sha256"] == digest
    # Without --as: the operating-system user, as a system actor.
    user = getpass.getuser()
    assert body["actor"] == {"type": "system", "id": user, "name": user, "auth": "cli"}
    assert manifest_of(out)["exported_by"] == {"type": "system", "id": user, "name": user}


def test_the_command_exports_as_a_named_user_with_the_permission(
    signing_key: Signer, tmp_path: Path, audrey: User, alice: User
) -> None:
    grow(CREDIT)
    before = last_seq()
    printed = run_export(
        "--out",
        str(tmp_path / "credit.zip"),
        "--model",
        CREDIT,
        "--since",
        "2000-01-01T00:00:00Z",
        "--until",
        "2100-01-01T00:00:00+02:00",
        "--as",
        "audrey",
    )
    assert "partial export, 1 records" in printed
    _, body = exported_record(before)
    assert body["actor"] == {
        "type": "user",
        "id": str(audrey.pk),
        "name": "Audrey Adams",
        "auth": "cli",
    }
    with pytest.raises(CommandError, match="may not export"):
        run_export("--out", str(tmp_path / "other.zip"), "--as", "alice")
    with pytest.raises(CommandError, match="no active user"):
        run_export("--out", str(tmp_path / "other.zip"), "--as", "nobody")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2026-01-01T00:00:00"], "has no time zone"),
        (["--until", "2026-01-01"], "has no time zone"),
        (["--since", "yesterday"], "not an ISO 8601 time"),
        (["--model", "no-such-model"], "no record of the audit log concerns"),
        (["--prior-size", "9"], "no checkpoint of size 9"),
        (
            ["--since", "2026-01-02T00:00:00Z", "--until", "2026-01-01T00:00:00Z"],
            "since must be earlier",
        ),
    ],
)
def test_the_command_refuses_bad_requests_clearly(
    signing_key: Signer, tmp_path: Path, args: list[str], message: str
) -> None:
    grow(CREDIT)
    with pytest.raises(CommandError, match=message):
        run_export("--out", str(tmp_path / "x.zip"), *args)
    assert not (tmp_path / "x.zip").exists()


def test_the_command_refuses_to_overwrite(signing_key: Signer, tmp_path: Path) -> None:
    grow_plain(1)
    out = tmp_path / "x.zip"
    run_export("--out", str(out))
    first = out.read_bytes()
    with pytest.raises(CommandError, match="never overwrites"):
        run_export("--out", str(out))
    assert out.read_bytes() == first


def test_the_command_without_a_signing_key_fails(settings: Any, tmp_path: Path) -> None:
    settings.AUDIT_SIGNING_KEY_FILE = []
    grow_plain(1)
    with pytest.raises(CommandError, match="no checkpoint signing key"):
        run_export("--out", str(tmp_path / "x.zip"))


def export_url(export_id: Any) -> str:
    return f"/api/v1/audit/exports/{export_id}"


def download_url(export_id: Any) -> str:
    return f"{export_url(export_id)}/download"


def personal_key(user: User, *scopes: str) -> str:
    key, _ = api_key_create(caller=Caller(user=user), user=user, name="mine", scopes=list(scopes))
    return key


@pytest.fixture
def logged(signing_key: Signer) -> None:
    """A log with records of two models."""
    grow(CREDIT, FRAUD, None, CREDIT)


@pytest.fixture
def aubrey(roles: None) -> User:
    """A second auditor."""
    return make_person("aubrey", Role.AUDITOR, full_name="Aubrey Ames")


def run(enqueued: list[Callable[[], Any]]) -> None:
    """Run what a request enqueued after its commit (captured: the test's transaction never
    commits), as the worker would."""
    for callback in enqueued:
        callback()


def test_an_auditor_requests_an_export_and_downloads_it_when_done(
    logged: None, audrey: User, django_capture_on_commit_callbacks: Any
) -> None:
    client = client_for(audrey)
    before = last_seq()
    with django_capture_on_commit_callbacks() as enqueued:
        response = client.post(EXPORTS, {"model": CREDIT}, format="json")
    assert response.status_code == 202, response.content
    created = response.json()
    export_id = created["id"]
    assert created["status"] == "queued"
    assert created["kind"] == "partial"
    assert created["filter"] == {"model": CREDIT, "since": None, "until": None}
    assert created["links"] == {
        "self": f"http://testserver{export_url(export_id)}",
        "download": None,
    }
    assert response["Location"] == created["links"]["self"]
    _, requested = only_record_since(before)
    assert requested["action"] == "audit.export_requested"
    assert requested["object"] == {
        "type": "audit_export",
        "id": export_id,
        "label": f"partial export (model {CREDIT!r})",
    }
    assert requested["actor"]["id"] == str(audrey.pk)

    # Before the worker ran: queued, and the download is a conflict.
    assert client.get(export_url(export_id)).json()["status"] == "queued"
    assert_error(client.get(download_url(export_id)), 409, code="conflict")

    assert len(enqueued) == 1
    run(enqueued)
    done = client.get(export_url(export_id)).json()
    assert done["status"] == "done"
    assert (done["records"], done["checkpoint_size"]) == (2, before + 2)  # through the request
    assert done["links"]["download"] == f"http://testserver{download_url(export_id)}"
    assert done["error"] is None

    download = client.get(download_url(export_id))
    assert download.status_code == 200
    data = b"".join(download.streaming_content)
    assert download["Content-Type"] == "application/zip"
    assert download["Content-Disposition"] == (
        f'attachment; filename="warden-audit-{export_id}.zip"'
    )
    assert download["X-Content-SHA256"] == sha256(data) == done["sha256"]
    assert done["bytes"] == len(data)
    exported = [r for r in records_since(before) if r.action == EXPORTED]
    assert len(exported) == 1
    body = json.loads(exported[0].body)
    assert body["object"]["id"] == export_id
    assert body["data"]["sha256"] == sha256(data)
    assert body["actor"] == requested["actor"]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["exported_by"] == {"type": "user", "id": str(audrey.pk), "name": "Audrey Adams"}


def test_a_full_export_through_the_api_with_an_audit_read_key(
    logged: None, audrey: User, django_capture_on_commit_callbacks: Any
) -> None:
    client = client_with_key(personal_key(audrey, "audit:read"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/audit/exports", {}, format="json")  # no slash
    assert response.status_code == 202, response.content
    export_id = response.json()["id"]
    done = client.get(export_url(export_id)).json()
    assert (done["status"], done["kind"]) == ("done", "full")
    # The request's record is part of the log the full export ends at.
    # Every record but the export's own (appended after it): the request's record included.
    assert done["checkpoint_size"] == done["records"] == AuditRecord.objects.count() - 1
    data = b"".join(client.get(download_url(export_id)).streaming_content)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        records = lines(archive.read("records.jsonl"))
    assert json.loads(records[-1])["action"] == "audit.export_requested"
    assert json.loads(records[-1])["actor"]["auth"].startswith("api_key:")


def test_the_list_shows_only_the_callers_exports(logged: None, audrey: User, aubrey: User) -> None:
    mine = client_for(audrey).post(EXPORTS, {}, format="json").json()["id"]
    theirs = client_for(aubrey).post(EXPORTS, {"model": FRAUD}, format="json").json()["id"]
    listed = client_for(audrey).get(EXPORTS).json()
    assert [item["id"] for item in listed["results"]] == [mine]
    assert [item["id"] for item in client_for(aubrey).get(EXPORTS).json()["results"]] == [theirs]


def test_another_persons_export_is_404_even_to_an_auditor(
    logged: None,
    audrey: User,
    aubrey: User,
    admin_user: User,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        export_id = client_for(audrey).post(EXPORTS, {}, format="json").json()["id"]
    assert AuditExport.objects.get(pk=export_id).status == AuditExportStatus.DONE
    for other in (aubrey, admin_user):
        assert_error(client_for(other).get(export_url(export_id)), 404, code="not_found")
        assert_error(client_for(other).get(download_url(export_id)), 404, code="not_found")
    assert_error(client_for(audrey).get(export_url("6a3c3a4e-0000-4000-8000-000000000000")), 404)


def test_an_export_requested_without_the_api_is_sent_on_commit_too(
    logged: None, audrey: User, django_capture_on_commit_callbacks: Any
) -> None:
    """The service sends ``export_bundle`` itself, so an admin action or a command requesting
    an export enqueues it as the API does: once the request commits."""
    with django_capture_on_commit_callbacks() as enqueued:
        export = audit_export_request(
            requested_by=audrey, actor=Caller(user=audrey, auth="cli").actor, model=CREDIT
        )
    assert len(enqueued) == 1
    export.refresh_from_db()
    assert export.status == AuditExportStatus.QUEUED
    run(enqueued)
    export.refresh_from_db()
    assert export.status == AuditExportStatus.DONE


def _api_calls(export_id: str) -> list[tuple[str, str]]:
    return [
        ("get", EXPORTS),
        ("post", EXPORTS),
        ("get", export_url(export_id)),
        ("get", download_url(export_id)),
    ]


@pytest.fixture
def an_export(logged: None, audrey: User) -> str:
    export = audit_export_request(requested_by=audrey, actor=Caller(user=audrey).actor)
    return str(export.id)


@pytest.mark.parametrize("call", range(4))
def test_anonymous_callers_are_401(api: APIClient, an_export: str, call: int) -> None:
    method, url = _api_calls(an_export)[call]
    assert_unauthenticated(getattr(api, method)(url, {}, format="json"))


@pytest.mark.parametrize("person", ["alice", "victor", "rita", "carl"])
@pytest.mark.parametrize("call", range(4))
def test_people_without_the_export_permission_are_403(
    an_export: str, request: pytest.FixtureRequest, person: str, call: int
) -> None:
    method, url = _api_calls(an_export)[call]
    client = client_for(request.getfixturevalue(person))
    error = assert_error(getattr(client, method)(url, {}, format="json"), 403)
    assert "audit.export_auditrecord" in error["message"]


@pytest.mark.parametrize("call", range(4))
def test_a_key_without_audit_read_is_403(an_export: str, audrey: User, call: int) -> None:
    method, url = _api_calls(an_export)[call]
    client = client_with_key(personal_key(audrey, "registry:read"))
    error = assert_error(getattr(client, method)(url, {}, format="json"), 403)
    assert "audit:read" in error["message"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"model": 5}, "model"),
        ({"model": ["a"]}, "model"),
        ({"since": "yesterday"}, "since"),
        ({"since": 123}, "since"),
        ({"since": "2026-01-01T00:00:00"}, "since"),  # naive
        ({"until": "2026-02-30T00:00:00Z"}, "until"),
        ({"prior_size": "5"}, "prior_size"),
        ({"prior_size": 0}, "prior_size"),
        ({"prior_size": True}, "prior_size"),
        ({"modle": CREDIT}, "modle"),  # a misspelt filter must not become a full export
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
    ],
)
def test_bad_export_requests_are_400(
    logged: None, audrey: User, payload: dict[str, Any], field: str
) -> None:
    before = last_seq()
    assert_error(client_for(audrey).post(EXPORTS, payload, format="json"), 400, field=field)
    assert AuditExport.objects.count() == 0
    assert records_since(before) == []


def test_a_body_that_is_not_an_object_is_400(logged: None, audrey: User) -> None:
    assert_error(client_for(audrey).post(EXPORTS, [1, 2], format="json"), 400)


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"model": "no-such-model"}, "model", "no record of the audit log concerns"),
        ({"prior_size": 3}, "prior_size", "no checkpoint of size 3"),
    ],
)
def test_unknown_models_and_checkpoints_are_404(
    logged: None, audrey: User, payload: dict[str, Any], field: str, message: str
) -> None:
    error = assert_error(client_for(audrey).post(EXPORTS, payload, format="json"), 404, field=field)
    assert message in error["message"]
    assert AuditExport.objects.count() == 0


def test_an_export_that_cannot_be_written_fails_and_says_why(
    logged: None, audrey: User, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.AUDIT_SIGNING_KEY_FILE = []  # this process is not the checkpointer
    client = client_for(audrey)
    before = last_seq()
    with django_capture_on_commit_callbacks(execute=True):
        export_id = client.post(EXPORTS, {}, format="json").json()["id"]
    failed = client.get(export_url(export_id)).json()
    assert failed["status"] == "failed"
    assert "no checkpoint signing key" in failed["error"]
    assert failed["links"]["download"] is None
    error = assert_error(client.get(download_url(export_id)), 409, code="conflict")
    assert "failed" in error["message"]
    actions = [r.action for r in records_since(before)]
    assert actions == ["audit.export_requested", "audit.export_failed"]


def test_the_task_is_idempotent_by_export_id(an_export: str, export_dir: Path) -> None:
    export_bundle(an_export)
    done = AuditExport.objects.get(pk=an_export)
    assert done.status == AuditExportStatus.DONE
    before = last_seq()
    export_bundle(an_export)
    again = audit_export_run(export_id=an_export)
    assert records_since(before) == []
    assert (again.sha256, again.finished_at) == (done.sha256, done.finished_at)
    assert sorted(p.name for p in export_dir.iterdir()) == [f"{an_export}.zip"]
    assert sha256((export_dir / f"{an_export}.zip").read_bytes()) == done.sha256


def test_a_redelivered_running_export_is_written_again(an_export: str, export_dir: Path) -> None:
    AuditExport.objects.filter(pk=an_export).update(status=AuditExportStatus.RUNNING)
    (export_dir).mkdir(parents=True, exist_ok=True)
    (export_dir / f".{an_export}.stale.part").write_bytes(b"left by a lost worker")
    done = audit_export_run(export_id=an_export)
    assert done.status == AuditExportStatus.DONE
    assert sha256((export_dir / f"{an_export}.zip").read_bytes()) == done.sha256


def test_the_export_task_runs_on_the_checkpointers_queue() -> None:
    assert django_settings.CELERY_TASK_ROUTES["audit.tasks.export_bundle"] == {
        "queue": "checkpoints"
    }
    assert export_bundle.acks_late is True
    assert django_settings.CELERY_TASK_ALWAYS_EAGER is True  # tests run tasks in-process


def test_the_schema_lists_the_export_endpoints(api: APIClient) -> None:
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    assert set(paths["/api/v1/audit/exports/"]) == {"get", "post"}
    assert "/api/v1/audit/exports" not in paths  # the alias without the slash
    assert set(paths["/api/v1/audit/exports/{export_id}"]) == {"get"}
    download = paths["/api/v1/audit/exports/{export_id}/download"]["get"]
    assert set(download["responses"]["200"]["content"]) == {"application/zip"}
    assert set(download["responses"]) >= {"200", "401", "403", "404", "409"}
    post = paths["/api/v1/audit/exports/"]["post"]
    assert set(post["responses"]) >= {"202", "400", "401", "403", "404"}


def test_a_person_without_the_export_permission_gets_403_not_400_for_a_bad_body(
    logged: None, alice: User, audrey: User
) -> None:
    """Who may export is known before the body (the permission class): a bad filter from a
    data scientist is 403, the same filter from an auditor 400."""
    bad = {"since": "yesterday"}
    assert_error(client_for(alice).post(EXPORTS, bad, format="json"), 403)
    assert_error(client_for(audrey).post(EXPORTS, bad, format="json"), 400, field="since")
    assert not AuditExport.objects.exists()

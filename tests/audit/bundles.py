"""Export bundles built in memory, without a database, for the offline verifier's battery.

``Log`` makes records exactly as Warden writes them (canonical bodies, chained, increasing
times) and signs checkpoints over them; ``Bundle`` is the unpacked zip (member name to bytes)
that tests edit and re-zip. ``Bundle.zip()`` rewrites the manifest's digests and counts, as a
forger would, so that tampering is caught by the records, notes and keys alone, never by the
unsigned manifest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

from audit import merkle
from audit.notes import Signer, format_checkpoint, sign_note
from audit.verifier import BUNDLE_FORMAT, GENESIS_PREV, canonical_dumps, leaf_hash

ORIGIN = "warden.test/audit"
SIGNER = Signer.from_seed("warden.test", hashlib.sha256(b"bundle battery key").digest())
OTHER_SIGNER = Signer.from_seed("warden.test", hashlib.sha256(b"someone else's key").digest())
EPOCH = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def record(seq: int, prev: str, *, origin: str = ORIGIN, **overrides: Any) -> dict[str, Any]:
    """A record in the shape ``audit_append`` writes (a model version registration)."""
    moment = EPOCH + dt.timedelta(seconds=seq)
    body: dict[str, Any] = {
        "v": 1,
        "log": origin,
        "seq": seq,
        "ts": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "prev": prev,
        "actor": {
            "type": "user",
            "id": str(seq % 3 + 1),
            "name": f"Person {seq % 3}",
            "auth": "session",
        },
        "action": "model_version.registered",
        "object": {"type": "model_version", "id": str(seq), "label": f"credit-risk v{seq}"},
        "scope": {"model": "credit-risk" if seq % 2 else "churn", "version": seq},
        "data": {
            "artifact_digest": "sha256:" + hashlib.sha256(b"%d" % seq).hexdigest(),
            "note": "café ☕",
        },
    }
    body.update(overrides)
    return body


def chain(records: list[dict[str, Any]]) -> list[bytes]:
    """Canonical bodies of ``records`` with seq and prev recomputed (a consistent rewrite)."""
    bodies = []
    prev = GENESIS_PREV
    for seq, item in enumerate(records):
        body = canonical_dumps({**item, "seq": seq, "prev": prev})
        bodies.append(body)
        prev = leaf_hash(body)
    return bodies


def make_log(count: int, *, origin: str = ORIGIN) -> list[bytes]:
    """``count`` chained canonical bodies."""
    return chain([record(seq, "", origin=origin) for seq in range(count)])


def leaves(bodies: list[bytes]) -> list[bytes]:
    return [merkle.leaf_hash(body) for body in bodies]


def checkpoint(
    bodies: list[bytes], size: int, *, signers: tuple[Signer, ...] = (SIGNER,), origin: str = ORIGIN
) -> bytes:
    """The signed checkpoint note of the first ``size`` of ``bodies``."""
    root = merkle.root(leaves(bodies[:size]))
    return sign_note(format_checkpoint(origin, size, root), list(signers))


@dataclass
class Bundle:
    """An unpacked bundle: member name to bytes, plus the manifest as a dict."""

    files: dict[str, bytes]
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def bodies(self) -> list[bytes]:
        data = self.files["records.jsonl"]
        return data.split(b"\n")[:-1] if data else []

    @bodies.setter
    def bodies(self, bodies: list[bytes]) -> None:
        self.files["records.jsonl"] = b"".join(body + b"\n" for body in bodies)

    def zip(self, *, refresh_manifest: bool = True) -> bytes:
        """The zip; with ``refresh_manifest`` the manifest is made to agree with the files."""
        files = dict(self.files)
        if refresh_manifest:
            manifest = dict(self.manifest)
            manifest["files"] = {
                name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())
            }
            manifest["counts"] = {**manifest.get("counts", {}), "records": len(self.bodies)}
            files["manifest.json"] = json.dumps(manifest).encode()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for name, data in files.items():
                archive.writestr(name, data)
        return buffer.getvalue()


def full_bundle(bodies: list[bytes], sizes: list[int], *, origin: str = ORIGIN) -> Bundle:
    """A full export of ``bodies`` with checkpoints at ``sizes`` (the last one should be
    ``len(bodies)``, as the exporter makes it)."""
    files = {"records.jsonl": b"".join(body + b"\n" for body in bodies)}
    for size in sizes:
        files[f"checkpoints/{size}.note"] = checkpoint(bodies, size, origin=origin)
    latest = max(sizes)
    manifest = {
        "format": BUNDLE_FORMAT,
        "origin": origin,
        "kind": "full",
        "filter": {"model": None, "since": None, "until": None},
        "range": {"first_seq": 0, "last_seq": len(bodies) - 1} if bodies else None,
        "counts": {"records": len(bodies), "checkpoints": len(sizes)},
        "checkpoint": {"size": latest, "root": merkle.root(leaves(bodies[:latest])).hex()},
        "prior_size": None,
        "keys": [SIGNER.verifier().key_string()],
    }
    return Bundle(files, manifest)


def partial_bundle(
    bodies: list[bytes], seqs: list[int], *, size: int | None = None, prior: int | None = None
) -> Bundle:
    """A filtered export of the records ``seqs`` of ``bodies``, proven against the checkpoint
    of ``size`` (default: all), with a consistency proof from ``prior`` if given."""
    size = len(bodies) if size is None else size
    tree = leaves(bodies)
    lines = [
        {
            "seq": seq,
            "size": size,
            "proof": [h.hex() for h in merkle.inclusion_proof(tree, seq, size)],
        }
        for seq in seqs
    ]
    files = {
        "records.jsonl": b"".join(bodies[seq] + b"\n" for seq in seqs),
        f"checkpoints/{size}.note": checkpoint(bodies, size),
        "proofs/inclusion.jsonl": b"".join(
            json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in lines
        ),
    }
    if prior is not None:
        files[f"checkpoints/{prior}.note"] = checkpoint(bodies, prior)
        proof = [h.hex() for h in merkle.consistency_proof(tree, prior, size)]
        line = {"from": prior, "to": size, "proof": proof}
        files["proofs/consistency.jsonl"] = json.dumps(line).encode() + b"\n"
    manifest = {
        "format": BUNDLE_FORMAT,
        "origin": ORIGIN,
        "kind": "partial",
        "filter": {"model": "credit-risk", "since": None, "until": None},
        "counts": {"records": len(seqs)},
        "checkpoint": {"size": size, "root": merkle.root(tree[:size]).hex()},
        "prior_size": prior,
        "keys": [SIGNER.verifier().key_string()],
    }
    return Bundle(files, manifest)

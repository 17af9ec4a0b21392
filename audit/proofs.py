"""Selectors of the checkpoint API: stored checkpoints, and inclusion and consistency proofs
against them, served from the cached tree (``audit.tree``).

A proof is checked against its checkpoint's signed root before it is returned: a cache that
went bad is an error here, not a proof that fails on the client's side.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

from audit.checkpoints import IntegrityAlarm
from audit.merkle import verify_consistency, verify_inclusion
from audit.models import AuditRecord, Checkpoint
from audit.tree import prove
from core.errors import InvalidInput, NotFound


@dataclass(frozen=True)
class InclusionProof:
    """Record ``seq`` is leaf ``seq`` of the tree of ``checkpoint``."""

    seq: int
    leaf: bytes
    proof: list[bytes]
    checkpoint: Checkpoint


@dataclass(frozen=True)
class ConsistencyProof:
    """The tree of ``new`` extends the tree of ``old``."""

    proof: list[bytes]
    old: Checkpoint
    new: Checkpoint


def checkpoint_get(*, size: int | None = None, using: str = DEFAULT_DB_ALIAS) -> Checkpoint:
    """The checkpoint of ``size``, or the latest one; ``NotFound`` if there is none."""
    checkpoints = Checkpoint.objects.using(using).filter(log=settings.AUDIT_LOG_ORIGIN)
    found = (
        checkpoints.order_by("-size").first()
        if size is None
        else checkpoints.filter(size=size).first()
    )
    if found is None:
        raise NotFound(
            "no checkpoint has been signed yet"
            if size is None
            else f"no checkpoint of size {size} (proofs are served for checkpointed sizes only)"
        )
    return found


def inclusion_proof_get(
    *, seq: int, size: int | None = None, using: str = DEFAULT_DB_ALIAS
) -> InclusionProof:
    """The inclusion proof of record ``seq`` in the checkpoint of ``size`` (default: latest).

    ``InvalidInput`` when ``seq`` is not below the size, ``NotFound`` for an unknown size.
    """
    checkpoint = checkpoint_get(size=size, using=using)
    if not 0 <= seq < checkpoint.size:
        raise InvalidInput(
            f"seq must be below the checkpoint's size {checkpoint.size}",
            fields={"seq": [f"must be between 0 and {checkpoint.size - 1}"]},
        )
    origin = settings.AUDIT_LOG_ORIGIN
    leaf_hex = (
        AuditRecord.objects.using(using)
        .filter(log=origin, seq=seq)
        .values_list("leaf", flat=True)
        .first()
    )
    try:
        leaf = bytes.fromhex(leaf_hex or "")
        proof = prove(origin, checkpoint.size, lambda s: s.inclusion_proof(seq), using)
    except ValueError as exc:
        raise IntegrityAlarm(f"inclusion proof of {seq} in {checkpoint.size}: {exc}") from exc
    if not verify_inclusion(leaf, seq, checkpoint.size, proof, bytes.fromhex(checkpoint.root)):
        raise IntegrityAlarm(f"record {seq} is not in checkpoint {checkpoint.size} as stored")
    return InclusionProof(seq, leaf, proof, checkpoint)


def consistency_proof_get(
    *, old_size: int, new_size: int, using: str = DEFAULT_DB_ALIAS
) -> ConsistencyProof:
    """The consistency proof between two checkpoints, ``old_size <= new_size``.

    ``InvalidInput`` when ``old_size > new_size``, ``NotFound`` for an unknown size.
    """
    if old_size > new_size:
        raise InvalidInput(
            "from must not be larger than to", fields={"from": [f"must be at most {new_size}"]}
        )
    old = checkpoint_get(size=old_size, using=using)
    new = checkpoint_get(size=new_size, using=using)
    try:
        proof = prove(
            settings.AUDIT_LOG_ORIGIN, new.size, lambda s: s.consistency_proof(old.size), using
        )
    except ValueError as exc:
        raise IntegrityAlarm(f"consistency proof {old.size} -> {new.size}: {exc}") from exc
    old_root, new_root = bytes.fromhex(old.root), bytes.fromhex(new.root)
    if not verify_consistency(old.size, new.size, old_root, new_root, proof):
        raise IntegrityAlarm(f"checkpoints {old.size} and {new.size} are not consistent")
    return ConsistencyProof(proof, old, new)

"""The log's Merkle tree in the database: ``audit.merkle.MerkleStore`` over the records' leaf
column, with its perfect-subtree cache persisted as ``TreeNode`` rows.

The checkpointer extends the tree and saves the new nodes in the transaction of the
checkpoint; proofs are then served from about ``2 * n / 256`` cached nodes plus at most a few
blocks of 256 leaves, whatever the size of the log.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, MutableMapping
from typing import TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Q

from audit.merkle import HASH_SIZE, LeafFetcher, MerkleStore, NodeKey
from audit.models import TreeNode

_T = TypeVar("_T")

BLOCK_LEVEL = 8
"""Nodes are cached for perfect subtrees of ``2**8 = 256`` leaves and more."""


def leaf_fetcher(origin: str, using: str = DEFAULT_DB_ALIAS) -> LeafFetcher:
    """``get_leaves(start, end)`` reading the ``leaf`` column of records ``start .. end - 1``.

    Raises ``ValueError`` when a record of the range is missing or its leaf is not hex.
    """

    def get_leaves(start: int, end: int) -> list[bytes]:
        with connections[using].cursor() as cursor:
            cursor.execute(
                "SELECT seq, leaf FROM audit_auditrecord WHERE log = %s AND seq >= %s "
                "AND seq < %s ORDER BY seq",
                [origin, start, end],
            )
            rows = cursor.fetchall()
        if [seq for seq, _ in rows] != list(range(start, end)):
            raise ValueError(f"records missing between seq {start} and {end - 1}")
        return [bytes.fromhex(leaf) for _, leaf in rows]

    return get_leaves


def load_nodes(
    origin: str, using: str = DEFAULT_DB_ALIAS, *, only: Collection[NodeKey] | None = None
) -> dict[NodeKey, bytes]:
    """The cached nodes of the log, ``(level, index) -> hash``: all of them, or ``only``
    those (the ones that exist)."""
    rows = TreeNode.objects.using(using).filter(log=origin).order_by()
    if only is not None:
        by_level: dict[int, list[int]] = {}
        for level, index in only:
            by_level.setdefault(level, []).append(index)
        if not by_level:
            return {}
        wanted = Q()
        for level, indexes in by_level.items():
            wanted |= Q(level=level, index__in=indexes)
        rows = rows.filter(wanted)
    return {
        (level, index): bytes.fromhex(value)
        for level, index, value in rows.values_list("level", "index", "hash")
    }


def save_nodes(
    origin: str, nodes: Iterable[tuple[int, int, bytes]], using: str = DEFAULT_DB_ALIAS
) -> int:
    """Insert ``(level, index, hash)`` nodes; nodes already stored are left alone (another
    checkpointer stored them, from the same leaves: the caller has proven its tree consistent
    with that checkpointer's signed root). Returns how many were given."""
    rows = [
        TreeNode(log=origin, level=level, index=index, hash=value.hex())
        for level, index, value in nodes
    ]
    TreeNode.objects.using(using).bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    return len(rows)


def tree_store(origin: str, size: int, using: str = DEFAULT_DB_ALIAS) -> MerkleStore:
    """A store over the first ``size`` records with every cached node loaded.

    ``size`` is the size the cached nodes are taken to cover (a checkpointed size); a node
    missing for it is computed from leaves when first needed.
    """
    return MerkleStore(
        leaf_fetcher(origin, using),
        size,
        block_level=BLOCK_LEVEL,
        cache=load_nodes(origin, using),
    )


class _KeyRecorder(MutableMapping[NodeKey, bytes]):
    """A pretend cache that holds every node: it records which ones are asked for."""

    _PLACEHOLDER = bytes(HASH_SIZE)

    def __init__(self) -> None:
        self.asked: set[NodeKey] = set()

    def __getitem__(self, key: NodeKey) -> bytes:
        self.asked.add(key)
        return self._PLACEHOLDER

    def __setitem__(self, key: NodeKey, value: bytes) -> None:
        pass

    def __delitem__(self, key: NodeKey) -> None:
        pass

    def __iter__(self) -> Iterator[NodeKey]:
        return iter(())

    def __len__(self) -> int:
        return 0


def prove(
    origin: str, size: int, compute: Callable[[MerkleStore], _T], using: str = DEFAULT_DB_ALIAS
) -> _T:
    """``compute(store)`` (a proof) on a store over the first ``size`` records that loads only
    the cached nodes the computation reads.

    A first, free run over placeholder hashes records which nodes ``compute`` looks up
    (``O(log n)`` of them); one query loads those, and the real run reads them plus at most a
    few blocks of leaves. A node missing from the table is computed from leaves, so the result
    never depends on that first run, only the cost does.
    """
    recorder = _KeyRecorder()
    rehearsal = MerkleStore(
        lambda start, end: [_KeyRecorder._PLACEHOLDER] * (end - start),
        size,
        block_level=BLOCK_LEVEL,
        cache=recorder,
    )
    compute(rehearsal)
    store = MerkleStore(
        leaf_fetcher(origin, using),
        size,
        block_level=BLOCK_LEVEL,
        cache=load_nodes(origin, using, only=recorder.asked),
    )
    return compute(store)

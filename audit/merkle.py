"""RFC 9162 (RFC 6962) Merkle trees over the audit log's leaf hashes: roots, proofs, checks.

The hashing, the root and proof *verification* live in ``audit.verifier`` (the single file a
regulator runs offline, AUDIT_SPEC.md section 7) and are re-exported here, so that the log and
the verifier share one implementation; this module adds proof *generation*.

Definitions (AUDIT_SPEC.md section 3, RFC 9162 section 2.1):

- ``leaf_hash(d) = SHA-256(0x00 || d)``; the tree is built over these 32-byte leaf hashes;
- ``node_hash(l, r) = SHA-256(0x01 || l || r)``;
- ``MTH([]) = SHA-256("")``, ``MTH([h]) = h``, and for ``n > 1``
  ``MTH(D[0:n]) = node_hash(MTH(D[0:k]), MTH(D[k:n]))`` where ``k`` is the largest power of
  two strictly smaller than ``n``.

Contracts:

- Everything called ``leaves`` here is a sequence of 32-byte *leaf hashes* (already
  domain-separated with ``0x00``), never raw record bodies.
- Proof *generation* (``inclusion_proof``, ``consistency_proof``, ``MerkleStore``) raises
  ``ValueError`` for arguments outside the tree; it is run by the log, on its own data.
- Proof *verification* (``verify_inclusion``, ``verify_consistency``) never raises on bad
  input: any malformed, out-of-range, wrongly-typed or wrong-length argument returns
  ``False``. They implement the RFC 9162 sections 2.1.3.2 and 2.1.4.2 algorithms exactly,
  plus the special cases the RFC leaves to the caller (see each docstring).
- Proofs are lists of 32-byte hashes ordered from the leaf towards the root, as in RFC 9162.

``MerkleStore`` generates proofs in a large log without rehashing it: it caches the hashes of
aligned perfect subtrees of at least ``2**block_level`` leaves (keyed by ``(level, index)``,
covering leaves ``[index * 2**level, (index + 1) * 2**level)``) so that a proof costs
``O(log n)`` cache lookups plus hashing at most a few blocks of leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, MutableMapping, Sequence

from audit.verifier import (
    EMPTY_ROOT,
    HASH_SIZE,
    _is_count,
    _split,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "LeafFetcher",
    "MerkleStore",
    "NodeKey",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00"

NodeKey = tuple[int, int]
"""``(level, index)``: the aligned perfect subtree over ``[index << level, (index+1) << level)``."""

LeafFetcher = Callable[[int, int], Sequence[bytes]]
"""``get_leaves(start, end)``: the leaf hashes ``start .. end - 1`` of the log, in order."""

_RangeHasher = Callable[[int, int], bytes]


# Hashing and roots


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash ``SHA-256(0x00 || data)`` (32 bytes)."""
    return _sha256(_LEAF_PREFIX + data).digest()


# Proof generation over ranges [start, end)


def _inclusion_path(subtree: _RangeHasher, index: int, start: int, end: int) -> list[bytes]:
    """RFC 9162 ``PATH(index - start, D[start:end])`` (section 2.1.3.1), iteratively.

    ``subtree(a, b)`` must return ``MTH(D[a:b])``. Leaf-to-root order.
    """
    proof: list[bytes] = []
    while end - start > 1:
        mid = start + _split(end - start)
        if index < mid:
            proof.append(subtree(mid, end))
            end = mid
        else:
            proof.append(subtree(start, mid))
            start = mid
    proof.reverse()
    return proof


def _consistency_path(subtree: _RangeHasher, old_size: int, start: int, end: int) -> list[bytes]:
    """RFC 9162 ``SUBPROOF(old_size - start, D[start:end], true)`` (section 2.1.4.1).

    Requires ``start < old_size <= end``; iterative; leaf-to-root order.
    """
    proof: list[bytes] = []
    complete = True  # the RFC's flag b: the old tree is a complete subtree computed so far
    while old_size != end:
        mid = start + _split(end - start)
        if old_size <= mid:
            proof.append(subtree(mid, end))
            end = mid
        else:
            proof.append(subtree(start, mid))
            start = mid
            complete = False
    if not complete:
        proof.append(subtree(start, end))
    proof.reverse()
    return proof


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """The RFC 9162 inclusion proof (audit path) of leaf ``index`` in the tree of ``size``.

    ``size`` defaults to ``len(leaves)``; only ``leaves[:size]`` are used. ``O(size)`` hashing.
    Raises ``ValueError`` unless ``0 <= index < size <= len(leaves)``.
    """
    if size is None:
        size = len(leaves)
    if not (_is_count(index) and _is_count(size)) or not index < size <= len(leaves):
        raise ValueError(f"no leaf {index} in a tree of size {size} ({len(leaves)} leaves)")
    return _inclusion_path(lambda a, b: root(leaves[a:b]), index, 0, size)


def consistency_proof(leaves: Sequence[bytes], old_size: int, new_size: int) -> list[bytes]:
    """The RFC 9162 consistency proof from the tree of ``old_size`` to that of ``new_size``.

    Empty when ``old_size == 0`` or ``old_size == new_size`` (nothing to prove).
    Raises ``ValueError`` unless ``0 <= old_size <= new_size <= len(leaves)``.
    """
    if not (_is_count(old_size) and _is_count(new_size)) or not (
        old_size <= new_size <= len(leaves)
    ):
        raise ValueError(f"no consistency proof {old_size} -> {new_size} ({len(leaves)} leaves)")
    if old_size in (0, new_size):
        return []
    return _consistency_path(lambda a, b: root(leaves[a:b]), old_size, 0, new_size)


# A store of cached perfect-subtree hashes for proofs in large logs


class MerkleStore:
    """Roots and proofs of an append-only log, from cached perfect-subtree hashes.

    ``get_leaves(start, end)`` returns the log's leaf hashes ``start .. end - 1`` (e.g. one
    ``SELECT leaf FROM records WHERE seq >= start AND seq < end ORDER BY seq``); it must
    return exactly ``end - start`` 32-byte hashes (``ValueError`` otherwise).

    ``cache`` maps ``(level, index)`` to the hash of the aligned perfect subtree over leaves
    ``[index << level, (index + 1) << level)``, for ``level >= block_level`` only (blocks of
    ``2**block_level`` leaves; 256 by default). Pass a persisted mapping to resume without
    rehashing (the Django side can load its node table into a dict, or wrap the table in a
    ``MutableMapping``); every node the store computes is written to it, and also queued
    for ``take_new_nodes()``.

    Design, kept simple:

    - ``extend(new_size)`` records that the log grew, hashes each newly completed block once
      (fetching leaves in large chunks) and combines completed siblings upwards; it returns
      the new ``(level, index, hash)`` nodes in order, for persistence. Building a
      1M-record store this way costs one pass of ``root()``.
    - ``subtree_root(start, end)`` decomposes ``[start, end)`` into maximal perfect subtrees
      (largest first); the aligned ones of ``block_level`` or more come from the cache, the
      rest (a tail shorter than one block) is hashed from leaves. For every range that occurs
      in a proof (a node of some tree: ``start`` is a multiple of a power of two ``>= end -
      start``) this is ``O(log n)`` lookups plus fewer than ``2**block_level`` leaves; any
      other range is still correct, just hashed from its leaves.
    - Proofs are the RFC 9162 ``PATH``/``SUBPROOF`` recursions over ranges, evaluated by
      ``subtree_root``. Leaves of the few blocks a proof touches are kept in a small
      in-memory memo (an append-only log's leaves never change), so one proof fetches each
      block at most once.

    The cache holds about ``2 * n / 2**block_level`` nodes (7,806 for 1M leaves in blocks of
    256). A store is not thread-safe: use one per thread or task, over a shared ``cache``.

    The store trusts its cache and its leaves: it is the log's own tool for *producing*
    roots and proofs. Anything that must be checked is checked with the ``verify_*``
    functions against a signed root, never with a store built from untrusted data.
    ``extend`` does raise ``ValueError`` if it recomputes a node that the cache already holds
    with a different value (a corrupted cache or a rewritten log).
    """

    _BLOCK_MEMO_SIZE = 8

    def __init__(
        self,
        get_leaves: LeafFetcher,
        size: int = 0,
        *,
        block_level: int = 8,
        cache: MutableMapping[NodeKey, bytes] | None = None,
        fetch_chunk: int = 1 << 16,
    ) -> None:
        """``size`` is the log size the cache (if any) already reflects; nodes missing from
        the cache for it are computed lazily on first use. ``fetch_chunk`` bounds the number
        of leaves ``extend`` asks ``get_leaves`` for at once."""
        if not _is_count(size):
            raise ValueError("size must be a non-negative int")
        if not _is_count(block_level) or block_level > 32:
            raise ValueError("block_level must be an int in 0..32")
        self._get_leaves = get_leaves
        self._size = size
        self._level = block_level
        self._cache: MutableMapping[NodeKey, bytes] = {} if cache is None else cache
        self._chunk_blocks = max(1, fetch_chunk >> block_level)
        self._blocks: dict[int, list[bytes]] = {}
        self._new: list[tuple[int, int, bytes]] = []

    # -- properties

    @property
    def size(self) -> int:
        """The number of leaves the store covers."""
        return self._size

    @property
    def block_level(self) -> int:
        """Nodes are cached for perfect subtrees of ``2**block_level`` leaves and more."""
        return self._level

    @property
    def cache(self) -> MutableMapping[NodeKey, bytes]:
        """The ``(level, index) -> hash`` mapping of cached perfect subtrees."""
        return self._cache

    # -- leaves

    def _fetch(self, start: int, end: int) -> list[bytes]:
        leaves = list(self._get_leaves(start, end))
        if len(leaves) != end - start:
            raise ValueError(f"get_leaves({start}, {end}) returned {len(leaves)} leaves")
        if leaves and set(map(len, leaves)) != {HASH_SIZE}:
            raise ValueError(f"get_leaves({start}, {end}) returned a non-32-byte leaf")
        return leaves

    def _leaves(self, start: int, end: int) -> list[bytes]:
        """Leaves ``[start, end)``; within one block, through the block memo."""
        block = start >> self._level
        if block != (end - 1) >> self._level:
            return self._fetch(start, end)
        base = block << self._level
        cached = self._blocks.get(block)
        if cached is None or len(cached) < end - base:
            cached = self._fetch(base, min(base + (1 << self._level), self._size))
            if len(self._blocks) >= self._BLOCK_MEMO_SIZE:
                del self._blocks[next(iter(self._blocks))]
            self._blocks[block] = cached
        return cached[start - base : end - base]

    # -- cached nodes

    def _put(self, level: int, index: int, value: bytes) -> None:
        known = self._cache.get((level, index))
        if known is not None and known != value:
            raise ValueError(f"cached node {(level, index)} disagrees with the leaves")
        if known is None:
            self._cache[(level, index)] = value
            self._new.append((level, index, value))

    def _perfect(self, level: int, index: int) -> bytes:
        """Hash of the aligned perfect subtree ``(level, index)``, ``level >= block_level``;
        read from the cache, or computed (and cached) if missing. Caller checks the range."""
        found = self._cache.get((level, index))
        if found is not None:
            return found
        if level == self._level:
            start = index << level
            value = root(self._leaves(start, start + (1 << level)))
        else:
            value = node_hash(
                self._perfect(level - 1, 2 * index), self._perfect(level - 1, 2 * index + 1)
            )
        self._put(level, index, value)
        return value

    def take_new_nodes(self) -> list[tuple[int, int, bytes]]:
        """The ``(level, index, hash)`` nodes added to the cache since the last call, in the
        order computed (by ``extend`` or lazily by a root or proof); for persistence."""
        new, self._new = self._new, []
        return new

    def extend(self, new_size: int) -> list[tuple[int, int, bytes]]:
        """Grow the store to ``new_size`` leaves; returns ``take_new_nodes()``.

        Hashes every block of ``2**block_level`` leaves completed between the old and the new
        size, and every higher perfect subtree those complete; the result lists them as
        ``(level, index, hash)`` in the order computed (after any nodes computed lazily since
        the last ``take_new_nodes()``). Raises ``ValueError`` if ``new_size`` is smaller than
        ``size``, if ``get_leaves`` misbehaves, or if a recomputed node contradicts the cache.
        """
        if not _is_count(new_size) or new_size < self._size:
            raise ValueError(f"cannot shrink an append-only log from {self._size} to {new_size}")
        level0, block_size = self._level, 1 << self._level
        block, last = self._size >> level0, new_size >> level0
        while block < last:
            chunk_end = min(last, block + self._chunk_blocks)
            leaves = self._fetch(block << level0, chunk_end << level0)
            for i in range(block, chunk_end):
                offset = (i - block) << level0
                value = root(leaves[offset : offset + block_size])
                level, index = level0, i
                self._put(level, index, value)
                while index & 1:
                    value = node_hash(self._perfect(level, index - 1), value)
                    level, index = level + 1, index >> 1
                    self._put(level, index, value)
            block = chunk_end
        self._size = new_size
        return self.take_new_nodes()

    # -- roots and proofs

    def subtree_root(self, start: int, end: int) -> bytes:
        """``MTH`` of leaves ``[start, end)`` (``EMPTY_ROOT`` when empty).

        Raises ``ValueError`` unless ``0 <= start <= end <= size``.
        """
        if not (_is_count(start) and _is_count(end)) or not start <= end <= self._size:
            raise ValueError(f"range [{start}, {end}) outside a log of {self._size} leaves")
        if start == end:
            return EMPTY_ROOT
        parts: list[bytes] = []
        pos, remaining = start, end - start
        while remaining:
            level = remaining.bit_length() - 1
            if level < self._level or pos & ((1 << level) - 1):
                break  # the rest is shorter than a block, or not aligned: hash its leaves
            parts.append(self._perfect(level, pos >> level))
            pos += 1 << level
            remaining -= 1 << level
        if remaining:
            parts.append(root(self._leaves(pos, end)))
        value = parts.pop()
        while parts:
            value = node_hash(parts.pop(), value)
        return value

    def root(self, size: int | None = None) -> bytes:
        """``MTH`` of the first ``size`` leaves (default: all of them)."""
        return self.subtree_root(0, self._size if size is None else size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` (default: all).

        Raises ``ValueError`` unless ``0 <= index < size <= self.size``.
        """
        size = self._size if size is None else size
        if not (_is_count(index) and _is_count(size)) or not index < size <= self._size:
            raise ValueError(f"no leaf {index} in a tree of size {size} (store: {self._size})")
        return _inclusion_path(self.subtree_root, index, 0, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 consistency proof from ``old_size`` to ``new_size`` (default: all).

        Empty when ``old_size`` is 0 or equals ``new_size``. Raises ``ValueError`` unless
        ``0 <= old_size <= new_size <= self.size``.
        """
        new_size = self._size if new_size is None else new_size
        if not (_is_count(old_size) and _is_count(new_size)) or not (
            old_size <= new_size <= self._size
        ):
            raise ValueError(f"no consistency proof {old_size} -> {new_size}")
        if old_size in (0, new_size):
            return []
        return _consistency_path(self.subtree_root, old_size, 0, new_size)

"""RFC 9162 Merkle trees (audit/merkle.py): AUDIT_SPEC.md section 3.

Golden vectors, a naive recursive reference for roots and proofs, exhaustive proof checks for
every tree up to 70 leaves with corruption probes (zero false accepts), property tests on larger
trees, and the cached ``MerkleStore`` against the plain functions.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.merkle import (
    EMPTY_ROOT,
    MerkleStore,
    NodeKey,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)
from tests.support import imported_roots

pytestmark = pytest.mark.database_free

# Reference implementation: the RFC 9162 section 2.1 definitions, recursively, over slices.


def ref_mth(leaves: Sequence[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def ref_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [ref_mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*ref_subproof(m, leaves[:k], b), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


# Fixtures

GOLDEN_DATA = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
GOLDEN_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

MAX_EXHAUSTIVE = 70
# Distinct leaves; probes reach sizes up to twice the largest exhaustive tree, plus one.
LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(2 * MAX_EXHAUSTIVE + 2)]
ROOTS = [ref_mth(LEAVES[:n]) for n in range(len(LEAVES) + 1)]
BIG_LEAVES = [leaf_hash(b"big" + i.to_bytes(4, "big")) for i in range(6000)]


def flip_bit(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[(bit // 8) % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


def proof_mutations(proof: list[bytes], rng: random.Random, extra: bytes) -> Iterator[list[bytes]]:
    """Corrupted variants of ``proof``: emptied, each element removed, duplicated, bit-flipped,
    replaced, a foreign element inserted at every position, neighbours swapped, reversed."""
    yield []
    yield [*proof, extra]
    yield [extra, *proof]
    for i in range(len(proof)):
        yield proof[:i] + proof[i + 1 :]
        yield proof[: i + 1] + proof[i:]
        yield [*proof[:i], flip_bit(proof[i], rng.randrange(256)), *proof[i + 1 :]]
        yield [*proof[:i], extra, *proof[i + 1 :]]
    for i in range(len(proof) + 1):
        yield [*proof[:i], rng.randbytes(32), *proof[i:]]
    for i in range(len(proof) - 1):
        yield [*proof[:i], proof[i + 1], proof[i], *proof[i + 2 :]]
    yield proof[::-1]


def genuine_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], rt: bytes) -> bool:
    """The statement is true and the proof is the log's own proof of it."""
    return (
        0 <= index < size <= len(LEAVES)
        and leaf == LEAVES[index]
        and rt == ROOTS[size]
        and proof == inclusion_proof(LEAVES, index, size)
    )


def genuine_consistency(m: int, n: int, old: bytes, new: bytes, proof: list[bytes]) -> bool:
    """The statement is true and the proof is the log's own proof of it. The empty tree is a
    prefix of every tree, so from size 0 any new root is a true statement."""
    if m == 0 and n > 0:
        return old == EMPTY_ROOT and proof == []
    return (
        0 <= m <= n <= len(LEAVES)
        and old == ROOTS[m]
        and new == ROOTS[n]
        and proof == consistency_proof(LEAVES, m, n)
    )


# What a proof can say. An inclusion proof binds (index, size) only through the shape of its
# path (the side of each sibling, leaf to root), and a consistency proof binds (old, new) only
# through the shape of the SUBPROOF recursion: the verifier's computation is a function of that
# shape, the hashes and the roots alone. So when only the claimed sizes change and the new ones
# have the same shape, the RFC 9162 algorithm *must* accept (e.g. the proof of leaf 2 in the
# 3-leaf tree also "proves" leaf 1 of a 2-leaf tree whose root is the 3-leaf root: no such
# 2-leaf tree is known to anyone, which is why (size, root) must come from one signed
# checkpoint). Such an acceptance restates the original statement; it is not a false accept.


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def inclusion_shape(index: int, size: int) -> tuple[str, ...] | None:
    if not 0 <= index < size:
        return None
    sides: list[str] = []
    start, end = 0, size
    while end - start > 1:
        mid = start + _split(end - start)
        if index < mid:
            sides.append("sibling-right")
            end = mid
        else:
            sides.append("sibling-left")
            start = mid
    return tuple(reversed(sides))


def consistency_shape(m: int, n: int) -> tuple[str, ...] | None:
    if not 0 <= m <= n:
        return None
    if m == 0:
        return ("from-empty",) if n else ("equal-empty",)
    if m == n:
        return ("equal",)
    steps: list[str] = []
    start, b = 0, True
    while m != n:
        k = _split(n - start)
        if m <= start + k:
            steps.append("new-only")
            n = start + k
        else:
            steps.append("both")
            start, b = start + k, False
    steps.append("old-root-known" if b else "old-root-in-proof")
    return tuple(reversed(steps))


# Hashes and roots


def test_golden_vectors() -> None:
    leaves = [leaf_hash(bytes.fromhex(d)) for d in GOLDEN_DATA]
    for size, expected in enumerate(GOLDEN_ROOTS):
        assert root(leaves[:size]).hex() == expected, size
        assert ref_mth(leaves[:size]).hex() == expected, size


def test_hash_primitives() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert root([]) == EMPTY_ROOT
    assert root([a]) == a


@pytest.mark.parametrize("size", [*range(MAX_EXHAUSTIVE + 1), 127, 128, 129, 255, 256, 257, 1000])
def test_root_matches_reference(size: int) -> None:
    leaves = (LEAVES + BIG_LEAVES)[:size]
    assert root(leaves) == ref_mth(leaves)
    assert root(tuple(leaves)) == ref_mth(leaves)


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=71, max_value=len(BIG_LEAVES)))
def test_root_matches_reference_random_sizes(size: int) -> None:
    assert root(BIG_LEAVES[:size]) == ref_mth(BIG_LEAVES[:size])


def test_root_rejects_leaves_that_are_not_hashes() -> None:
    with pytest.raises(ValueError):
        root([LEAVES[0], b"short"])
    with pytest.raises(ValueError):
        root([LEAVES[0] + b"x"])


# Proof generation equals the RFC definitions


@pytest.mark.parametrize("size", range(1, MAX_EXHAUSTIVE + 1))
def test_proofs_match_reference(size: int) -> None:
    leaves = LEAVES[:size]
    for index in range(size):
        assert inclusion_proof(LEAVES, index, size) == ref_path(index, leaves)
    for old in range(1, size):
        assert consistency_proof(LEAVES, old, size) == ref_subproof(old, leaves, True)
    assert consistency_proof(LEAVES, 0, size) == []
    assert consistency_proof(LEAVES, size, size) == []


def test_proof_generation_rejects_bad_arguments() -> None:
    for index, size in [(0, 0), (3, 3), (-1, 3), (0, len(LEAVES) + 1), (True, 3)]:
        with pytest.raises(ValueError):
            inclusion_proof(LEAVES, index, size)
    for old, new in [(4, 3), (-1, 3), (0, len(LEAVES) + 1)]:
        with pytest.raises(ValueError):
            consistency_proof(LEAVES, old, new)
    assert inclusion_proof(LEAVES[:5], 4) == inclusion_proof(LEAVES, 4, 5)


# Exhaustive verification with corruption probes: zero false accepts


@pytest.mark.parametrize("size", range(1, MAX_EXHAUSTIVE + 1))
def test_inclusion_all_indices_verify_and_probes_never_accepted(size: int) -> None:
    rng = random.Random(size)
    rt = ROOTS[size]
    checked = false_accepts = 0

    def probe(leaf_: bytes, index_: int, n: int, proof_: list[bytes], r: bytes) -> None:
        nonlocal checked, false_accepts
        checked += 1
        if not verify_inclusion(leaf_, index_, n, proof_, r):
            return
        restated = (leaf_, proof_, r) == (leaf, proof, rt) and inclusion_shape(
            index_, n
        ) == inclusion_shape(index, size)
        if not (restated or genuine_inclusion(leaf_, index_, n, proof_, r)):
            false_accepts += 1

    proofs = [inclusion_proof(LEAVES, index, size) for index in range(size)]
    for index in range(size):
        leaf, proof = LEAVES[index], proofs[index]
        assert verify_inclusion(leaf, index, size, proof, rt)
        for i in (index - 1, index + 1):
            probe(leaf, i, size, proof, rt)
            if 0 <= i < len(LEAVES):
                probe(LEAVES[i], i, size, proof, rt)  # the neighbour with this leaf's proof
        for n in {size - 1, size + 1, size * 2, size // 2}:
            probe(leaf, index, n, proof, rt)
            if n < len(ROOTS):
                probe(leaf, index, n, proof, ROOTS[n])  # with the other size's true root
        probe(leaf, index, size, proof, flip_bit(rt, rng.randrange(256)))
        probe(leaf, index, size, proof, ROOTS[size - 1])
        probe(leaf, index, size, proof, leaf)
        probe(flip_bit(leaf, rng.randrange(256)), index, size, proof, rt)
        probe(LEAVES[size], index, size, proof, rt)  # a leaf not in the tree
        for other in range(size):  # the proof of every other leaf
            if other != index:
                probe(leaf, index, size, proofs[other], rt)
                probe(leaf, other, size, proof, rt)
        for mutated in proof_mutations(proof, rng, LEAVES[-1]):
            probe(leaf, index, size, mutated, rt)
    assert checked > 0
    assert false_accepts == 0


@pytest.mark.parametrize("new", range(MAX_EXHAUSTIVE + 1))
def test_consistency_all_pairs_verify_and_probes_never_accepted(new: int) -> None:
    rng = random.Random(1000 + new)
    checked = false_accepts = 0

    def probe(m: int, n: int, old_: bytes, new_: bytes, proof_: list[bytes]) -> None:
        nonlocal checked, false_accepts
        checked += 1
        if not verify_consistency(m, n, old_, new_, proof_):
            return
        restated = (old_, new_, proof_) == (old_root, new_root, proof) and consistency_shape(
            m, n
        ) == consistency_shape(old, new)
        if not (restated or genuine_consistency(m, n, old_, new_, proof_)):
            false_accepts += 1

    proofs = [consistency_proof(LEAVES, old, new) for old in range(new + 1)]
    for old in range(new + 1):
        proof = proofs[old]
        old_root, new_root = ROOTS[old], ROOTS[new]
        assert verify_consistency(old, new, old_root, new_root, proof), (old, new)
        for m in {old - 1, old + 1, old * 2, old // 2, new}:
            probe(m, new, old_root, new_root, proof)
            if 0 <= m < len(ROOTS):
                probe(m, new, ROOTS[m], new_root, proof)
        for n in {new - 1, new + 1, new * 2, new // 2, old}:
            probe(old, n, old_root, new_root, proof)
            if 0 <= n < len(ROOTS):
                probe(old, n, old_root, ROOTS[n], proof)
        probe(new, old, new_root, old_root, proof)  # swapped
        probe(old, new, flip_bit(old_root, rng.randrange(256)), new_root, proof)
        probe(old, new, old_root, flip_bit(new_root, rng.randrange(256)), proof)
        probe(old, new, new_root, new_root, proof)
        probe(old, new, old_root, old_root, proof)
        probe(old, new, ROOTS[old + 1], new_root, proof)
        probe(old, new, old_root, ROOTS[new + 1], proof)
        for other in range(1, new):  # the proof from another old size
            if other != old:
                probe(old, new, old_root, new_root, proofs[other])
        for mutated in proof_mutations(proof, rng, LEAVES[-1]):
            probe(old, new, old_root, new_root, mutated)
        if proof:
            probe(old, new, old_root, new_root, [old_root, *proof])
    assert checked > 0
    assert false_accepts == 0


def test_consistency_special_cases() -> None:
    r5 = ROOTS[5]
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 0, r5, r5, [])
    assert verify_consistency(0, 5, EMPTY_ROOT, r5, [])
    assert not verify_consistency(0, 5, r5, r5, [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, r5, [r5])
    assert verify_consistency(5, 5, r5, r5, [])
    assert not verify_consistency(5, 5, r5, r5, [r5])
    assert not verify_consistency(5, 5, r5, ROOTS[4], [])
    assert not verify_consistency(6, 5, ROOTS[6], r5, [])
    assert not verify_consistency(3, 5, ROOTS[3], r5, [])


GARBAGE: list[object] = [None, "x", b"", b"\x00" * 31, b"\x00" * 33, 3, 1.5, [b"\x00" * 32]]


def test_verification_never_raises_on_garbage() -> None:
    leaf, proof, rt = LEAVES[2], inclusion_proof(LEAVES, 2, 7), ROOTS[7]
    args: list[object] = [leaf, 2, 7, proof, rt]
    for position in range(5):
        for junk in [*GARBAGE, -1, True, 2**200, (x for x in proof), b"".join(proof)]:
            mutated = list(args)
            if junk == mutated[position]:
                continue
            mutated[position] = junk
            assert verify_inclusion(*mutated) is False  # type: ignore[arg-type]
    assert verify_inclusion(leaf, 2, 7, [*proof[:-1], b"short"], rt) is False
    assert verify_inclusion(leaf, 2, 7, [*proof[:-1], None], rt) is False  # type: ignore[list-item]
    assert verify_inclusion(leaf, 2, 7, tuple(proof), rt) is True
    assert verify_inclusion(bytearray(leaf), 2, 7, proof, bytearray(rt)) is True

    cproof = consistency_proof(LEAVES, 3, 7)
    cargs: list[object] = [3, 7, ROOTS[3], rt, cproof]
    for position in range(5):
        for junk in [*GARBAGE, -1, True, 2**200, (x for x in cproof)]:
            mutated = list(cargs)
            if junk == mutated[position]:
                continue
            mutated[position] = junk
            assert verify_consistency(*mutated) is False  # type: ignore[arg-type]
    assert verify_consistency(3, 7, ROOTS[3], rt, [*cproof[:-1], 5]) is False  # type: ignore[list-item]
    assert verify_consistency(4, 7, ROOTS[4], rt, [None]) is False  # type: ignore[list-item]
    assert verify_consistency(3, 7, ROOTS[3], rt, cproof) is True


# Property tests on larger trees


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_inclusion_random_bit_flips_rejected(data: st.DataObject) -> None:
    size = data.draw(st.integers(min_value=1, max_value=len(BIG_LEAVES)), label="size")
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    proof = inclusion_proof(BIG_LEAVES, index, size)
    leaf, rt = BIG_LEAVES[index], root(BIG_LEAVES[:size])
    assert verify_inclusion(leaf, index, size, proof, rt)
    blob = leaf + rt + b"".join(proof)
    bit = data.draw(st.integers(min_value=0, max_value=8 * len(blob) - 1), label="bit")
    flipped = flip_bit(blob, bit)
    parts = [flipped[i : i + 32] for i in range(0, len(flipped), 32)]
    assert not verify_inclusion(parts[0], index, size, parts[2:], parts[1])
    delta = data.draw(st.sampled_from([-1, 1, size, -(size // 2)]), label="size delta")
    if size + delta != size and verify_inclusion(leaf, index, size + delta, proof, rt):
        # Only a restatement: the same path shape (see inclusion_shape).
        assert inclusion_shape(index, size + delta) == inclusion_shape(index, size)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_consistency_random_bit_flips_rejected(data: st.DataObject) -> None:
    new = data.draw(st.integers(min_value=2, max_value=len(BIG_LEAVES)), label="new")
    old = data.draw(st.integers(min_value=1, max_value=new - 1), label="old")
    proof = consistency_proof(BIG_LEAVES, old, new)
    old_root, new_root = root(BIG_LEAVES[:old]), root(BIG_LEAVES[:new])
    assert verify_consistency(old, new, old_root, new_root, proof)
    blob = old_root + new_root + b"".join(proof)
    bit = data.draw(st.integers(min_value=0, max_value=8 * len(blob) - 1), label="bit")
    flipped = flip_bit(blob, bit)
    parts = [flipped[i : i + 32] for i in range(0, len(flipped), 32)]
    assert not verify_consistency(old, new, parts[0], parts[1], parts[2:])
    for m, n in [(old + 1, new), (old, new + 1), (old - 1, new), (old, 2 * new)]:
        if verify_consistency(m, n, old_root, new_root, proof):
            # Only a restatement: the same recursion shape (see consistency_shape).
            assert consistency_shape(m, n) == consistency_shape(old, new)


# MerkleStore


class CountingCache(MutableMapping[NodeKey, bytes]):
    """A dict that counts lookups, standing in for a persisted node table."""

    def __init__(self, data: Mapping[NodeKey, bytes] | None = None) -> None:
        self.data: dict[NodeKey, bytes] = dict(data or {})
        self.lookups = 0

    def __getitem__(self, key: NodeKey) -> bytes:
        self.lookups += 1
        return self.data[key]

    def __setitem__(self, key: NodeKey, value: bytes) -> None:
        self.data[key] = value

    def __delitem__(self, key: NodeKey) -> None:
        del self.data[key]

    def __iter__(self) -> Iterator[NodeKey]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


class CountingLeaves:
    """``get_leaves`` over a list, counting calls and leaves returned."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = leaves
        self.calls = 0
        self.fetched = 0

    def __call__(self, start: int, end: int) -> Sequence[bytes]:
        self.calls += 1
        self.fetched += end - start
        return self.leaves[start:end]

    def reset(self) -> None:
        self.calls = self.fetched = 0


def assert_store_matches_plain(
    store: MerkleStore, leaves: Sequence[bytes], rng: random.Random
) -> None:
    size = store.size
    sizes = {0, min(1, size), size, *(rng.randint(0, size) for _ in range(6))}
    for n in sizes:
        assert store.root(n) == root(leaves[:n]), n
    if size == 0:
        return
    for _ in range(8):
        n = rng.randint(1, size)
        i = rng.randrange(n)
        assert store.inclusion_proof(i, n) == inclusion_proof(leaves, i, n), (i, n)
        m = rng.randint(0, n)
        assert store.consistency_proof(m, n) == consistency_proof(leaves, m, n), (m, n)
    for i in {0, size - 1}:
        assert store.inclusion_proof(i) == inclusion_proof(leaves, i, size)
    start = rng.randint(0, size)
    end = rng.randint(start, size)
    assert store.subtree_root(start, end) == root(leaves[start:end]), (start, end)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.integers(min_value=0, max_value=3000),
    block_level=st.sampled_from([0, 1, 2, 3, 5, 8]),
    steps=st.integers(min_value=1, max_value=4),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_store_matches_plain_functions(size: int, block_level: int, steps: int, seed: int) -> None:
    rng = random.Random(seed)
    leaves = BIG_LEAVES[:size]
    store = MerkleStore(CountingLeaves(leaves), block_level=block_level, fetch_chunk=512)
    cuts = sorted(rng.randint(0, size) for _ in range(steps - 1))
    persisted: list[tuple[int, int, bytes]] = []
    for target in [*cuts, size]:
        persisted.extend(store.extend(target))
        assert_store_matches_plain(store, leaves, rng)
    # Every cached node is the root of its aligned range, and each was reported once.
    persisted.extend(store.take_new_nodes())
    assert len(persisted) == len(store.cache) == len({(lv, ix) for lv, ix, _ in persisted})
    for (level, index), value in store.cache.items():
        assert level >= block_level
        assert value == root(leaves[index << level : (index + 1) << level])
    # A store resumed from the persisted nodes, and one with no cache at all, agree.
    resumed = MerkleStore(
        CountingLeaves(leaves),
        size,
        block_level=block_level,
        cache={(lv, ix): h for lv, ix, h in persisted},
    )
    assert_store_matches_plain(resumed, leaves, rng)
    assert resumed.take_new_nodes() == []
    lazy = MerkleStore(CountingLeaves(leaves), size, block_level=block_level)
    assert_store_matches_plain(lazy, leaves, rng)


def test_store_extend_is_incremental_and_checks_its_inputs() -> None:
    leaves = BIG_LEAVES[:1000]
    get = CountingLeaves(leaves)
    store = MerkleStore(get, block_level=4)
    store.extend(500)
    first = get.fetched
    assert first <= 500
    get.reset()
    store.extend(1000)
    assert get.fetched <= 1000 - (500 // 16) * 16  # only the new blocks are fetched
    assert store.root() == root(leaves)
    with pytest.raises(ValueError):
        store.extend(999)
    with pytest.raises(ValueError):
        store.subtree_root(0, 1001)
    with pytest.raises(ValueError):
        store.inclusion_proof(1000)
    with pytest.raises(ValueError):
        store.consistency_proof(10, 1001)

    short = MerkleStore(lambda start, end: leaves[start : end - 1], block_level=2)
    with pytest.raises(ValueError, match="returned"):
        short.extend(64)
    bad = MerkleStore(lambda start, end: [b"x"] * (end - start), block_level=2)
    with pytest.raises(ValueError):
        bad.extend(64)

    # A cache that disagrees with the leaves (a rewritten log) is detected on recomputation.
    cache = dict(store.cache)
    cache[(4, 1)] = flip_bit(cache[(4, 1)], 0)
    tampered = MerkleStore(CountingLeaves(leaves), block_level=4, cache=cache)
    with pytest.raises(ValueError, match="disagrees"):
        tampered.extend(1000)


def test_store_proof_in_a_million_leaf_log_touches_log_n_nodes() -> None:
    size = (1 << 20) + 1234  # not a power of two: the right spine and the last block are partial
    blob = os.urandom(32 * size)
    leaves = [blob[i : i + 32] for i in range(0, len(blob), 32)]
    get = CountingLeaves(leaves)
    store = MerkleStore(get)  # blocks of 256 leaves
    store.extend(size)
    assert get.fetched == (size // 256) * 256  # every complete block read exactly once
    assert store.root() == root(leaves)
    block = 1 << store.block_level

    rng = random.Random(7)
    full_root = store.root()
    for index in [0, size // 2, rng.randrange(size), size - 1]:
        get.reset()
        cache = CountingCache(store.cache)  # a fresh store on the persisted nodes
        fresh = MerkleStore(get, size, cache=cache)
        proof = fresh.inclusion_proof(index)
        assert verify_inclusion(leaves[index], index, size, proof, full_root)
        assert get.fetched <= 2 * block, get.fetched  # the leaf's block and the last block
        assert get.calls <= 2
        assert cache.lookups <= 3 * size.bit_length(), cache.lookups
        assert fresh.take_new_nodes() == []  # nothing needed recomputing

    for old in [1, 1000, 1 << 19, rng.randrange(1, size)]:
        get.reset()
        cache = CountingCache(store.cache)
        fresh = MerkleStore(get, size, cache=cache)
        old_root = fresh.root(old)
        proof = fresh.consistency_proof(old)
        assert verify_consistency(old, size, old_root, full_root, proof)
        assert get.fetched <= 3 * block, get.fetched
        assert cache.lookups <= 6 * size.bit_length(), cache.lookups


def test_verification_is_the_offline_verifiers_own() -> None:
    """The log proves with the very functions the offline verifier checks with: audit.merkle
    re-exports them from audit/verifier.py, which imports only the standard library and
    ``cryptography``."""
    from audit import merkle, verifier

    for name in ("root", "node_hash", "verify_inclusion", "verify_consistency", "EMPTY_ROOT"):
        assert getattr(merkle, name) is getattr(verifier, name), name
    source = Path(__file__).resolve().parents[2] / "audit" / "verifier.py"
    roots = imported_roots(source)
    assert roots - set(sys.stdlib_module_names) == {"cryptography"}, roots

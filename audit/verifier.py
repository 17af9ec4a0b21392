"""Verify Warden's audit log offline: records, Merkle tree, signed checkpoints, export bundles.

This one file is everything a regulator needs to check an export of Warden's audit log on
their own machine. It imports only the Python standard library (3.11 or later) and
``cryptography`` (for Ed25519), trusts nothing in the bundle but the records, the checkpoints
and the verification keys given on its command line, and can be read top to bottom:

1. **Records** (AUDIT_SPEC.md sections 2-4): each body is canonical JSON (RFC 8785) in the
   record profile; ``seq`` counts up from 0; ``prev`` is the leaf hash of the record before;
   times never go back; electronic signature records carry the digest of what was signed.
2. **Merkle tree** (RFC 9162): the leaf hash of a record is ``SHA-256(0x00 || body)``; a
   checkpoint commits to the tree over the first ``size`` leaves; inclusion and consistency
   proofs are checked exactly as RFC 9162 sections 2.1.3.2 and 2.1.4.2 say.
3. **Signed notes** (c2sp.org/signed-note, c2sp.org/tlog-checkpoint): a checkpoint is the
   text ``<origin>\\n<size>\\n<base64 root>\\n`` signed with Ed25519.
4. **Bundles** (docs/audit-bundle.md): a zip of ``records.jsonl``, ``checkpoints/<size>.note``,
   ``proofs/`` and an informational ``manifest.json``.

Run it as::

    python -m audit.verifier BUNDLE.zip --key 'warden.example+1a2b3c4d+AY...' [--prior OLD.note]
                                        [--json]

Exit status 0 when no ``E_*`` finding, 1 when there is one, 2 when the bundle or a key cannot
be read at all. Codes (AUDIT_SPEC.md section 7): E_NOTE, E_SIG, E_NO_TRUSTED_SIG, E_ORIGIN,
E_VERSION, E_PARSE, E_NONCANONICAL, E_SEQ_GAP, E_SEQ_DUP, E_PREV, E_ROOT, E_CONSISTENCY,
E_FORK, E_TRUNCATED, E_ESIG, E_TS_REGRESSION, E_MANIFEST (the unsigned manifest disagrees
with the bundle), W_UNANCHORED_TAIL, W_PARTIAL. Warden's in-service ``manage.py
audit_verify`` runs the record checks of part 1 over its database and adds E_LEAF (a stored
leaf column that disagrees with its body) and E_TRUNCATED (fewer records than the log head).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import functools
import gc
import hashlib
import json
import json.encoder
import os
import re
import sys
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, NamedTuple, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# Part 1. Records

SUPPORTED_VERSIONS = frozenset({1})
GENESIS_PREV = "0" * 64
MAX_SAFE_INTEGER = 2**53 - 1
_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z\Z")
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "v": int,
    "log": str,
    "seq": int,
    "ts": str,
    "prev": str,
    "actor": dict,
    "action": str,
    "object": dict,
    "scope": dict,
    "data": dict,
}
_OPTIONAL: dict[str, type] = {"reason": str, "context": dict}
# A decoded JSON value is exactly one of dict, list, str, int, float, bool or None.
_REQUIRED_TYPES = tuple(_REQUIRED.values())
_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True)
class Finding:
    """One failed check: its code, the seq it concerns (None for the log as a whole), why,
    and for a bundle the file it concerns when that is not a record (a checkpoint, a proof)."""

    code: str
    seq: int | None
    message: str
    file: str | None = None

    def as_dict(self) -> dict[str, Any]:
        found = {"code": self.code, "seq": self.seq, "message": self.message}
        return found if self.file is None else {**found, "file": self.file}

    @property
    def is_error(self) -> bool:
        return self.code.startswith("E_")


@dataclass
class ChainReport:
    """The outcome of verifying a run of records."""

    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    tip: str = GENESIS_PREV
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.is_error for f in self.findings)

    @property
    def first_error(self) -> Finding | None:
        errors = [f for f in self.findings if f.is_error and f.seq is not None]
        if errors:
            return min(errors, key=lambda f: f.seq if f.seq is not None else -1)
        return next((f for f in self.findings if f.is_error), None)

    def as_dict(self) -> dict[str, Any]:
        first = self.first_error
        return {
            "ok": self.ok,
            "records": self.records,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "tip": self.tip,
            "first_bad_seq": first.seq if first else None,
            "findings": [f.as_dict() for f in self.findings],
        }


class _NotInProfile(ValueError):
    pass


def _reject_float(text: str) -> Any:
    raise _NotInProfile(f"float {text} (numbers other than integers must be strings)")


def _reject_constant(text: str) -> Any:
    raise _NotInProfile(f"{text} is not JSON")


def _big_integer(value: Any) -> int | None:
    """The first integer of ``value`` outside +-(2**53-1), if any."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if abs(value) > MAX_SAFE_INTEGER else None
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for item in items:
        found = _big_integer(item)
        if found is not None:
            return found
    return None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _NotInProfile(f"duplicate key {key!r}")
        out[key] = value
    return out


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


# One decoder and one encoder for every body (building them per call costs as much as a
# small record's checks). The float and constant hooks are called only for values that are
# outside the profile anyway, so a valid body pays nothing for them.
_DECODER = json.JSONDecoder(parse_float=_reject_float, parse_constant=_reject_constant)
_RAW_DECODE = _DECODER.raw_decode
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False
)


def _make_canonical_text() -> Callable[[Any], str]:
    """``_ENCODER.encode`` without rebuilding the C encoder on every call (which
    ``JSONEncoder.encode`` does); the plain method where the C accelerator is missing."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _ENCODER.encode
    encode = make(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", True, False, False
    )

    def canonical_text(value: Any) -> str:
        return "".join(encode(value, 0))

    return canonical_text


_canonical_text = _make_canonical_text()
# In canonical bytes an integer follows ':', ',' or '[' (then maybe '-'); one of 16 or more
# digits may be beyond 2**53-1 and sends the record to the exact check. Mapping those marks
# to "p" and digits to "0" turns the search into one substring test (a regular expression
# scanning every byte costs more than the JSON parse).
_INTEGER_MARKS = bytes(
    ord("0") if chr(byte).isdigit() and byte < 128 else ord("p") if chr(byte) in ":,[-" else 32
    for byte in range(256)
)
_LONG_INTEGER = b"p" + b"0" * 16
_FIELDS = frozenset(_REQUIRED) | frozenset(_OPTIONAL)
# From a non-ASCII character to the end of its string, then ':'. In compact JSON only a key's
# closing quote is followed by ':', so this matches exactly when some key is not ASCII.
_NON_ASCII_KEY = re.compile(r'[^\x00-\x7f](?:[^"\\]|\\.)*":')


def canonical_dumps(value: Any) -> bytes:
    """RFC 8785 bytes for a value inside the profile."""
    return _ENCODER.encode(value).encode("utf-8")


def leaf_hash(body: bytes) -> str:
    """``SHA-256(0x00 || body)`` as hex."""
    return hashlib.sha256(b"\x00" + body).hexdigest()


def _decode(body: bytes) -> tuple[str, dict[str, Any]]:
    """The body as text and as an object; ``ValueError`` (code, reason) if it is neither."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("E_PARSE", f"not UTF-8: {exc.reason}") from exc
    try:
        record, end = _RAW_DECODE(text)
    except ValueError:  # _NotInProfile included: the slow path below names the problem
        end = -1
    if end != len(text):
        try:
            record = _DECODER.decode(text)
        except _NotInProfile as exc:
            raise ValueError("E_NONCANONICAL", str(exc)) from exc
        except ValueError as exc:
            raise ValueError("E_PARSE", f"not JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise ValueError("E_PARSE", "a record must be a JSON object")
    return text, record


def _check_fields(record: dict[str, Any]) -> None:
    """The record's fields, their types and the formats of ts and prev."""
    try:  # one pass in C for the usual case; the loop below names what is wrong
        types = tuple(map(type, map(record.__getitem__, _REQUIRED)))
    except KeyError:
        types = ()
    if types != _REQUIRED_TYPES:
        for name, kind in _REQUIRED.items():
            if name not in record:
                raise ValueError("E_PARSE", f"field {name!r} missing")
            value = record[name]
            if isinstance(value, bool) or not isinstance(value, kind):
                raise ValueError("E_PARSE", f"field {name!r} has the wrong type")
    if len(record) > len(_REQUIRED):
        for name, kind in _OPTIONAL.items():
            if name in record and not isinstance(record[name], kind):
                raise ValueError("E_PARSE", f"field {name!r} has the wrong type")
        unknown = record.keys() - _FIELDS
        if unknown:
            raise ValueError("E_PARSE", f"unknown fields {sorted(unknown)}")
    if not _TS.match(record["ts"]):
        raise ValueError("E_PARSE", f"ts {record['ts']!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    if not _HEX64.match(record["prev"]):
        raise ValueError("E_PARSE", "prev is not 64 lowercase hex digits")


def parse_record(body: bytes) -> dict[str, Any]:
    """Parse one body and check it is canonical; raise ``ValueError`` with code and reason."""
    text, record = _decode(body)
    # Compared as text: valid UTF-8 cannot hold a lone surrogate, so an escaped one
    # ("\ud800"), which decodes to one, never re-encodes to the same text.
    if _canonical_text(record) != text:
        try:
            json.loads(text, object_pairs_hook=_no_duplicates)
        except _NotInProfile as exc:
            raise ValueError("E_NONCANONICAL", str(exc)) from exc
        raise ValueError("E_NONCANONICAL", "bytes differ from the canonical serialisation")
    if _LONG_INTEGER in body.translate(_INTEGER_MARKS):
        big = _big_integer(record)
        if big is not None:
            raise ValueError("E_NONCANONICAL", f"integer {big} outside +-(2**53-1)")
    # Every non-ASCII character of a canonical body is inside a string, between quotes that
    # compose with nothing, so an NFC text has only NFC strings. The converse can fail (an
    # escape such as \n followed by a combining mark), so a non-NFC text is checked string
    # by string before it is refused.
    if not text.isascii():
        if not unicodedata.is_normalized("NFC", text):
            for item in _strings(record):
                if not unicodedata.is_normalized("NFC", item):
                    raise ValueError("E_NONCANONICAL", f"string not NFC-normalised: {item!r}")
        key = _NON_ASCII_KEY.search(text)
        if key is not None:
            raise ValueError("E_NONCANONICAL", f"object key not ASCII: ...{key.group()!r}")
    _check_fields(record)
    return record


def check_signature_record(record: dict[str, Any]) -> str | None:
    """For a record that carries an electronic signature, the reason it is invalid, or None.

    A signature record's data holds ``signed_content`` (what was signed: request, model,
    version, digest, environment, policy version, step, decision, meaning, signer, printed
    name, evidence digests) and ``signed_sha256``, the SHA-256 of its canonical bytes.
    """
    data = record["data"]
    if "signed_sha256" not in data:
        return None
    content = data.get("signed_content")
    if not isinstance(content, dict):
        return "signature record without signed_content"
    for name in ("meaning", "printed_name", "signed_at"):
        if not content.get(name):
            return f"signature record without {name}"
    digest = hashlib.sha256(canonical_dumps(content)).hexdigest()
    if digest != data["signed_sha256"]:
        return "signed_sha256 does not match the signed content"
    return None


# What the order-independent checks of one body leave for the chain checks: its leaf hash,
# then either (seq, prev, ts, log, v, signature problem or None) or the (code, message) of
# the check it failed. Tuples, so that worker processes can send them back cheaply.
Checked = tuple[str, tuple[int, str, str, str, int, str | None] | None, tuple[str, str] | None]


def check_body(body: bytes) -> Checked:
    """Every check of one body that does not depend on its neighbours."""
    leaf = leaf_hash(body)
    try:
        record = parse_record(body)
    except ValueError as exc:
        code, message = exc.args
        return leaf, None, (code, message)
    except RecursionError:  # a forged body nested deeper than Python's stack
        return leaf, None, ("E_PARSE", "nested too deeply")
    fields = (
        record["seq"],
        record["prev"],
        record["ts"],
        record["log"],
        record["v"],
        check_signature_record(record),
    )
    return leaf, fields, None


def check_bodies(bodies: list[bytes]) -> list[Checked]:
    """``check_body`` over a run of bodies (the unit of work of a worker process)."""
    return [check_body(body) for body in bodies]


class CleanRun(NamedTuple):
    """A run of bodies in which the chain checks can find nothing, summarised
    (``summarise_bodies``): every body passed ``check_body`` with a supported version and no
    signature problem, all are of one log, and each follows the one before it exactly (seq
    one more, prev its leaf, ts not before). Only the first record's links to what came
    before the run remain to be checked (``ChainVerifier.accept_run``)."""

    records: int
    log: str
    first_seq: int
    first_prev: str
    first_ts: str
    last_seq: int
    last_leaf: str
    last_ts: str
    leaves: bytes
    """Every leaf hash of the run, in order, 32 bytes each (one object: cheap to send)."""
    subtree: bytes | None
    """The Merkle root of the run's leaves when their count is a power of two, else None."""


def summarise_bodies(bodies: list[bytes], origin: str | None = None) -> CleanRun | list[Checked]:
    """``check_bodies``, answered with a ``CleanRun`` when the run is clean and every record
    of it is of the log ``origin`` (None: of the first record's log).

    A worker process sends back one small summary instead of a tuple per body, and the
    process that verifies the chain does constant work for the whole run. A run that is not
    clean is answered with ``check_bodies``, so that ``ChainVerifier.accept`` finds and names
    every problem of it exactly as it would otherwise.
    """
    if not bodies:
        return []
    # Parsing allocates a dict per body and keeps none, so the cyclic collector would only
    # rescan the same live objects over and over; it runs again once the run is done.
    collecting = gc.isenabled()
    gc.disable()
    try:
        run = _clean_run(bodies, origin)
    finally:
        if collecting:
            gc.enable()
    return check_bodies(bodies) if run is None else run


def _clean_run(bodies: list[bytes], origin: str | None) -> CleanRun | None:
    """The summary of a non-empty run of bodies, or None as soon as one is not clean."""
    sha256, supported = _sha256, SUPPORTED_VERSIONS
    digests: list[bytes] = []
    first: dict[str, Any] = {}
    leaf = ts = ""
    seq = -1
    log = origin
    for body in bodies:
        digest = sha256(b"\x00" + body).digest()
        try:
            record = parse_record(body)
        except (ValueError, RecursionError):
            return None
        if record["v"] not in supported or check_signature_record(record) is not None:
            return None
        if not digests:
            first = record
            log = record["log"] if origin is None else origin
        elif record["seq"] != seq + 1 or record["prev"] != leaf or record["ts"] < ts:
            return None
        if record["log"] != log:
            return None
        seq, ts, leaf = record["seq"], record["ts"], digest.hex()
        digests.append(digest)
    count = len(digests)
    return CleanRun(
        records=count,
        log=first["log"],
        first_seq=first["seq"],
        first_prev=first["prev"],
        first_ts=first["ts"],
        last_seq=seq,
        last_leaf=leaf,
        last_ts=ts,
        leaves=b"".join(digests),
        subtree=root(digests) if count & (count - 1) == 0 else None,
    )


def check_in_parallel(
    chunks: Iterable[tuple[_T, list[bytes]]], workers: int
) -> Iterator[tuple[_T, list[Checked]]]:
    """``check_bodies`` over ``(tag, bodies)`` chunks in ``workers`` processes, in order."""
    return in_parallel(check_bodies, chunks, workers)


def in_parallel(
    check: Callable[[list[bytes]], _R], chunks: Iterable[tuple[_T, list[bytes]]], workers: int
) -> Iterator[tuple[_T, _R]]:
    """``check`` (a function of this module, or a ``functools.partial`` of one: the workers
    import it by name) over ``(tag, bodies)`` chunks in ``workers`` processes, in order.

    At most two chunks per worker are in flight, so memory stays flat however long the log;
    reading the next chunk overlaps the checking of the previous ones.
    """
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    # spawn: the workers import only this module, never the caller's state (Django's
    # connections, threads) that fork would copy.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[tuple[_T, Future[_R]]] = deque()
        for tag, bodies in chunks:
            pending.append((tag, pool.submit(check, bodies)))
            if len(pending) > 2 * workers:
                done_tag, done = pending.popleft()
                yield done_tag, done.result()
        while pending:
            done_tag, done = pending.popleft()
            yield done_tag, done.result()


class ChainVerifier:
    """Feed bodies in log order; collects every finding, re-synchronising after each one.

    With ``contiguous=False`` (a filtered export) seq may skip ahead: a skip is not a gap,
    and ``prev`` is checked only where a record directly follows the one before it.
    """

    def __init__(
        self,
        origin: str,
        *,
        start_seq: int = 0,
        start_prev: str = GENESIS_PREV,
        contiguous: bool = True,
    ) -> None:
        self.origin = origin
        self.report = ChainReport()
        self._expected_seq = start_seq
        self._prev = start_prev
        self._last_ts = ""
        self._contiguous = contiguous

    def _fail(self, code: str, seq: int | None, message: str) -> None:
        self.report.findings.append(Finding(code, seq, message))

    def feed(self, body: bytes, *, position: int | None = None) -> str:
        """Check the next body; returns its leaf hash."""
        return self.accept(check_body(body), position=position)

    def accept(self, checked: Checked, *, position: int | None = None) -> str:
        """The chain checks for the next body, given its ``check_body`` result."""
        leaf, fields, error = checked
        expected = self._expected_seq
        report = self.report
        report.records += 1
        report.tip = leaf
        if fields is None:
            # check_body names the fault of every body it could not read.
            code, message = error if error is not None else ("E_PARSE", "unreadable record")
            self._fail(code, expected if position is None else position, message)
            self._expected_seq, self._prev = expected + 1, leaf
            return leaf
        seq, prev, ts, log, version, signature_problem = fields
        if report.first_seq is None:
            report.first_seq = seq
        report.last_seq = seq
        if version not in SUPPORTED_VERSIONS:
            self._fail("E_VERSION", seq, f"record format version {version} is not supported")
        if log != self.origin:
            self._fail("E_ORIGIN", seq, f"record of log {log!r}, not {self.origin!r}")
        linked = True
        if seq > expected:
            if self._contiguous:
                missing = f"{expected}" if seq == expected + 1 else f"{expected}..{seq - 1}"
                self._fail("E_SEQ_GAP", expected, f"seq {missing} missing before {seq}")
            else:
                linked = False  # the record before this one is not in a filtered export
        elif seq < expected:
            self._fail("E_SEQ_DUP", seq, f"seq {seq} appears again after {expected - 1}")
        if linked and prev != self._prev:
            self._fail(
                "E_PREV",
                seq,
                f"prev of seq {seq} is not the leaf hash of the record before it "
                "(that record was changed, removed or reordered)",
            )
        if ts < self._last_ts:
            self._fail("E_TS_REGRESSION", seq, f"ts {ts} before {self._last_ts}")
        else:
            self._last_ts = ts
        if signature_problem:
            self._fail("E_ESIG", seq, signature_problem)
        self._expected_seq, self._prev = seq + 1, leaf
        return leaf

    def accept_run(self, run: CleanRun) -> bool:
        """The chain checks for a clean run of bodies (``summarise_bodies``), in constant time.

        When the run's first record directly follows the last one accepted (the next seq,
        prev its leaf, ts not before, the same log), ``accept`` would find nothing in the
        whole run: the state moves past its last record and the answer is True. Otherwise
        nothing changes and the answer is False: ``accept`` each of its bodies instead.
        """
        if (
            run.first_seq != self._expected_seq
            or run.first_prev != self._prev
            or run.first_ts < self._last_ts
            or run.log != self.origin
        ):
            return False
        report = self.report
        report.records += run.records
        report.tip = run.last_leaf
        if report.first_seq is None:
            report.first_seq = run.first_seq
        report.last_seq = run.last_seq
        self._expected_seq, self._prev, self._last_ts = run.last_seq + 1, run.last_leaf, run.last_ts
        return True

    def finish(self) -> ChainReport:
        return self.report


def verify_bodies(origin: str, bodies: Iterable[bytes]) -> ChainReport:
    """Verify a complete log (starting at seq 0) given its bodies in order."""
    verifier = ChainVerifier(origin)
    for body in bodies:
        verifier.feed(body)
    return verifier.finish()


# Part 2. Merkle tree (RFC 9162)

HASH_SIZE = 32
"""Size in bytes of every hash in the tree (SHA-256)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""``MTH`` of the empty tree: ``SHA-256("")``."""

_sha256 = hashlib.sha256
_NODE_PREFIX = b"\x01"


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash ``SHA-256(0x01 || left || right)`` (32 bytes)."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes | bytearray) and len(value) == HASH_SIZE


def _is_count(value: object) -> bool:
    """A non-negative ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def root(leaves: Sequence[bytes]) -> bytes:
    """``MTH`` of the given leaf hashes (RFC 9162 section 2.1.1); ``EMPTY_ROOT`` for none.

    Computed level by level (pairs hashed left to right, an odd last node promoted unchanged
    to the next level), which equals the recursive definition with the largest-power-of-two
    split; ``O(n)`` time and ``O(n)`` memory, no recursion.

    Raises ``ValueError`` if any leaf is not exactly 32 bytes.
    """
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if set(map(len, leaves)) != {HASH_SIZE}:
        raise ValueError("every leaf must be a 32-byte leaf hash")
    if n == 1:
        return bytes(leaves[0])
    sha256, prefix = _sha256, _NODE_PREFIX
    level: Sequence[bytes] = leaves
    while n > 1:
        pairs = iter(level)
        upper = [
            sha256(prefix + left + right).digest()
            for left, right in zip(pairs, pairs, strict=False)
        ]
        if n & 1:
            upper.append(bytes(level[-1]))
        level, n = upper, len(upper)
    return bytes(level[0])


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows ``leaf_hash`` is leaf ``index`` of the tree ``root`` of ``size``.

    RFC 9162 section 2.1.3.2, bit for bit. Returns ``False`` (never raises) unless
    ``0 <= index < size``, ``leaf_hash``, ``root`` and every proof element are 32-byte
    ``bytes`` (or ``bytearray``), the proof is a list or tuple of exactly the right length,
    and the recomputed root matches.

    Inherent to every Merkle proof: ``(index, size)`` are bound only through the shape of
    the path, so the same proof verifies for another pair with the same shape *and the same
    root* (the proof of leaf 2 in a 3-leaf tree also verifies as leaf 1 of a 2-leaf tree
    whose root is the 3-leaf root; nobody can exhibit such a 2-leaf tree). Callers must
    therefore take ``size`` and ``root`` together from one signed checkpoint; for a fixed
    ``size`` the index is bound.
    """
    if not (_is_count(index) and _is_count(size)) or index >= size:
        return False
    if not (_is_hash(leaf_hash) and _is_hash(root)) or not _is_proof(proof):
        return False
    fn, sn = index, size - 1
    r = bytes(leaf_hash)
    for p in proof:
        if sn == 0 or not _is_hash(p):
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree ``new_root`` of ``new_size`` extends ``old_root``.

    RFC 9162 section 2.1.4.2, bit for bit, for ``0 < old_size < new_size``. The cases the RFC
    leaves to the caller are decided here, strictly:

    - ``old_size == new_size``: the proof must be empty and the roots equal (and equal to
      ``EMPTY_ROOT`` when the size is 0);
    - ``old_size == 0``: the proof must be empty and ``old_root`` must be ``EMPTY_ROOT``
      (the empty tree is a prefix of every tree);
    - anything else malformed (negative or non-int sizes, ``old_size > new_size``, hashes
      that are not 32 bytes, a proof that is not a list or tuple or has the wrong length)
      returns ``False``; never raises.

    As with inclusion, the sizes are bound only through the shape of the proof, so both
    ``(size, root)`` pairs must each come from one signed checkpoint.
    """
    if not (_is_count(old_size) and _is_count(new_size)) or old_size > new_size:
        return False
    if not (_is_hash(old_root) and _is_hash(new_root)) or not _is_proof(proof):
        return False
    if old_size == new_size:
        return (
            len(proof) == 0 and old_root == new_root and (old_size != 0 or old_root == EMPTY_ROOT)
        )
    if old_size == 0:
        return len(proof) == 0 and old_root == EMPTY_ROOT
    if len(proof) == 0:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a subtree
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    if not _is_hash(path[0]):
        return False
    fr = sr = bytes(path[0])
    for c in path[1:]:
        if sn == 0 or not _is_hash(c):
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


def _is_proof(proof: object) -> bool:
    """A list or tuple (not bytes, not a string, not a generator); elements checked later."""
    return isinstance(proof, list | tuple)


# Part 3. Signed notes and checkpoints (C2SP)


ALG_ED25519 = 0x01
"""Signature type byte of Ed25519 in key ids and key strings."""

MAX_SIGNATURES = 100
"""More signature lines than this make a note malformed (the Go reference's limit)."""

MAX_TREE_SIZE = 2**64 - 1
"""The largest tree size a checkpoint may carry (an unsigned 64-bit integer)."""

E_NOTE = "E_NOTE"
E_SIG = "E_SIG"
E_NO_TRUSTED_SIG = "E_NO_TRUSTED_SIG"

_SIG_PREFIX = "\u2014 "  # em dash, space
_KEY_ID_SIZE = 4
_PUBLIC_KEY_SIZE = 32
_SIGNATURE_SIZE = 64
_ROOT_SIZE = 32
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


class NoteError(ValueError):
    """A note or checkpoint that must be rejected; ``code`` is ``E_NOTE``, ``E_SIG`` or
    ``E_NO_TRUSTED_SIG``, ``message`` says why in words."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class KeyFormatError(ValueError):
    """A signer or verifier key string, or a key name, that is not acceptable."""


# Helpers


def _b64decode(text: str) -> bytes | None:
    """Strict standard base64 (RFC 4648 section 4, padded): the decoded bytes, or ``None``
    unless ``text`` is exactly the canonical encoding of them."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    if base64.b64encode(raw).decode("ascii") != text:
        return None
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def is_valid_key_name(name: object) -> bool:
    """A key name: a non-empty string without Unicode spaces, ``+`` or control characters."""
    return (
        isinstance(name, str)
        and name != ""
        and "+" not in name
        and not any(ch.isspace() for ch in name)
        and _CONTROL.search(name) is None
    )


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key id ``SHA-256(name || 0x0A || 0x01 || public_key)[:4]`` of an Ed25519 key."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key)
    return digest.digest()[:_KEY_ID_SIZE]


def _check_text(text: str) -> None:
    """Refuse carriage returns and other control characters (everything but newline)."""
    if "\r" in text:
        raise NoteError(E_NOTE, "carriage return (CRLF line endings?)")
    found = _CONTROL.search(text)
    if found is not None:
        raise NoteError(
            E_NOTE, f"control character U+{ord(found.group()):04X} (only newline allowed)"
        )


def _decode_text(data: bytes) -> str:
    if not isinstance(data, bytes | bytearray):
        raise NoteError(E_NOTE, "a note must be bytes")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteError(E_NOTE, f"not UTF-8: {exc.reason} at byte {exc.start}") from exc
    _check_text(text)
    return text


# Keys


@dataclass(frozen=True)
class Verifier:
    """A trusted Ed25519 note key: its name, 4-byte key id and 32-byte public key."""

    name: str
    key_id: bytes
    public_key: bytes
    _key: Ed25519PublicKey = field(repr=False, compare=False)

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes) -> Verifier:
        """The verifier of ``name`` for a raw 32-byte Ed25519 public key; ``KeyFormatError``
        for an invalid name or key."""
        if not is_valid_key_name(name):
            raise KeyFormatError(f"invalid key name {name!r}")
        if not isinstance(public_key, bytes) or len(public_key) != _PUBLIC_KEY_SIZE:
            raise KeyFormatError("an Ed25519 public key is 32 bytes")
        try:
            key = Ed25519PublicKey.from_public_bytes(public_key)
        except ValueError as exc:
            raise KeyFormatError(f"invalid Ed25519 public key: {exc}") from exc
        return cls(name, key_id(name, public_key), public_key, key)

    @property
    def key_id_hex(self) -> str:
        """The key id as 8 lowercase hex digits."""
        return self.key_id.hex()

    def key_string(self) -> str:
        """``<name>+<hex key id>+<base64(0x01 || public key)>``."""
        encoded = _b64encode(bytes([ALG_ED25519]) + self.public_key)
        return f"{self.name}+{self.key_id_hex}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``; never raises."""
        if len(signature) != _SIGNATURE_SIZE:
            return False
        try:
            self._key.verify(signature, message)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True


def _parse_key_material(name: str, hex_id: str, encoded: str, what: str) -> tuple[bytes, bytes]:
    """Check name, hex key id and ``base64(0x01 || 32 bytes)``; return (key id, 32 bytes)."""
    if not is_valid_key_name(name):
        raise KeyFormatError(f"malformed {what}: invalid key name")
    if not _HEX8.fullmatch(hex_id):
        raise KeyFormatError(f"malformed {what}: key id must be 8 hex digits")
    raw = _b64decode(encoded)
    if raw is None or len(raw) == 0:
        raise KeyFormatError(f"malformed {what}: key is not canonical base64")
    if raw[0] != ALG_ED25519:
        raise KeyFormatError(f"{what}: unsupported algorithm byte 0x{raw[0]:02x} (want 0x01)")
    if len(raw) != 1 + _PUBLIC_KEY_SIZE:
        raise KeyFormatError(f"malformed {what}: an Ed25519 key is 32 bytes")
    return bytes.fromhex(hex_id), raw[1:]


def parse_verifier(key: str) -> Verifier:
    """Parse ``<name>+<hex key id>+<base64(0x01 || public key)>``.

    Raises ``KeyFormatError`` for a malformed string, an algorithm other than Ed25519, a key
    of the wrong size, or a key id that does not match the name and key.
    """
    if not isinstance(key, str):
        raise KeyFormatError("a verifier key is a string")
    parts = key.split("+", 2)  # names hold no '+', base64 may
    if len(parts) != 3:
        raise KeyFormatError("malformed verifier key: want <name>+<hex id>+<base64 key>")
    name, hex_id, encoded = parts
    claimed, public = _parse_key_material(name, hex_id, encoded, "verifier key")
    verifier = Verifier.from_public_key(name, public)
    if verifier.key_id != claimed:
        raise KeyFormatError("verifier key: key id does not match the name and key")
    return verifier


@dataclass(frozen=True)
class NoteSignature:
    """One parsed signature line: key name, 4-byte key id, signature bytes (after the id)."""

    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class OpenedNote:
    """A note whose signatures were checked.

    ``body`` is the signed text exactly (bytes, ending in a newline); ``verified_by`` the
    known keys whose signatures verified (each once, in order of first appearance);
    ``unverified`` the signature lines of unknown keys, ignored (duplicates dropped).
    """

    body: bytes
    verified_by: tuple[Verifier, ...]
    unverified: tuple[NoteSignature, ...]

    @property
    def text(self) -> str:
        """The body as text."""
        return self.body.decode("utf-8")

    @property
    def key_names(self) -> tuple[str, ...]:
        """Names of the keys that verified."""
        return tuple(v.name for v in self.verified_by)


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(_SIG_PREFIX):
        raise NoteError(E_NOTE, "signature line does not start with an em dash and a space")
    name, space, encoded = line[len(_SIG_PREFIX) :].partition(" ")
    if not space or not is_valid_key_name(name):
        raise NoteError(E_NOTE, "signature line without a valid key name")
    raw = _b64decode(encoded) if encoded else None
    if raw is None:
        raise NoteError(E_NOTE, f"signature by {name!r} is not canonical base64")
    if len(raw) <= _KEY_ID_SIZE:
        raise NoteError(E_NOTE, f"signature by {name!r} is too short")
    return NoteSignature(name, raw[:_KEY_ID_SIZE], raw[_KEY_ID_SIZE:])


def _index_verifiers(verifiers: Sequence[Verifier]) -> dict[tuple[str, bytes], Verifier]:
    known: dict[tuple[str, bytes], Verifier] = {}
    for verifier in verifiers:
        ident = (verifier.name, verifier.key_id)
        other = known.get(ident)
        if other is not None and other.public_key != verifier.public_key:
            raise ValueError(f"ambiguous trusted keys {verifier.name}+{verifier.key_id.hex()}")
        known[ident] = verifier
    return known


def open_note(note: bytes, verifiers: Sequence[Verifier]) -> OpenedNote:
    """Parse ``note`` and check its signatures against the trusted ``verifiers``.

    Raises ``NoteError`` with code:

    - ``E_NOTE``: not UTF-8; a carriage return or other control character; no blank line
      separating text and signatures; no signature line; not ending in a newline (trailing
      garbage); a signature line that is not ``— <name> <base64>`` with a valid key name and
      canonical base64 of more than 4 bytes; more than ``MAX_SIGNATURES`` signature lines;
    - ``E_SIG``: a signature line whose name and key id match a trusted key fails to verify;
    - ``E_NO_TRUSTED_SIG``: no trusted key signed.

    Lines from unknown keys are ignored. Raises ``ValueError`` (a configuration error) if two
    different trusted keys share a name and key id.
    """
    _decode_text(note)  # UTF-8 without control characters, or E_NOTE
    data = bytes(note)
    split = data.rfind(b"\n\n")
    if split < 0:
        raise NoteError(E_NOTE, "no blank line between the text and the signatures")
    body = data[: split + 1]
    block = data[split + 2 :].decode("utf-8")  # split at ASCII: still valid UTF-8
    if not block:
        raise NoteError(E_NOTE, "no signature lines")
    if not block.endswith("\n"):
        raise NoteError(E_NOTE, "note does not end in a newline (trailing garbage?)")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(E_NOTE, f"more than {MAX_SIGNATURES} signature lines")
    signatures = [_parse_signature_line(line) for line in lines]

    known = _index_verifiers(verifiers)
    verified: list[Verifier] = []
    unverified: list[NoteSignature] = []
    for sig in signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            if sig not in unverified:
                unverified.append(sig)
            continue
        if not verifier.verify(body, sig.signature):
            raise NoteError(
                E_SIG, f"signature by {sig.name}+{sig.key_id.hex()} does not verify the text"
            )
        if verifier not in verified:
            verified.append(verifier)
    if not verified:
        raise NoteError(E_NO_TRUSTED_SIG, "no trusted key signed this note")
    return OpenedNote(body, tuple(verified), tuple(unverified))


# Checkpoints


@dataclass(frozen=True)
class Checkpoint:
    """A tlog checkpoint: log origin, tree size, 32-byte Merkle root, extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> bytes:
        """The note text of this checkpoint (see ``format_checkpoint``)."""
        return format_checkpoint(self.origin, self.size, self.root, self.extensions)


def _check_line(value: object, what: str) -> str:
    if not isinstance(value, str) or value == "":
        raise NoteError(E_NOTE, f"checkpoint {what} must be a non-empty string")
    if "\n" in value:
        raise NoteError(E_NOTE, f"checkpoint {what} contains a newline")
    _check_text(value)
    return value


def format_checkpoint(origin: str, size: int, root: bytes, extensions: Sequence[str] = ()) -> bytes:
    """``<origin>\\n<size>\\n<base64 root>\\n`` followed by one line per extension.

    Raises ``NoteError("E_NOTE")`` for an empty origin or extension line, a newline or
    control character in one, a size outside ``0..MAX_TREE_SIZE``, or a root that is not
    32 bytes.
    """
    _check_line(origin, "origin")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_TREE_SIZE:
        raise NoteError(E_NOTE, f"checkpoint size {size!r} is not in 0..2**64-1")
    if not isinstance(root, bytes | bytearray) or len(root) != _ROOT_SIZE:
        raise NoteError(E_NOTE, "checkpoint root must be 32 bytes")
    lines = [origin, str(size), _b64encode(bytes(root))]
    lines.extend(_check_line(ext, "extension line") for ext in extensions)
    return "".join(line + "\n" for line in lines).encode("utf-8")


def parse_checkpoint(body: bytes) -> Checkpoint:
    """Parse a checkpoint note text strictly; raises ``NoteError("E_NOTE", ...)``.

    Requires UTF-8 without control characters other than newline, a final newline, at least
    three lines, a non-empty origin, a size in ASCII decimal without leading zeros (``0``
    alone for the empty tree) not above ``MAX_TREE_SIZE``, a root in canonical base64 of
    exactly 32 bytes, and non-empty extension lines (kept, in order).
    """
    text = _decode_text(body)
    if not text.endswith("\n"):
        raise NoteError(E_NOTE, "checkpoint text must end in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError(E_NOTE, "checkpoint needs origin, size and root lines")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise NoteError(E_NOTE, "empty checkpoint origin")
    if not _DECIMAL.fullmatch(size_text):
        raise NoteError(E_NOTE, f"checkpoint size {size_text!r} is not a canonical decimal")
    size = int(size_text)
    if size > MAX_TREE_SIZE:
        raise NoteError(E_NOTE, "checkpoint size above 2**64-1")
    root = _b64decode(root_text)
    if root is None or len(root) != _ROOT_SIZE:
        raise NoteError(E_NOTE, "checkpoint root is not the canonical base64 of 32 bytes")
    if any(ext == "" for ext in extensions):
        raise NoteError(E_NOTE, "empty extension line in checkpoint")
    return Checkpoint(origin, size, root, tuple(extensions))


def open_checkpoint(note: bytes, verifiers: Sequence[Verifier]) -> tuple[Checkpoint, OpenedNote]:
    """Open a checkpoint note: signatures first (``open_note``), then ``parse_checkpoint``
    of the signed text, as the note specification requires. Raises ``NoteError``."""
    opened = open_note(note, verifiers)
    return parse_checkpoint(opened.body), opened


# Part 4. Export bundles (docs/audit-bundle.md)

BUNDLE_FORMAT = "warden-audit-bundle/1"
MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
INCLUSION = "proofs/inclusion.jsonl"
CONSISTENCY = "proofs/consistency.jsonl"
PRIOR = "--prior"
"""The position named in findings about the checkpoint given with ``--prior``."""

_NOTE_NAME = re.compile(r"checkpoints/(0|[1-9][0-9]*)\.note\Z")
_READ_BLOCK = 1 << 20
# Bodies per chunk (per hand-over to a worker process). A power of two, so that each chunk of
# a clean full export joins the Merkle tree as one perfect subtree (``_grow``).
_CHUNK = 4096
# Below this many bytes of records, starting worker processes costs more than it saves.
_PARALLEL_FROM = 16 << 20


class BundleError(Exception):
    """The bundle or a key cannot be read at all: nothing was verified (exit status 2)."""


@dataclass(frozen=True)
class TrustedCheckpoint:
    """A checkpoint of the bundle (or ``--prior``) that opened with a trusted key."""

    file: str
    size: int
    root: bytes
    keys: tuple[str, ...]
    note: bytes

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "size": self.size,
            "root": self.root.hex(),
            "keys": list(self.keys),
        }


@dataclass
class BundleReport:
    """The outcome of verifying a bundle: what it holds and every finding, in check order."""

    bundle: str
    origin: str | None = None
    kind: str = "full"
    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    checkpoints: list[TrustedCheckpoint] = field(default_factory=list)
    prior: TrustedCheckpoint | None = None
    anchored: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.is_error for f in self.findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.is_error]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if not f.is_error]

    def fail(
        self, code: str, message: str, *, seq: int | None = None, file: str | None = None
    ) -> None:
        self.findings.append(Finding(code, seq, message, file))

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "bundle": self.bundle,
            "origin": self.origin,
            "kind": self.kind,
            "records": self.records,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "anchored": self.anchored,
            "unanchored": max(self.records - self.anchored, 0) if self.kind == "full" else 0,
            "checkpoints": [c.as_dict() for c in self.checkpoints],
            "prior": self.prior.as_dict() if self.prior else None,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [f.as_dict() for f in self.findings],
        }


class _CompactRange:
    """The Merkle root of a growing prefix of leaves, in ``O(log n)`` memory.

    Holds the roots of the perfect subtrees that the prefix decomposes into, largest first
    (RFC 9162's largest-power-of-two split): appending a leaf merges equal-sized subtrees, and
    the root folds them from the right.
    """

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[bytes] = []

    def append(self, leaf: bytes) -> None:
        stack = self._stack
        stack.append(leaf)
        size = self.size
        while size & 1:
            right = stack.pop()
            stack[-1] = _sha256(_NODE_PREFIX + stack[-1] + right).digest()
            size >>= 1
        self.size += 1

    def append_subtree(self, node: bytes, height: int) -> None:
        """Append ``2**height`` leaves at once, given the root of their perfect subtree.

        Only at a size that is a multiple of ``2**height`` (where the leaves, appended one by
        one, would merge into exactly that subtree); ``ValueError`` anywhere else.
        """
        width = 1 << height
        if self.size % width:
            raise ValueError(f"a subtree of {width} leaves cannot start at leaf {self.size}")
        stack = self._stack
        stack.append(node)
        size = self.size >> height
        while size & 1:
            right = stack.pop()
            stack[-1] = _sha256(_NODE_PREFIX + stack[-1] + right).digest()
            size >>= 1
        self.size += width

    def extend(self, leaves: bytes) -> None:
        """Append the leaf hashes concatenated in ``leaves`` (32 bytes each), in order."""
        append = self.append
        for start in range(0, len(leaves), HASH_SIZE):
            append(leaves[start : start + HASH_SIZE])

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        value = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            value = node_hash(left, value)
        return value


def _read_member(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:  # bad CRC, bad deflate
        raise BundleError(f"{name}: cannot be read from the zip: {exc}") from exc


def _anchor(
    report: BundleReport,
    file: str,
    note: bytes,
    verifiers: Sequence[Verifier],
) -> tuple[Checkpoint, TrustedCheckpoint] | None:
    """Open one note, reporting E_NOTE, E_SIG or E_NO_TRUSTED_SIG against ``file``."""
    try:
        checkpoint, opened = open_checkpoint(note, verifiers)
    except NoteError as exc:
        report.fail(exc.code, exc.message, file=file)
        return None
    named = _NOTE_NAME.match(file)
    if named is not None and int(named.group(1)) != checkpoint.size:
        report.fail(
            "E_NOTE", f"the note is for size {checkpoint.size}, not its file name's", file=file
        )
        return None
    trusted = TrustedCheckpoint(
        file, checkpoint.size, checkpoint.root, opened.key_names, bytes(note)
    )
    return checkpoint, trusted


def _of_origin(
    report: BundleReport, anchored: tuple[Checkpoint, TrustedCheckpoint] | None, origin: str | None
) -> TrustedCheckpoint | None:
    """The checkpoint if it is of the log ``origin``; E_ORIGIN otherwise."""
    if anchored is None:
        return None
    checkpoint, trusted = anchored
    if origin is not None and checkpoint.origin != origin:
        report.fail(
            "E_ORIGIN",
            f"checkpoint of log {checkpoint.origin!r}, not {origin!r}",
            file=trusted.file,
        )
        return None
    return trusted


def _record_lines(
    archive: zipfile.ZipFile, digest: Any, report: BundleReport
) -> Iterator[list[bytes]]:
    """``records.jsonl`` in chunks of ``_CHUNK`` bodies (the last may be shorter), read in
    blocks (memory stays flat); the raw bytes also go into ``digest``. A last line without
    its newline is reported (E_PARSE).

    Chunks hold exactly ``_CHUNK`` bodies, whatever the size of a body, so that each one of
    a full export starts at a multiple of ``_CHUNK`` leaves and, ``_CHUNK`` being a power of
    two, fills one perfect subtree of the Merkle tree (``_CompactRange.append_subtree``).
    """
    size = _CHUNK
    pending: list[bytes] = []
    try:
        with archive.open(RECORDS) as stream:
            rest = b""
            while True:
                block = stream.read(_READ_BLOCK)
                if not block:
                    break
                digest.update(block)
                lines = (rest + block).split(b"\n")
                rest = lines.pop()
                pending += lines
                while len(pending) >= size:
                    yield pending[:size]
                    del pending[:size]
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise BundleError(f"{RECORDS}: cannot be read from the zip: {exc}") from exc
    if rest:
        report.fail("E_PARSE", f"{RECORDS} does not end in a newline", file=RECORDS)
        pending.append(rest)
    for start in range(0, len(pending), size):
        yield pending[start : start + size]


def _checked_chunks(
    chunks: Iterator[list[bytes]], workers: int, check: Callable[[list[bytes]], _R]
) -> Iterator[tuple[list[bytes], _R]]:
    """``check`` over each chunk, here or in ``workers`` processes, in order."""
    if workers <= 1:
        for bodies in chunks:
            yield bodies, check(bodies)
        return
    yield from in_parallel(check, ((bodies, bodies) for bodies in chunks), workers)


def _json_lines(report: BundleReport, archive: zipfile.ZipFile, name: str, code: str) -> list[Any]:
    """The JSON objects of a proofs file, one per line; a line that is not one is reported."""
    data = _read_member(archive, name)
    out: list[Any] = []
    lines = data.split(b"\n") if data else []
    if data.endswith(b"\n"):
        lines.pop()
    for number, line in enumerate(lines, 1):
        try:
            item = json.loads(line, parse_constant=_reject_constant)
        except (ValueError, _NotInProfile) as exc:
            report.fail(code, f"line {number} is not JSON: {exc}", file=name)
            out.append(None)
            continue
        out.append(item if isinstance(item, dict) else None)
        if not isinstance(item, dict):
            report.fail(code, f"line {number} is not a JSON object", file=name)
    if data and not data.endswith(b"\n"):
        report.fail(code, "the file does not end in a newline", file=name)
    return out


def _hashes(value: Any) -> list[bytes] | None:
    """A proof given as a list of 64-hex-digit strings, as bytes; None if malformed."""
    if not isinstance(value, list):
        return None
    out = []
    for item in value:
        if not isinstance(item, str) or not _HEX64.match(item):
            return None
        out.append(bytes.fromhex(item))
    return out


def _count(value: Any) -> int | None:
    return value if _is_count(value) else None


def _check_consistency_proofs(
    report: BundleReport,
    archive: zipfile.ZipFile,
    known: dict[int, TrustedCheckpoint],
) -> set[tuple[int, int]]:
    """Verify every line of ``proofs/consistency.jsonl`` between trusted checkpoints; returns
    the ``(from, to)`` pairs proven."""
    proven: set[tuple[int, int]] = set()
    if CONSISTENCY not in archive.NameToInfo:
        return proven
    for number, item in enumerate(_json_lines(report, archive, CONSISTENCY, "E_CONSISTENCY"), 1):
        if item is None:
            continue
        old, new, proof = (
            _count(item.get("from")),
            _count(item.get("to")),
            _hashes(item.get("proof")),
        )
        if old is None or new is None or proof is None or set(item) != {"from", "to", "proof"}:
            report.fail(
                "E_CONSISTENCY", f"line {number}: want from, to and proof", file=CONSISTENCY
            )
            continue
        if old not in known or new not in known:
            missing = old if old not in known else new
            report.fail(
                "E_CONSISTENCY",
                f"line {number}: no trusted checkpoint of size {missing} to prove against",
                file=CONSISTENCY,
            )
            continue
        if not verify_consistency(old, new, known[old].root, known[new].root, proof):
            report.fail(
                "E_CONSISTENCY",
                f"line {number}: the checkpoint of size {new} does not extend that of size {old}",
                file=CONSISTENCY,
            )
            continue
        proven.add((old, new))
    return proven


def _fork_message(first: TrustedCheckpoint, second: TrustedCheckpoint) -> str:
    return (
        f"two different roots for size {first.size}: a forked log.\n"
        f"{first.file}:\n{first.note.decode('utf-8', 'replace')}"
        f"{second.file}:\n{second.note.decode('utf-8', 'replace')}"
    )


def _check_prior(
    report: BundleReport,
    prior: TrustedCheckpoint,
    known: dict[int, TrustedCheckpoint],
    roots: dict[int, bytes],
    proven: set[tuple[int, int]],
) -> None:
    """The bundle must extend the checkpoint the regulator kept (``--prior``)."""
    largest = max(known) if known else -1
    same = known.get(prior.size)
    if same is not None and same.root != prior.root:
        report.fail("E_FORK", _fork_message(prior, same), file=PRIOR)
    elif prior.size > largest and prior.size > report.records:
        report.fail(
            "E_TRUNCATED",
            f"the log had {prior.size} records at the prior checkpoint; this bundle's largest "
            f"checkpoint is of size {max(largest, 0)}",
            file=PRIOR,
        )
    elif prior.size in roots:
        if roots[prior.size] != prior.root:
            report.fail(
                "E_CONSISTENCY",
                f"the first {prior.size} records of this bundle are not the ones the prior "
                "checkpoint signed: the log was rewritten",
                file=PRIOR,
            )
    elif same is None and not any(old == prior.size for old, _ in proven):
        report.fail(
            "E_CONSISTENCY",
            f"the bundle carries no consistency proof from size {prior.size}",
            file=PRIOR,
        )


def verify_bundle(
    path: str | os.PathLike[str] | IO[bytes],
    keys: Sequence[Verifier | str],
    *,
    prior: bytes | None = None,
    origin: str | None = None,
    workers: int = 1,
) -> BundleReport:
    """Verify an export bundle (a path or a binary file) against trusted ``keys``
    (verifiers or key strings).

    ``prior`` is a checkpoint note kept from earlier; ``origin`` pins the log (by default it
    is that of the bundle's largest trusted checkpoint); ``workers`` > 1 checks record bodies
    in that many processes (same findings). Raises ``BundleError`` when the bundle cannot be
    read at all; every other problem is a finding of the report.
    """
    verifiers = [key if isinstance(key, Verifier) else parse_verifier(key) for key in keys]
    if not verifiers:
        raise BundleError("no trusted verification key given")
    shown = os.fspath(path) if isinstance(path, str | os.PathLike) else "<bundle>"
    report = BundleReport(bundle=str(shown))
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"{shown!s}: not a readable zip file: {exc}") from exc
    with archive:
        names = [info.filename for info in archive.infolist()]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise BundleError(f"the zip holds more than one member named {duplicated[0]!r}")
        if RECORDS not in names:
            raise BundleError(f"the bundle has no {RECORDS}")
        _verify_archive(
            report, archive, verifiers, prior_note=prior, origin=origin, workers=workers
        )
    return report


def _trusted_checkpoints(
    report: BundleReport,
    archive: zipfile.ZipFile,
    names: list[str],
    verifiers: Sequence[Verifier],
    origin: str | None,
) -> tuple[dict[int, TrustedCheckpoint], str | None]:
    """Step 1: open every ``checkpoints/*.note``; signatures first, then which log they are
    of. Returns the trusted ones by size, and the origin."""
    opened: list[tuple[Checkpoint, TrustedCheckpoint]] = []
    for name in sorted(n for n in names if n.startswith("checkpoints/")):
        note = _read_member(archive, name)
        if _NOTE_NAME.match(name) is None:
            report.fail("E_NOTE", "not named checkpoints/<size>.note", file=name)
            continue
        anchored = _anchor(report, name, note, verifiers)
        if anchored is not None:
            opened.append(anchored)
    if origin is None and opened:
        origin = max(opened, key=lambda item: item[0].size)[0].origin
    known: dict[int, TrustedCheckpoint] = {}
    for anchored in opened:
        trusted = _of_origin(report, anchored, origin)
        if trusted is not None:
            known[trusted.size] = trusted
    if not known:
        report.fail(
            "E_NO_TRUSTED_SIG",
            "no checkpoint of the bundle is signed by a trusted key: nothing anchors its records",
        )
    report.checkpoints = [known[size] for size in sorted(known)]
    return known, origin


def _anchor_full(
    report: BundleReport, known: dict[int, TrustedCheckpoint], roots: dict[int, bytes]
) -> None:
    """Step 3 of a full export: every checkpoint's root recomputed, nothing cut, the tail."""
    largest = max(known, default=0)
    for size in sorted(known):
        if size in roots and roots[size] != known[size].root:
            report.fail(
                "E_ROOT",
                f"the Merkle root of the first {size} records is not the signed one",
                file=known[size].file,
            )
    if largest > report.records:
        report.fail(
            "E_TRUNCATED",
            f"{report.records} records, but a trusted checkpoint covers {largest}",
            file=known[largest].file,
        )
    report.anchored = min(largest, report.records)
    if report.records > largest:
        report.fail(
            "W_UNANCHORED_TAIL",
            f"{report.records - largest} record(s) after the last checkpoint (size {largest}) "
            "are verified by the chain only",
            seq=largest,
        )


def _verify_archive(
    report: BundleReport,
    archive: zipfile.ZipFile,
    verifiers: Sequence[Verifier],
    *,
    prior_note: bytes | None,
    origin: str | None,
    workers: int,
) -> None:
    names = archive.namelist()
    # 1. Checkpoints, and the one the regulator kept.
    known, origin = _trusted_checkpoints(report, archive, names, verifiers, origin)
    prior = None
    if prior_note is not None:
        prior = _of_origin(report, _anchor(report, PRIOR, prior_note, verifiers), origin)
        report.prior = prior
    largest = max(known, default=0)

    # 2-3. Records: bodies, chain, and the Merkle root at every checkpoint size (full), or an
    # inclusion proof per record (partial).
    partial = INCLUSION in names
    report.kind = "partial" if partial else "full"
    records_digest = hashlib.sha256()
    chunks = _record_lines(archive, records_digest, report)
    if archive.getinfo(RECORDS).file_size < _PARALLEL_FROM:
        workers = 1
    roots: dict[int, bytes] = {}
    if partial:
        chain = _verify_partial(
            report, archive, chunks, known=known, origin=origin, workers=workers
        )
    else:
        wanted = sorted(set(known) | ({prior.size} if prior else set()))
        chain = _verify_full(
            report, chunks, wanted=wanted, roots=roots, origin=origin, workers=workers
        )
    report.records = chain.records
    report.first_seq, report.last_seq = chain.first_seq, chain.last_seq
    report.findings.extend(chain.findings)
    if partial:
        report.anchored = report.records
    else:
        _anchor_full(report, known, roots)

    # 4. Consistency between checkpoints, and with the one the regulator kept.
    proven = _check_consistency_proofs(report, archive, known)
    if partial:
        for size in sorted(known)[:-1]:
            if (size, largest) not in proven:
                report.fail(
                    "E_CONSISTENCY",
                    f"no consistency proof from size {size} to the latest checkpoint {largest}",
                    file=known[size].file,
                )
    if prior is not None:
        _check_prior(report, prior, known, roots, proven)
    if partial:
        report.fail(
            "W_PARTIAL",
            "a filtered export: each record is proven to be in the log, but records of the "
            "log may be missing from it; only a full export proves completeness",
        )

    # 5. The manifest (unsigned) must describe this bundle.
    digests = {
        name: hashlib.sha256(_read_member(archive, name)).hexdigest()
        for name in names
        if name not in (MANIFEST, RECORDS)
    }
    digests[RECORDS] = records_digest.hexdigest()
    _check_manifest(report, archive, names, digests, largest)


def _verify_full(
    report: BundleReport,
    chunks: Iterator[list[bytes]],
    *,
    wanted: list[int],
    roots: dict[int, bytes],
    origin: str | None,
    workers: int,
) -> ChainReport:
    """Every record from seq 0, chained, and the tree root at each ``wanted`` size.

    A chunk that is a clean run (``summarise_bodies``) and follows on from the records
    before it is taken whole, in constant time for the chain and in one step for the tree
    (``_grow``); any other chunk goes through ``ChainVerifier.accept`` body by body, so the
    findings are the same either way.
    """
    chain: ChainVerifier | None = ChainVerifier(origin) if origin is not None else None
    tree = _CompactRange()
    pending = iter(wanted)
    next_size = next(pending, None)
    while next_size == 0:
        roots[0] = EMPTY_ROOT
        next_size = next(pending, None)
    summarise = functools.partial(summarise_bodies, origin=origin)
    for bodies, result in _checked_chunks(chunks, workers, summarise):
        if chain is None:  # no trusted checkpoint: take the log of the first record
            if isinstance(result, CleanRun):
                chain = ChainVerifier(result.log)
            else:
                fields = result[0][1] if result else None
                chain = ChainVerifier(fields[3] if fields else "")
            report.origin = chain.origin
        if isinstance(result, CleanRun) and chain.accept_run(result):
            next_size = _grow(tree, result, next_size, pending, roots)
            continue
        # Not clean, or clean but not following on from the records before: body by body.
        checked = check_bodies(bodies) if isinstance(result, CleanRun) else result
        accept, append = chain.accept, tree.append
        for item in checked:
            accept(item)
            append(bytes.fromhex(item[0]))
            if tree.size == next_size:
                roots[next_size] = tree.root()
                next_size = next(pending, None)
        del bodies
    if report.origin is None:
        report.origin = origin
    return (chain or ChainVerifier(origin or "")).finish()


def _grow(
    tree: _CompactRange,
    run: CleanRun,
    next_size: int | None,
    pending: Iterator[int],
    roots: dict[int, bytes],
) -> int | None:
    """Append a clean run's leaves to the tree, noting the root at each wanted size reached
    (``next_size``, then those of ``pending``); returns the next wanted size.

    The run's subtree root stands for all of its leaves when they fill a perfect subtree at
    an aligned place and no wanted size falls strictly inside the run; otherwise the leaves
    go in one by one, up to each wanted size in turn.
    """
    start, end = tree.size, tree.size + run.records
    inside = next_size is not None and start < next_size < end
    if run.subtree is not None and start % run.records == 0 and not inside:
        tree.append_subtree(run.subtree, run.records.bit_length() - 1)
        if tree.size == next_size:
            roots[next_size] = tree.root()
            next_size = next(pending, None)
        return next_size
    while tree.size < end:
        stop = next_size if next_size is not None and tree.size < next_size < end else end
        tree.extend(run.leaves[(tree.size - start) * HASH_SIZE : (stop - start) * HASH_SIZE])
        if tree.size == next_size:
            roots[next_size] = tree.root()
            next_size = next(pending, None)
    return next_size


def _verify_partial(
    report: BundleReport,
    archive: zipfile.ZipFile,
    chunks: Iterator[list[bytes]],
    *,
    known: dict[int, TrustedCheckpoint],
    origin: str | None,
    workers: int,
) -> ChainReport:
    """Records of a filtered export: each body, order, links where seqs touch, and an
    inclusion proof per record against a trusted checkpoint."""
    report.origin = origin
    chain = ChainVerifier(origin or "", contiguous=False)
    proofs = iter(_json_lines(report, archive, INCLUSION, "E_ROOT"))
    position = 0
    for _bodies, checked in _checked_chunks(chunks, workers, check_bodies):
        for item in checked:
            leaf_hex, fields, _ = item
            chain.accept(item)
            seq = fields[0] if fields else None
            line = next(proofs, None)
            position += 1
            problem = _inclusion_problem(line, seq, bytes.fromhex(leaf_hex), known)
            if problem:
                report.fail("E_ROOT", f"record {position} of {RECORDS}: {problem}", seq=seq)
    extra = sum(1 for _ in proofs)
    if extra:
        report.fail("E_ROOT", f"{extra} inclusion proof(s) for no record", file=INCLUSION)
    return chain.finish()


def _inclusion_problem(
    line: Any, seq: int | None, leaf: bytes, known: dict[int, TrustedCheckpoint]
) -> str | None:
    if line is None:
        return "no inclusion proof"
    claimed, size, proof = (
        _count(line.get("seq")),
        _count(line.get("size")),
        _hashes(line.get("proof")),
    )
    if claimed is None or size is None or proof is None or set(line) != {"seq", "size", "proof"}:
        return "malformed inclusion proof (want seq, size and proof)"
    if seq is None or claimed != seq:
        return f"the inclusion proof is for seq {claimed}"
    anchor = known.get(size)
    if anchor is None:
        return f"no trusted checkpoint of size {size} to prove against"
    if not verify_inclusion(leaf, seq, size, proof, anchor.root):
        return f"not in the tree of the checkpoint of size {size}"
    return None


def _check_manifest(
    report: BundleReport,
    archive: zipfile.ZipFile,
    names: list[str],
    digests: dict[str, str],
    largest: int,
) -> None:
    def fail(message: str) -> None:
        report.fail("E_MANIFEST", message, file=MANIFEST)

    for name in names:
        known_file = name in (MANIFEST, RECORDS, INCLUSION, CONSISTENCY) or name.startswith(
            "checkpoints/"
        )
        if not known_file:
            fail(f"unexpected file {name!r} in the bundle")
    if MANIFEST not in names:
        fail("the bundle has no manifest.json")
        return
    try:
        manifest = json.loads(_read_member(archive, MANIFEST), parse_constant=_reject_constant)
    except (ValueError, _NotInProfile) as exc:
        fail(f"not JSON: {exc}")
        return
    if not isinstance(manifest, dict):
        fail("not a JSON object")
        return
    if manifest.get("format") != BUNDLE_FORMAT:
        fail(f"format {manifest.get('format')!r}, this verifier reads {BUNDLE_FORMAT!r}")
        return
    files = manifest.get("files")
    if not isinstance(files, dict):
        fail("no files table")
    else:
        for name, digest in sorted(digests.items()):
            if name not in files:
                fail(f"{name} is not listed")
            elif files[name] != digest:
                fail(f"the SHA-256 of {name} is not the one listed")
        for name in sorted(set(files) - set(digests)):
            fail(f"{name} is listed but not in the bundle")
    if report.origin is not None and manifest.get("origin") != report.origin:
        fail(f"origin {manifest.get('origin')!r}, the checkpoints say {report.origin!r}")
    if manifest.get("kind") != report.kind:
        fail(f"kind {manifest.get('kind')!r}, but the bundle is {report.kind}")
    counts = manifest.get("counts")
    if not isinstance(counts, dict) or counts.get("records") != report.records:
        fail(f"the record count is not {report.records}")
    latest = manifest.get("checkpoint")
    if report.checkpoints and (not isinstance(latest, dict) or latest.get("size") != largest):
        fail(f"the latest checkpoint is not of size {largest}")


# Command line


def read_keys(values: Sequence[str]) -> list[Verifier]:
    """Each ``--key`` is a verification key string, or a file of them (one per line)."""
    keys: list[Verifier] = []
    for value in values:
        lines = [value]
        if "+" not in value or os.path.isfile(value):
            try:
                with open(value, encoding="utf-8") as handle:
                    lines = [line.strip() for line in handle if line.strip()]
            except OSError as exc:
                raise BundleError(
                    f"--key {value}: not a key and not a readable file: {exc}"
                ) from exc
        for line in lines:
            try:
                keys.append(parse_verifier(line))
            except KeyFormatError as exc:
                raise BundleError(f"--key: {exc}") from exc
    return keys


def _summary(report: BundleReport) -> str:
    out = [f"Warden audit bundle {report.bundle}"]
    verdict = "OK" if report.ok else f"FAILED ({len(report.errors)} error(s))"
    kind = (
        "full: every record from seq 0 (completeness proven)"
        if report.kind == "full"
        else "partial: filtered records, each proven to be in the log (completeness not proven)"
    )
    span = f" (seq {report.first_seq}..{report.last_seq})" if report.first_seq is not None else ""
    out.append(f"  result       {verdict}")
    out.append(f"  log          {report.origin}")
    out.append(f"  kind         {kind}")
    out.append(f"  records      {report.records}{span}")
    if report.checkpoints:
        latest = report.checkpoints[-1]
        out.append(
            f"  checkpoints  {len(report.checkpoints)} trusted; latest size {latest.size}, root "
            f"{latest.root.hex()}, signed by {', '.join(latest.keys)}"
        )
    else:
        out.append("  checkpoints  none trusted")
    if report.prior is not None:
        out.append(f"  prior        size {report.prior.size}, root {report.prior.root.hex()}")
    for finding in report.findings:
        where = f"seq {finding.seq}" if finding.seq is not None else finding.file or "bundle"
        out.append(f"  {finding.code:<17} {where}: {finding.message}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m audit.verifier",
        description="Verify a Warden audit export bundle offline (exit 0 only when no E_* error).",
    )
    parser.add_argument("bundle", help="the export bundle (.zip)")
    parser.add_argument(
        "--key",
        action="append",
        required=True,
        metavar="VKEY",
        help="a trusted verification key <name>+<key id>+<base64>, or a file of them one per "
        "line; repeat during a key rotation",
    )
    parser.add_argument(
        "--prior", metavar="NOTE", help="a checkpoint note kept from an earlier export or fetch"
    )
    parser.add_argument(
        "--origin", help="the log the bundle must be of (default: its checkpoints')"
    )
    parser.add_argument("--json", action="store_true", help="print a machine-readable report")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes checking record bodies (default: one per CPU for large bundles)",
    )
    args = parser.parse_args(argv)
    workers = args.workers if args.workers > 0 else (os.cpu_count() or 1)
    try:
        keys = read_keys(args.key)
        prior = None
        if args.prior is not None:
            try:
                with open(args.prior, "rb") as handle:
                    prior = handle.read()
            except OSError as exc:
                raise BundleError(f"--prior: {exc}") from exc
        report = verify_bundle(args.bundle, keys, prior=prior, origin=args.origin, workers=workers)
    except BundleError as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc)}))
        else:
            print(f"cannot verify: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        print(_summary(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Verify Warden audit records: canonical form, sequence, hash chain and time order.

This module imports only the standard library so that it can be copied as a single file and
run by a regulator who trusts nothing of Warden's but its records. The in-service command
``manage.py audit_verify`` runs the same checks over the database.

Codes (AUDIT_SPEC.md section 7): E_PARSE, E_NONCANONICAL, E_VERSION, E_ORIGIN, E_SEQ_GAP,
E_SEQ_DUP, E_PREV, E_TS_REGRESSION, E_ESIG; the in-service check adds E_LEAF (a stored leaf
column that disagrees with its body) and E_TRUNCATED (fewer records than the log head says).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

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
_T = TypeVar("_T")


@dataclass(frozen=True)
class Finding:
    """One failed check: its code, the seq it concerns (None for the log as a whole), why."""

    code: str
    seq: int | None
    message: str

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
            "findings": [asdict(f) for f in self.findings],
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
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
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


def parse_record(body: bytes) -> dict[str, Any]:
    """Parse one body and check it is canonical; raise ``ValueError`` with code and reason."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("E_PARSE", f"not UTF-8: {exc.reason}") from exc
    try:
        record = _DECODER.decode(text)
    except _NotInProfile as exc:
        raise ValueError("E_NONCANONICAL", str(exc)) from exc
    except ValueError as exc:
        raise ValueError("E_PARSE", f"not JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise ValueError("E_PARSE", "a record must be a JSON object")
    try:
        canonical = canonical_dumps(record)
    except UnicodeEncodeError as exc:  # an escaped lone surrogate, e.g. "\ud800"
        raise ValueError("E_NONCANONICAL", "lone surrogate in a string") from exc
    if canonical != body:
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


def check_in_parallel(
    chunks: Iterable[tuple[_T, list[bytes]]], workers: int
) -> Iterator[tuple[_T, list[Checked]]]:
    """``check_bodies`` over ``(tag, bodies)`` chunks in ``workers`` processes, in order.

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
        pending: deque[tuple[_T, Future[list[Checked]]]] = deque()
        for tag, bodies in chunks:
            pending.append((tag, pool.submit(check_bodies, bodies)))
            if len(pending) > 2 * workers:
                done_tag, done = pending.popleft()
                yield done_tag, done.result()
        while pending:
            done_tag, done = pending.popleft()
            yield done_tag, done.result()


class ChainVerifier:
    """Feed bodies in log order; collects every finding, re-synchronising after each one."""

    def __init__(self, origin: str, *, start_seq: int = 0, start_prev: str = GENESIS_PREV) -> None:
        self.origin = origin
        self.report = ChainReport()
        self._expected_seq = start_seq
        self._prev = start_prev
        self._last_ts = ""

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
            assert error is not None
            self._fail(error[0], expected if position is None else position, error[1])
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
        if seq > expected:
            missing = f"{expected}" if seq == expected + 1 else f"{expected}..{seq - 1}"
            self._fail("E_SEQ_GAP", expected, f"seq {missing} missing before {seq}")
        elif seq < expected:
            self._fail("E_SEQ_DUP", seq, f"seq {seq} appears again after {expected - 1}")
        if prev != self._prev:
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

    def finish(self) -> ChainReport:
        return self.report


def verify_bodies(origin: str, bodies: Iterable[bytes]) -> ChainReport:
    """Verify a complete log (starting at seq 0) given its bodies in order."""
    verifier = ChainVerifier(origin)
    for body in bodies:
        verifier.feed(body)
    return verifier.finish()

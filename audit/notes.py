"""C2SP signed notes (c2sp.org/signed-note) with Ed25519, and tlog checkpoints on top of them.

Self-contained on purpose: this module imports only the standard library and
``cryptography``, so that it can be vendored into the single-file offline verifier
(AUDIT_SPEC.md section 7) unchanged.

Formats (AUDIT_SPEC.md section 5; byte-compatible with ``golang.org/x/mod/sumdb/note``):

- note: ``<text>\\n<signature line>+`` where the text ends in a newline, and a signature line
  is ``— <key name> <base64(4-byte key id || 64-byte Ed25519 signature)>\\n`` (U+2014 em dash,
  space). The text is everything before the *last* blank line; the signatures cover the text
  bytes exactly, final newline included.
- key id: ``SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]``.
- verifier key: ``<name>+<8 hex digits of key id>+<base64(0x01 || public key)>``.
- signer key: ``PRIVATE+KEY+<name>+<8 hex digits of key id>+<base64(0x01 || 32-byte seed)>``.
- checkpoint text (c2sp.org/tlog-checkpoint): ``<origin>\\n<size>\\n<base64(root)>\\n`` then
  optional non-empty extension lines.

Contracts:

- ``open_note`` raises ``NoteError`` with ``code`` exactly one of ``E_NOTE`` (malformed),
  ``E_SIG`` (a signature by a known key does not verify) or ``E_NO_TRUSTED_SIG`` (no known
  key signed). Every structural check happens before any signature is checked, so a
  malformed note is always ``E_NOTE``. Signature lines from unknown keys (name and key id not
  both matching a known key) are ignored, as the note specification requires.
- ``parse_checkpoint`` and ``format_checkpoint`` raise ``NoteError("E_NOTE", ...)``.
- Key strings that do not parse raise ``KeyFormatError`` (a ``ValueError``).
- This is deliberately stricter than the Go reference in three ways, all of which only
  reject notes no honest signer produces: base64 must be canonical (so a note's bytes
  cannot be changed without changing what it decodes to), every control character except
  newline is refused (U+0000-U+001F, U+007F-U+009F; the specification forbids those below
  U+0020), and *every* signature line from a known key must verify, not only the first.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "MAX_TREE_SIZE",
    "Checkpoint",
    "KeyFormatError",
    "NoteError",
    "NoteSignature",
    "OpenedNote",
    "Signer",
    "Verifier",
    "format_checkpoint",
    "generate_signer",
    "is_valid_key_name",
    "key_id",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint",
    "parse_signer",
    "parse_verifier",
    "sign_checkpoint",
    "sign_note",
]

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


# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
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


@dataclass(frozen=True)
class Signer:
    """An Ed25519 note signing key. Its ``repr`` never shows the private key."""

    name: str
    key_id: bytes
    _key: Ed25519PrivateKey = field(repr=False, compare=False)

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Signer:
        """The signer of ``name`` for a raw 32-byte Ed25519 seed (private key)."""
        if not is_valid_key_name(name):
            raise KeyFormatError(f"invalid key name {name!r}")
        if not isinstance(seed, bytes) or len(seed) != _PUBLIC_KEY_SIZE:
            raise KeyFormatError("an Ed25519 seed is 32 bytes")
        key = Ed25519PrivateKey.from_private_bytes(seed)
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return cls(name, key_id(name, public), key)

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def verifier(self) -> Verifier:
        """The matching verifier (public half)."""
        return Verifier.from_public_key(self.name, self.public_key)

    def key_string(self) -> str:
        """``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>``: a secret, store it as one."""
        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        encoded = _b64encode(bytes([ALG_ED25519]) + seed)
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{encoded}"

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message`` (deterministic, RFC 8032)."""
        return self._key.sign(message)


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


def parse_signer(key: str) -> Signer:
    """Parse ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>``.

    Raises ``KeyFormatError`` (never echoing the key) for a malformed string, an algorithm
    other than Ed25519, a seed of the wrong size, or a key id that does not match.
    """
    if not isinstance(key, str):
        raise KeyFormatError("a signer key is a string")
    parts = key.split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise KeyFormatError("malformed signer key: want PRIVATE+KEY+<name>+<hex id>+<base64>")
    _, _, name, hex_id, encoded = parts
    claimed, seed = _parse_key_material(name, hex_id, encoded, "signer key")
    signer = Signer.from_seed(name, seed)
    if signer.key_id != claimed:
        raise KeyFormatError("signer key: key id does not match the name and key")
    return signer


def generate_signer(name: str) -> tuple[str, str]:
    """A fresh Ed25519 key for ``name``: ``(signer key string, verifier key string)``."""
    if not is_valid_key_name(name):
        raise KeyFormatError(f"invalid key name {name!r}")
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    signer = Signer.from_seed(name, seed)
    return signer.key_string(), signer.verifier().key_string()


# ---------------------------------------------------------------------------------------------
# Notes


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


def _check_body(body: bytes) -> str:
    text = _decode_text(body)
    if not text:
        raise NoteError(E_NOTE, "empty note text")
    if not text.endswith("\n"):
        raise NoteError(E_NOTE, "note text must end in a newline")
    return text


def sign_note(body: bytes, signers: Sequence[Signer]) -> bytes:
    """The signed note: ``body``, a blank line, one signature line per signer (in order).

    ``body`` must be non-empty UTF-8 ending in a newline, without control characters other
    than newline (``NoteError("E_NOTE")`` otherwise). Raises ``ValueError`` for no signers,
    more than ``MAX_SIGNATURES``, or two signers with the same name and key id. Ed25519 is
    deterministic, so signing the same body with the same keys gives identical bytes.
    """
    _check_body(body)
    if not signers:
        raise ValueError("a note needs at least one signer")
    if len(signers) > MAX_SIGNATURES:
        raise ValueError(f"more than {MAX_SIGNATURES} signers")
    body = bytes(body)
    seen: set[tuple[str, bytes]] = set()
    lines: list[str] = []
    for signer in signers:
        ident = (signer.name, signer.key_id)
        if ident in seen:
            raise ValueError(f"signer {signer.name}+{signer.key_id.hex()} given twice")
        seen.add(ident)
        encoded = _b64encode(signer.key_id + signer.sign(body))
        lines.append(f"{_SIG_PREFIX}{signer.name} {encoded}\n")
    return body + b"\n" + "".join(lines).encode("utf-8")


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


# ---------------------------------------------------------------------------------------------
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


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[Signer]) -> bytes:
    """The signed note of ``checkpoint`` (``sign_note(checkpoint.body(), signers)``)."""
    return sign_note(checkpoint.body(), signers)


def open_checkpoint(note: bytes, verifiers: Sequence[Verifier]) -> tuple[Checkpoint, OpenedNote]:
    """Open a checkpoint note: signatures first (``open_note``), then ``parse_checkpoint``
    of the signed text, as the note specification requires. Raises ``NoteError``."""
    opened = open_note(note, verifiers)
    return parse_checkpoint(opened.body), opened

"""C2SP signed notes (c2sp.org/signed-note) with Ed25519, and tlog checkpoints on top of them.

Opening notes and checkpoints (parsing, key strings, signature checks) lives in
``audit.verifier``, the single file a regulator runs offline (AUDIT_SPEC.md section 7), and is
re-exported here so that the log and the verifier share one implementation; this module adds
the signing side.

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

from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from audit.verifier import (
    _PUBLIC_KEY_SIZE,
    _SIG_PREFIX,
    ALG_ED25519,
    E_NOTE,
    MAX_SIGNATURES,
    MAX_TREE_SIZE,
    Checkpoint,
    KeyFormatError,
    NoteError,
    NoteSignature,
    OpenedNote,
    Verifier,
    _b64encode,
    _decode_text,
    _parse_key_material,
    format_checkpoint,
    is_valid_key_name,
    key_id,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    parse_verifier,
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


# Signing keys


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


# Signing notes


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


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[Signer]) -> bytes:
    """The signed note of ``checkpoint`` (``sign_note(checkpoint.body(), signers)``)."""
    return sign_note(checkpoint.body(), signers)

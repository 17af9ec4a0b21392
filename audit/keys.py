"""The checkpoint signing keys (files outside the database) and the trusted verification keys.

Settings (AUDIT_SPEC.md section 5):

- ``AUDIT_SIGNING_KEY_FILE``: paths of files that each hold one signer key string of
  ``audit.notes`` (``PRIVATE+KEY+<name>+<hex id>+<base64>``); a comma-separated list in the
  environment. Every configured key signs every note, which is how a rotation's overlap
  period works. A file readable or writable by its group or by others is refused. Only the
  checkpointer needs them.
- ``AUDIT_SIGNING_KEY_AUTOGENERATE``: dev and test only; a missing key file is generated on
  first use (name ``AUDIT_KEY_NAME``). Production never generates a key.
- ``AUDIT_VERIFICATION_KEYS``: verifier key strings (``<name>+<hex id>+<base64>``), all that
  web processes need. Retired keys stay here so the notes they signed keep verifying.
- ``AUDIT_KEY_NAME``: the name given to generated keys; default the host part of
  ``AUDIT_LOG_ORIGIN``.

The trusted keys are the configured verification keys plus the public half of every
configured signing key.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from audit.notes import (
    KeyFormatError,
    Signer,
    Verifier,
    generate_signer,
    is_valid_key_name,
    parse_signer,
    parse_verifier,
)

logger = logging.getLogger(__name__)

_SECRET_MODE = 0o600
# Group and other may hold no permission at all on a key file.
_FORBIDDEN_BITS = stat.S_IRWXG | stat.S_IRWXO


class KeyConfigurationError(ImproperlyConfigured):
    """A signing or verification key is missing, unreadable, exposed or malformed."""


def default_key_name() -> str:
    """``AUDIT_KEY_NAME``, else the host part of ``AUDIT_LOG_ORIGIN``."""
    configured = getattr(settings, "AUDIT_KEY_NAME", None)
    if configured:
        return str(configured)
    return str(settings.AUDIT_LOG_ORIGIN).split("/", 1)[0]


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    """A setting given as a list, or as one comma-separated string."""
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else value
    return [str(item).strip() for item in items if str(item).strip()]


def signing_key_paths() -> list[Path]:
    """The configured signing key files, in signing order."""
    return [Path(item) for item in _as_list(getattr(settings, "AUDIT_SIGNING_KEY_FILE", None))]


def write_signer_file(path: Path, signer_key: str) -> None:
    """Create ``path`` with mode 0600 holding ``signer_key``; never overwrites a file.

    Raises ``FileExistsError`` when the file exists.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _SECRET_MODE)
    try:
        os.fchmod(fd, _SECRET_MODE)  # whatever the umask
        os.write(fd, (signer_key + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def generate_key_file(path: Path, name: str) -> str:
    """Generate a key named ``name`` into a new 0600 file; returns its verifier key string."""
    if not is_valid_key_name(name):
        raise KeyConfigurationError(f"invalid key name {name!r} (no spaces, no '+')")
    signer_key, verifier_key = generate_signer(name)
    write_signer_file(path, signer_key)
    return verifier_key


def read_signer_file(path: Path) -> Signer:
    """Load the signer key held in ``path``; refuses a file other users may read.

    Raises ``KeyConfigurationError`` (never quoting the key) when the file is missing, is
    not a regular file, grants any permission to its group or others, or does not hold
    exactly one well-formed signer key.
    """
    try:
        # Symbolic links are followed (Kubernetes mounts secrets through them); the mode
        # checked is the target's.
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise KeyConfigurationError(f"signing key file {path}: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyConfigurationError(f"signing key file {path} is not a regular file")
        if info.st_mode & _FORBIDDEN_BITS:
            raise KeyConfigurationError(
                f"signing key file {path} has mode {stat.S_IMODE(info.st_mode):04o}: it must be "
                f"readable by its owner only (chmod 600 {path})"
            )
        raw = os.read(fd, 4096)
    finally:
        os.close(fd)
    try:
        return parse_signer(raw.decode("ascii").strip())
    except (UnicodeDecodeError, KeyFormatError) as exc:
        reason = exc if isinstance(exc, KeyFormatError) else "not ASCII"
        raise KeyConfigurationError(f"signing key file {path}: {reason}") from None


def _load_or_generate(path: Path) -> Signer:
    if getattr(settings, "AUDIT_SIGNING_KEY_AUTOGENERATE", False) and not path.exists():
        try:
            verifier_key = generate_key_file(path, default_key_name())
        except FileExistsError:
            pass  # another process generated it first: use theirs
        else:
            logger.warning("generated a development signing key %s (%s)", path, verifier_key)
    return read_signer_file(path)


def signers() -> list[Signer]:
    """Every configured signing key, loaded now (a rotation takes effect without a restart).

    Raises ``KeyConfigurationError`` when none is configured or one cannot be loaded.
    """
    paths = signing_key_paths()
    if not paths:
        raise KeyConfigurationError(
            "no checkpoint signing key: set AUDIT_SIGNING_KEY_FILE on the checkpointer"
        )
    loaded = [_load_or_generate(path) for path in paths]
    seen: set[tuple[str, bytes]] = set()
    unique: list[Signer] = []
    for signer in loaded:
        if (signer.name, signer.key_id) not in seen:
            seen.add((signer.name, signer.key_id))
            unique.append(signer)
    return unique


def configured_verifiers() -> list[Verifier]:
    """``AUDIT_VERIFICATION_KEYS``, parsed; ``KeyConfigurationError`` for a malformed one."""
    verifiers = []
    for key in _as_list(getattr(settings, "AUDIT_VERIFICATION_KEYS", None)):
        try:
            verifiers.append(parse_verifier(key))
        except KeyFormatError as exc:
            raise KeyConfigurationError(f"AUDIT_VERIFICATION_KEYS: {exc}") from exc
    return verifiers


def trusted_verifiers(extra: Iterable[Signer] = ()) -> list[Verifier]:
    """The keys whose signatures Warden trusts: the configured verification keys, the public
    half of each configured signing key (if any is configured), and of ``extra`` signers."""
    found = configured_verifiers()
    own = signers() if signing_key_paths() else []
    found.extend(signer.verifier() for signer in [*own, *extra])
    unique: dict[tuple[str, bytes], Verifier] = {}
    for verifier in found:
        other = unique.get((verifier.name, verifier.key_id))
        if other is not None and other.public_key != verifier.public_key:
            raise KeyConfigurationError(
                f"two different keys are named {verifier.name}+{verifier.key_id_hex}"
            )
        unique.setdefault((verifier.name, verifier.key_id), verifier)
    return list(unique.values())


def verification_key_lines() -> list[str]:
    """The verifier key strings to publish, one per trusted key, in a stable order."""
    return [verifier.key_string() for verifier in trusted_verifiers()]

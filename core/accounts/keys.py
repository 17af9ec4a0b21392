"""Making and checking API keys: ``wdn_<prefix>_<secret>``, stored as SHA-256 of the whole."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "wdn"


def hash_key(key: str) -> str:
    """The stored form of a key. Keys are 32 random bytes, so a fast hash is enough."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> tuple[str, str, str]:
    """A fresh key: ``(key, prefix, hashed_key)``; the key itself is never stored."""
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    return key, prefix, hash_key(key)

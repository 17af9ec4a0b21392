"""Webhook secrets: generated here, encrypted at rest, and the signature they make.

The encryption key is derived (HKDF-SHA256) from ``WEBHOOK_SECRET_KEY`` when set, else from
``SECRET_KEY``. ``WEBHOOK_SECRET_KEY`` may list several keys separated by commas: the first
encrypts, all decrypt (rotate by putting the new key first, then re-saving secrets).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
SIGNATURE_VERSION = "v1"


def _derive(material: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"warden/webhook-secrets/v1"
    ).derive(material.encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(key))


def _fernet() -> MultiFernet:
    configured = getattr(settings, "WEBHOOK_SECRET_KEY", None) or ""
    materials = [item.strip() for item in configured.split(",") if item.strip()]
    return MultiFernet([_derive(m) for m in materials or [settings.SECRET_KEY]])


def generate_secret() -> str:
    """A new signing secret: ``whsec_`` and 32 random bytes, URL-safe base64."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def encrypt_secret(secret: str) -> str:
    return _fernet().encrypt(secret.encode("utf-8")).decode("ascii")


def decrypt_secret(token: str) -> str:
    return _fernet().decrypt(token.encode("ascii")).decode("utf-8")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``, the value of
    ``Warden-Webhook-Signature``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"

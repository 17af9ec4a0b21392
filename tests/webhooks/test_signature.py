"""The signature and the encryption of secrets at rest."""

from __future__ import annotations

import pytest
from cryptography.fernet import InvalidToken
from django.test import override_settings

from governance.webhooks import crypto

pytestmark = pytest.mark.database_free

# Computed independently: printf '%s' '1700000000.{"id":"evt_1","type":"signoff.signed"}' |
#   openssl dgst -sha256 -hmac 'whsec_test-vector-secret'
VECTOR_SECRET = "whsec_test-vector-secret"
VECTOR_TIMESTAMP = 1700000000
VECTOR_BODY = b'{"id":"evt_1","type":"signoff.signed"}'
VECTOR_SIGNATURE = "v1=7e003f405bcdc4ad54eb94686641064fa2c50b8625c892d954dd363cdb2d168a"


def test_signature_matches_the_fixed_vector():
    assert crypto.signature(VECTOR_SECRET, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_signature_changes_with_timestamp_body_and_secret():
    base = crypto.signature(VECTOR_SECRET, VECTOR_TIMESTAMP, VECTOR_BODY)
    assert crypto.signature(VECTOR_SECRET, VECTOR_TIMESTAMP + 1, VECTOR_BODY) != base
    assert crypto.signature(VECTOR_SECRET, VECTOR_TIMESTAMP, VECTOR_BODY + b" ") != base
    assert crypto.signature(VECTOR_SECRET + "x", VECTOR_TIMESTAMP, VECTOR_BODY) != base


def test_generated_secrets_are_long_random_and_prefixed():
    first, second = crypto.generate_secret(), crypto.generate_secret()
    assert first.startswith("whsec_") and len(first) >= 40
    assert first != second


def test_secrets_are_encrypted_at_rest_and_decrypt():
    token = crypto.encrypt_secret(VECTOR_SECRET)
    assert VECTOR_SECRET not in token
    assert crypto.decrypt_secret(token) == VECTOR_SECRET


def test_the_encryption_key_comes_from_webhook_secret_key_when_set():
    with override_settings(WEBHOOK_SECRET_KEY="a-dedicated-webhook-key"):
        token = crypto.encrypt_secret(VECTOR_SECRET)
    with override_settings(WEBHOOK_SECRET_KEY=None), pytest.raises(InvalidToken):
        crypto.decrypt_secret(token)
    # A rotated key list still decrypts what the old key encrypted.
    with override_settings(WEBHOOK_SECRET_KEY="a-new-key,a-dedicated-webhook-key"):
        assert crypto.decrypt_secret(token) == VECTOR_SECRET

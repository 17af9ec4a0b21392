"""The test suite's settings: fast hashing, no throttling surprises, a test log origin, and a
checkpoint signing key and export directory per test session in a temporary directory."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from governance.settings.base import *  # noqa: F403
from governance.settings.base import CELERY_BROKER_TRANSPORT_OPTIONS
from governance.settings.env import envlist, envstr

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AUDIT_LOG_ORIGIN = "warden.test/test"
# No test meets the API's rate limit unless it sets one (a key's own rate_limit).
API_KEY_RATE_LIMIT_PER_MINUTE = 100_000
API_USER_RATE_LIMIT_PER_MINUTE = 100_000

# Created on first use only; removed when the session's process exits.
_SESSION_DIR = Path(tempfile.gettempdir()) / f"warden-test-{os.getpid()}"
atexit.register(shutil.rmtree, _SESSION_DIR, ignore_errors=True)
AUDIT_SIGNING_KEY_FILE = envlist(
    "AUDIT_SIGNING_KEY_FILE", [str(_SESSION_DIR / "audit-signing.key")]
)
AUDIT_SIGNING_KEY_AUTOGENERATE = True
AUDIT_CHECKPOINT_PUBLISH_DIR = envstr("AUDIT_CHECKPOINT_PUBLISH_DIR") or str(
    _SESSION_DIR / "checkpoints"
)
AUDIT_EXPORT_DIR = envstr("AUDIT_EXPORT_DIR") or str(_SESSION_DIR / "exports")
# The test receivers listen on 127.0.0.1.
WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
REPORTS_UPLOAD_DIR = envstr("REPORTS_UPLOAD_DIR") or str(_SESSION_DIR / "report-inputs")
REPORTS_DIR = envstr("REPORTS_DIR") or str(_SESSION_DIR / "reports")
# The worker tests give their Celery workers and producers a key prefix of their own (kombu's
# global_keyprefix on every broker key): test processes that share one Redis server, parallel
# xdist workers among them, never take each other's messages.
_broker_keyprefix = envstr("WARDEN_TEST_BROKER_KEYPREFIX")
if _broker_keyprefix:
    _prefixed: dict[str, Any] = {
        **CELERY_BROKER_TRANSPORT_OPTIONS,
        "global_keyprefix": _broker_keyprefix,
    }
    CELERY_BROKER_TRANSPORT_OPTIONS = _prefixed

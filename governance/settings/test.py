"""The test suite's settings: fast hashing, no throttling surprises, a test log origin."""

from governance.settings.base import *  # noqa: F403
from governance.settings.base import REST_FRAMEWORK

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AUDIT_LOG_ORIGIN = "warden.test/test"
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"user": "100000/min"}}

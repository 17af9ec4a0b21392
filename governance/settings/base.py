"""Settings shared by every environment; dev, test and prod only override.

Everything that differs between installations comes from environment variables read with the
strict helpers of ``governance.settings.env``.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dj_database_url

from governance.settings.env import envbool, envint, envlist, envstr

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(envstr("WARDEN_VAR_DIR") or BASE_DIR / "var")

SECRET_KEY = envstr("SECRET_KEY") or "dev-only-insecure-key-never-used-in-prod"
DEBUG = False
ALLOWED_HOSTS: list[str] = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "core.accounts",
    "audit",
    "registry",
    "governance.accounts",
    "governance.approvals",
    "governance.reports",
    "governance.webhooks",
    "governance.workspace",
    "governance",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outside every other middleware, so that what they refuse carries the request id and,
    # under /api/, the JSON error format.
    "core.middleware.RequestIdMiddleware",
    "core.middleware.ApiErrorMiddleware",
    "csp.middleware.CSPMiddleware",
    "core.headers.PermissionsPolicyMiddleware",
    # Django's own four, except for a bearer-key API request: it needs no session, CSRF check,
    # session user or messages (core.middleware.is_bearer_api_request).
    "core.middleware.BrowserSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "core.middleware.BrowserCsrfViewMiddleware",
    "core.middleware.BrowserAuthenticationMiddleware",
    "core.middleware.BrowserMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Django's security.W003 looks for its CSRF middleware by name, not for the subclass above;
# warden.W001 and W002 (governance/checks.py) ask the same of any CsrfViewMiddleware.
SILENCED_SYSTEM_CHECKS = ["security.W003"]

# Security headers. Content-Security-Policy (django-csp): every script and style is a file
# served by Warden itself (the Swagger UI's start-up script too, see governance/urls.py), so
# nothing inline is allowed; data: images are the admin's and Swagger UI's icons. Django's
# SecurityMiddleware adds X-Content-Type-Options, Referrer-Policy and
# Cross-Origin-Opener-Policy; PermissionsPolicyMiddleware switches off unused browser features.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "camera",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
}

ROOT_URLCONF = "governance.urls"
WSGI_APPLICATION = "governance.wsgi.application"
ASGI_APPLICATION = "governance.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Services open their own durable transactions (AUDIT_SPEC section 4); no request-wide one.
ATOMIC_REQUESTS = False


def sqlite_database(path: Path | str) -> dict[str, Any]:
    """A SQLite database that serialises writers (BEGIN IMMEDIATE) as the audit log needs."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
        },
        "TEST": {"NAME": envstr("WARDEN_TEST_SQLITE") or None},
    }


# Query parameters of a database URL that are Django connection settings (``?conn_max_age=60``),
# not options of the driver; every other parameter goes to ``OPTIONS``.
def _url_flag(value: Any) -> bool:
    return str(value).lower() == "true"


def _url_seconds(value: Any) -> int | None:
    """``none`` keeps a connection for good (Django's ``CONN_MAX_AGE = None``)."""
    return None if str(value).lower() == "none" else int(value)


_CONNECTION_SETTINGS: dict[str, Callable[[Any], Any]] = {
    "conn_max_age": _url_seconds,
    "conn_health_checks": _url_flag,
    "atomic_requests": _url_flag,
    "autocommit": _url_flag,
    "disable_server_side_cursors": _url_flag,
}


def database_from_url(
    url: str, *, conn_max_age: int | None = 0, conn_health_checks: bool = False
) -> dict[str, Any]:
    """Parse a database URL (``postgres://USER:PASSWORD@HOST:PORT/NAME?OPTION=VALUE``,
    ``sqlite:///PATH``); SQLite URLs get the audit log's locking options. ``conn_max_age``
    (seconds a connection is kept across requests; 0 closes it after each one, ``None``
    keeps it for good) and ``conn_health_checks`` are the defaults; the URL's own
    ``?conn_max_age=`` and ``?conn_health_checks=`` win over them."""
    config: dict[str, Any] = dict(
        dj_database_url.parse(url, conn_max_age=conn_max_age, conn_health_checks=conn_health_checks)
    )
    if url.startswith("sqlite:"):
        return sqlite_database(config["NAME"])
    options: dict[str, Any] = dict(config.get("OPTIONS") or {})
    for name, cast in _CONNECTION_SETTINGS.items():
        if name in options:
            config[name.upper()] = cast(options.pop(name))
    config["OPTIONS"] = options
    return config


_database_url = envstr("DATABASE_URL")
DATABASES = {
    "default": database_from_url(_database_url)
    if _database_url
    else sqlite_database(VAR_DIR / "warden.sqlite3")
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # Django's ModelBackend behind the login throttle (governance/accounts/throttling.py).
    "governance.accounts.throttling.ThrottledModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The approval pages' own login (the admin keeps its login page).
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
# The longest life of a person's API token, in days (service accounts' keys may have none).
API_TOKEN_MAX_AGE_DAYS = envint("API_TOKEN_MAX_AGE_DAYS", 90)
GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = VAR_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Request bodies larger than this are refused before parsing (uploads have their own limit).
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("WARDEN_MAX_REQUEST_BYTES", 2 * 1024 * 1024)
# Django's, but a file spooled to FILE_UPLOAD_TEMP_DIR is removed at once when the disk fills.
FILE_UPLOAD_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "core.uploads.TemporaryFileUploadHandler",
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.WardenJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "core.schema.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "core.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["governance.accounts.throttling.FixedWindowRateThrottle"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# The API's rate limit, in requests a minute counted in fixed windows on the shared cache: per
# API key (a key's own rate_limit overrides the default), per signed-in user, and per client
# address for anonymous callers.
API_KEY_RATE_LIMIT_PER_MINUTE = envint("API_KEY_RATE_LIMIT_PER_MINUTE", 1200)
API_USER_RATE_LIMIT_PER_MINUTE = envint("API_USER_RATE_LIMIT_PER_MINUTE", 6000)
if min(API_KEY_RATE_LIMIT_PER_MINUTE, API_USER_RATE_LIMIT_PER_MINUTE) < 1:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("API rate limits are at least 1 request a minute")

SPECTACULAR_SETTINGS = {
    "TITLE": "Warden API",
    "DESCRIPTION": (
        "Model registry, tamper-evident audit log and deployment gate. Authenticate with "
        "`Authorization: Bearer <key>` (service accounts and personal tokens) or a session."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several enums share the field name "status"; name them after their choices.
    "ENUM_NAME_OVERRIDES": {
        "ReportKindEnum": "governance.reports.models.ReportKind",
        "ReportStatusEnum": "governance.reports.models.ReportStatus",
        "LifecycleStatusEnum": "registry.models.ModelStatus",
        "VersionStatusEnum": "registry.models.VersionStatus",
        "WebhookEventEnum": "governance.webhooks.models.WebhookEvent",
        "WebhookDeliveryStatusEnum": "governance.webhooks.models.DeliveryStatus",
        # A model's risk tier and a finding's severity share these four levels.
        "RiskLevelEnum": "registry.models.RiskTier",
    },
}


def cache_from_url(url: str) -> dict[str, Any]:
    """The shared cache (login and API throttling state) on Redis; short timeouts, because
    the throttles fall back to per-process counters rather than wait for it."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"CACHE_URL must be a redis:// URL, not {url!r}")
    return {
        "BACKEND": "core.cache.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": "warden",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }


# Throttling state is shared by every process through the cache: Redis when CACHE_URL (or
# REDIS_URL) is set, else this process's memory (dev and test).
_cache_url = envstr("CACHE_URL") or envstr("REDIS_URL")
CACHES = {
    "default": cache_from_url(_cache_url)
    if _cache_url
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
# Proxies whose X-Forwarded-For names the client: addresses or networks (CIDR), comma-separated.
# None by default: REMOTE_ADDR is the client.
WARDEN_TRUSTED_PROXIES: list[str] = envlist("WARDEN_TRUSTED_PROXIES", [])

# Celery: without a broker, tasks run in-process (dev); prod requires CELERY_BROKER_URL.
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
# Publishing a task connects once more at most, at once: a web request never waits on the
# broker's reconnection loop (seconds by default). A message not sent is resent by its sweep
# (``core.tasks``); the worker's own reconnection is set apart (broker_connection_*).
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}

# The audit log (AUDIT_SPEC.md).
AUDIT_LOG_ORIGIN = envstr("AUDIT_LOG_ORIGIN") or "warden.localhost/dev"
# IP addresses and user agents in records are personal data: off unless enabled.
AUDIT_RECORD_CLIENT_INFO = envbool("AUDIT_RECORD_CLIENT_INFO", False)

# Signed checkpoints (AUDIT_SPEC.md section 5). The signing keys are files outside the database
# (mode 0600, comma-separated paths: during a rotation notes carry every key's signature),
# needed only by the checkpointer; web processes need only the verification keys. Only dev
# and test generate a missing key file; production never does.
AUDIT_SIGNING_KEY_FILE: list[str] = envlist("AUDIT_SIGNING_KEY_FILE", [])
AUDIT_SIGNING_KEY_AUTOGENERATE = False
# Verifier key strings (<name>+<hex id>+<base64>), comma-separated; keep retired keys here so
# that the notes they signed still verify.
AUDIT_VERIFICATION_KEYS: list[str] = envlist("AUDIT_VERIFICATION_KEYS", [])
# Name of generated keys; default: the host part of AUDIT_LOG_ORIGIN.
AUDIT_KEY_NAME = envstr("AUDIT_KEY_NAME")
# The checkpointer's own copy of every note it signed, outside the database.
AUDIT_CHECKPOINT_PUBLISH_DIR = envstr("AUDIT_CHECKPOINT_PUBLISH_DIR") or str(
    VAR_DIR / "checkpoints"
)
# Cadence: sign when the last checkpoint is this old, or this many records behind.
AUDIT_CHECKPOINT_INTERVAL_SECONDS = envint("AUDIT_CHECKPOINT_INTERVAL_SECONDS", 60)
AUDIT_CHECKPOINT_EVERY_RECORDS = envint("AUDIT_CHECKPOINT_EVERY_RECORDS", 1000)
# The checkpointer re-checks only new records; this re-checks the whole log (and records it).
AUDIT_FULL_VERIFY_INTERVAL_SECONDS = envint("AUDIT_FULL_VERIFY_INTERVAL_SECONDS", 3600)
# Export bundles (AUDIT_SPEC.md section 6) requested through the API: written by the
# checkpointer's worker, downloaded through the web processes, so a directory both see (the
# media volume in docker-compose.yml). The bundles hold the whole log: keep it private.
AUDIT_EXPORT_DIR = envstr("AUDIT_EXPORT_DIR") or str(MEDIA_ROOT / "audit-exports")
# Records read from the database per query while a bundle is written (memory stays flat).
AUDIT_EXPORT_CHUNK_RECORDS = envint("AUDIT_EXPORT_CHUNK_RECORDS", 5000)
# Checkpoint signing runs on its own queue, served by the one worker that holds the key;
# exports sign a checkpoint first, so they run there too.
CELERY_TASK_ROUTES = {
    "audit.tasks.checkpoint_if_due": {"queue": "checkpoints"},
    "audit.tasks.export_bundle": {"queue": "checkpoints"},
    "audit.tasks.requeue_exports": {"queue": "checkpoints"},
    "governance.reports.tasks.run_report": {"queue": "reports"},
    "governance.reports.tasks.requeue_expired": {"queue": "reports"},
    # A package signs a checkpoint first: it runs where the signing key is.
    "governance.reports.tasks.run_package": {"queue": "checkpoints"},
}
CELERY_BEAT_SCHEDULE = {
    "audit-checkpoint-if-due": {"task": "audit.tasks.checkpoint_if_due", "schedule": 10.0},
    "audit-verify-full": {
        "task": "audit.tasks.verify_full",
        "schedule": float(AUDIT_FULL_VERIFY_INTERVAL_SECONDS),
    },
    "audit-requeue-exports": {"task": "audit.tasks.requeue_exports", "schedule": 60.0},
    "webhooks-sweep": {"task": "governance.webhooks.tasks.sweep", "schedule": 30.0},
    "approvals-expire-due-requests": {
        "task": "governance.approvals.tasks.expire_due_requests",
        "schedule": 300.0,
    },
    "approvals-flag-overdue-retrospectives": {
        "task": "governance.approvals.tasks.flag_overdue_retrospectives",
        "schedule": 300.0,
    },
    "reports-requeue-expired": {
        "task": "governance.reports.tasks.requeue_expired",
        "schedule": 60.0,
    },
}

# Reports (METRICS_SPEC.md): uploaded inputs and rendered PDFs live in directories every web
# process and report worker shares (the media volume in docker-compose.yml).
REPORTS_UPLOAD_DIR = envstr("REPORTS_UPLOAD_DIR") or str(MEDIA_ROOT / "report-inputs")
REPORTS_DIR = envstr("REPORTS_DIR") or str(MEDIA_ROOT / "reports")
# The largest upload a report request may carry (all its files together).
REPORTS_MAX_UPLOAD_BYTES = envint("REPORTS_MAX_UPLOAD_BYTES", 200 * 1024 * 1024)
# Registered dataset versions are read from their source_uri only inside these directories.
REPORTS_DATASET_ROOTS: list[str] = envlist("REPORTS_DATASET_ROOTS", [])
# A report job holds its lease this long past each heartbeat; a job silent for longer is
# taken over by another worker (requeued by the beat entry above).
REPORTS_LEASE_SECONDS = envint("REPORTS_LEASE_SECONDS", 300)

# Webhooks (docs/webhooks.md). Secrets are encrypted with a key derived from WEBHOOK_SECRET_KEY
# (comma-separated: the first encrypts, all decrypt), else from SECRET_KEY.
WEBHOOK_SECRET_KEY = envstr("WEBHOOK_SECRET_KEY")
# Targets on private, loopback or reserved addresses are refused unless their host name, address
# or network (CIDR) is listed here; listed hosts may also use plain http.
WEBHOOK_ALLOWED_HOSTS: list[str] = envlist("WEBHOOK_ALLOWED_HOSTS", [])
WEBHOOK_REQUIRE_HTTPS = envbool("WEBHOOK_REQUIRE_HTTPS", False)
WEBHOOK_TIMEOUT_SECONDS = envint("WEBHOOK_TIMEOUT_SECONDS", 10)
# Seconds before each retry after a failed attempt (the first attempt is immediate).
WEBHOOK_RETRY_DELAYS = [
    int(s) for s in envlist("WEBHOOK_RETRY_DELAYS", ["10", "30", "120", "600", "1800", "7200"])
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("WARDEN_LOG_LEVEL") or "INFO"},
    # WeasyPrint narrates every rendering step at INFO; the report command keeps stderr for
    # bad input, and workers' logs for what matters.
    "loggers": {"weasyprint": {"level": "WARNING"}},
}

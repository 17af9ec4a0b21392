"""Production: refuses to start without its secrets; `check --deploy` is clean."""

from governance.settings.base import *  # noqa: F403
from governance.settings.base import MIDDLEWARE, cache_from_url, database_from_url
from governance.settings.env import envbool, envint, envlist, envstr, require

DEBUG = False
# Static files straight from gunicorn, compressed and with hashed names.
MIDDLEWARE = [MIDDLEWARE[0], "whitenoise.middleware.WhiteNoiseMiddleware", *MIDDLEWARE[1:]]
SECRET_KEY = require("SECRET_KEY")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", [])
if not ALLOWED_HOSTS:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DJANGO_ENV=prod")

_database_url = require("DATABASE_URL")
if not _database_url.startswith(("postgres://", "postgresql://", "pgsql://")):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("DATABASE_URL must name a PostgreSQL database in production")
# Persistent connections: each gunicorn thread (gunicorn.conf.py: workers x threads per web
# container) and each Celery process keeps its own connection for DATABASE_CONN_MAX_AGE
# seconds instead of opening one per request, and checks it with one `SELECT 1` before its
# first query in a request, so that a connection the server or a proxy dropped is replaced
# instead of failing the request. The URL's ?conn_max_age= and ?conn_health_checks= win.
DATABASES = {
    "default": database_from_url(
        _database_url,
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", 600),
        conn_health_checks=True,
    ),
    # The role that owns the tables runs migrations; the application role cannot alter them.
    # Closed after each use: web processes keep no connection as the owner.
    "migrations": database_from_url(require("MIGRATION_DATABASE_URL")),
}
CELERY_BROKER_URL = require("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = False
# Every web process must see the same throttling state: CACHE_URL, else the Redis broker.
_cache_url = envstr("CACHE_URL") or envstr("REDIS_URL")
if not _cache_url and CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    _cache_url = CELERY_BROKER_URL
if not _cache_url:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("CACHE_URL must be set when DJANGO_ENV=prod (a redis:// URL)")
CACHES = {"default": cache_from_url(_cache_url)}
AUDIT_LOG_ORIGIN = require("AUDIT_LOG_ORIGIN")
# Never generated here: the checkpointer is given AUDIT_SIGNING_KEY_FILE (0600), web processes
# only AUDIT_VERIFICATION_KEYS (see base).
AUDIT_SIGNING_KEY_AUTOGENERATE = False
# Webhooks only over https, except to hosts listed in WEBHOOK_ALLOWED_HOSTS.
WEBHOOK_REQUIRE_HTTPS = True

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# No script reads either cookie (forms and the API docs page carry the token in the page).
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

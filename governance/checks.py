"""Deployment checks (``manage.py check --deploy``): configurations that would start and serve
but are unsafe in production fail with an error.

- ``warden.E001``: ``ALLOWED_HOSTS`` contains ``*`` (any Host header is accepted, so links
  built from it, such as password reset and webhook URLs, can be pointed elsewhere).
- ``warden.E002``: ``AUDIT_VERIFICATION_KEYS`` is empty or malformed (nobody can be told
  which keys verify the log's checkpoints; ``/api/v1/audit/public-key`` answers 503).
- ``warden.E003``: the application connects as the migration role (the role that owns the
  tables could alter or drop the audit log's append-only triggers).
- ``warden.E004``: the application connects as a PostgreSQL superuser (which bypasses every
  grant and can switch the triggers off). ``E005`` when the server cannot be asked.
- ``warden.W001``, ``warden.W002``: Django's ``security.W003`` and ``security.W016`` for the
  CSRF middleware Warden installs. Django's check looks for its own class by name and would
  skip the cookie rule for a subclass; Warden's ``BrowserCsrfViewMiddleware`` is that class
  for every request but a bearer-key API call (no cookie, nothing to forge), so W003 is
  silenced in the settings and these two ask the same of any ``CsrfViewMiddleware``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import connections
from django.db.utils import DatabaseError
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.module_loading import import_string


@register(Tags.security, deploy=True)
def check_allowed_hosts(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``ALLOWED_HOSTS`` names the hosts Warden answers for; a wildcard is refused."""
    if "*" not in settings.ALLOWED_HOSTS:
        return []
    return [
        Error(
            "ALLOWED_HOSTS contains '*': any Host header is accepted",
            hint="list the host names Warden is served under",
            id="warden.E001",
        )
    ]


@register(Tags.security, deploy=True)
def check_verification_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """At least one well-formed ``AUDIT_VERIFICATION_KEYS`` entry is configured."""
    from audit.keys import KeyConfigurationError, configured_verifiers

    try:
        configured = configured_verifiers()
    except KeyConfigurationError as exc:
        return [Error(str(exc), id="warden.E002")]
    if configured:
        return []
    return [
        Error(
            "AUDIT_VERIFICATION_KEYS is not set: the log's checkpoints cannot be verified and "
            "/api/v1/audit/public-key has nothing to publish",
            hint="set it to the verification key line that `manage.py audit_keygen` printed",
            id="warden.E002",
        )
    ]


def _role(database: Mapping[str, Any]) -> tuple[str, str, str]:
    """The server and role a connection logs in as (defaults as libpq applies them)."""
    return (
        str(database.get("HOST") or "localhost"),
        str(database.get("PORT") or "5432"),
        str(database.get("USER") or ""),
    )


@register(Tags.security, deploy=True)
def check_migration_role(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The application's database role is not the migration role (``MIGRATION_DATABASE_URL``,
    the ``migrations`` database); installations without one are not checked."""
    databases = settings.DATABASES
    if "migrations" not in databases:
        return []
    application, migration = _role(databases["default"]), _role(databases["migrations"])
    if application != migration:
        return []
    return [
        Error(
            f"DATABASE_URL connects as the migration role {application[2]!r} "
            "(MIGRATION_DATABASE_URL): the application could alter the tables and drop the "
            "audit log's append-only triggers",
            hint="give the application a role of its own with DML rights only",
            id="warden.E003",
        )
    ]


@register(Tags.security, Tags.database, deploy=True)
def check_database_role_not_superuser(
    app_configs: Any = None, databases: Iterable[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """The application's PostgreSQL role (``current_user`` of the default database, or of
    each ``--database``) is not a superuser. Asks the server even without ``--database``:
    a deploy check that cannot tell fails (``warden.E005``)."""
    errors: list[CheckMessage] = []
    for alias in databases or ["default"]:
        connection = connections[alias]
        if connection.vendor != "postgresql":
            continue  # production refuses any other database
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
                )
                row = cursor.fetchone()
        except DatabaseError as exc:
            errors.append(
                Error(
                    f"cannot ask database '{alias}' whether its role is a superuser: {exc}",
                    hint="run the deploy checks where the database is reachable",
                    id="warden.E005",
                )
            )
            continue
        if row is not None and row[1]:
            errors.append(
                Error(
                    f"database '{alias}' connects as the superuser {row[0]!r}: it bypasses "
                    "every grant and can switch off the audit log's append-only triggers",
                    hint="connect as a role with DML rights only (NOSUPERUSER)",
                    id="warden.E004",
                )
            )
    return errors


@register(Tags.security, deploy=True)
def check_csrf_protection(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A ``CsrfViewMiddleware`` (Django's or a subclass) is installed, with a secure cookie."""
    installed = False
    for path in settings.MIDDLEWARE:
        try:
            found = import_string(path)
        except ImportError:
            continue
        installed = installed or (isinstance(found, type) and issubclass(found, CsrfViewMiddleware))
    if not installed:
        return [
            Warning(
                "no CSRF middleware (django.middleware.csrf.CsrfViewMiddleware or a subclass)",
                hint="keep core.middleware.BrowserCsrfViewMiddleware in MIDDLEWARE",
                id="warden.W001",
            )
        ]
    if not settings.CSRF_COOKIE_SECURE:
        return [
            Warning(
                "CSRF_COOKIE_SECURE is not True: the CSRF cookie can travel over plain HTTP",
                id="warden.W002",
            )
        ]
    return []

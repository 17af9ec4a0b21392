"""System checks: the append-only triggers must exist wherever the audit tables do."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Tags, register
from django.db import connections
from django.db.utils import DatabaseError

from audit import triggers


@register(Tags.database)
def check_append_only_triggers(databases: Any = None, **kwargs: Any) -> list[Error]:
    """Report audit tables whose append-only triggers are missing (run with ``--database``)."""
    errors: list[Error] = []
    for alias in databases or []:
        connection = connections[alias]
        try:
            tables = set(connection.introspection.table_names())
        except DatabaseError:
            continue
        if not set(triggers.APPEND_ONLY_TABLES) <= tables:
            continue  # not migrated yet
        gaps = triggers.missing(connection)
        if gaps:
            errors.append(
                Error(
                    f"append-only triggers missing on database '{alias}': {', '.join(gaps)}",
                    hint="run `python manage.py migrate`; the audit migrations install them",
                    id="audit.E001",
                )
            )
    return errors

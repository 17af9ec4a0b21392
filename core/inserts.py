"""Inserting rows with a statement written once per model, database and row count.

For the hot path (the gate records a check on every call): the ORM builds an insert anew each
time, which costs more than running it. Values are prepared by each field as the ORM would
(``pre_save``, ``get_db_prep_save``), and the instance ends up as saved, with its key.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.db import connection, models


@cache
def _statement(model: type[models.Model], vendor: str, rows: int) -> tuple[str, list[Any]]:
    quote = connection.ops.quote_name
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    pk = model._meta.pk
    assert pk is not None
    row = f"({', '.join(['%s'] * len(fields))})"
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES {', '.join([row] * rows)} RETURNING {quote(pk.column)}"
    )
    return sql, fields


def insert(*instances: models.Model) -> None:
    """Insert ``instances`` (new rows of one model with an automatic key) in one statement,
    leaving them saved with their keys. No signals are sent: for rows no receiver watches."""
    if not instances:
        return
    model = type(instances[0])
    sql, fields = _statement(model, connection.vendor, len(instances))
    values = [
        f.get_db_prep_save(f.pre_save(instance, True), connection)
        for instance in instances
        for f in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        keys = [row[0] for row in cursor.fetchall()]
    for instance, key in zip(instances, keys, strict=True):
        instance.pk = key
        instance._state.adding = False
        instance._state.db = connection.alias

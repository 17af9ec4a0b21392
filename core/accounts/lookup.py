"""The one read of every bearer-key request: the key by its hash, with its user.

Written out once per database rather than built by the ORM at each request (building that
query cost more than running it); the values go through the same converters the ORM applies,
so the instances are the ORM's.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from django.db import connection

from core.accounts.models import ApiKey, User

# For one column: its attribute name, its column expression and the converters of its value.
Plan = list[tuple[str, Any, list[Callable[..., Any]]]]


def _plan(fields: list[Any]) -> Plan:
    plan = []
    for field in fields:
        column = field.get_col(field.model._meta.db_table)
        converters = [
            *connection.ops.get_db_converters(column),
            *column.get_db_converters(connection),
        ]
        plan.append((field.attname, column, converters))
    return plan


@cache
def _statement(vendor: str) -> tuple[str, Plan, Plan]:
    """(SQL, the key's columns, the user's columns) for this database."""
    quote = connection.ops.quote_name
    key_fields = list(ApiKey._meta.concrete_fields)
    user_fields = list(User._meta.concrete_fields)
    columns = [f"k.{quote(f.column)}" for f in key_fields]
    columns += [f"u.{quote(f.column)}" for f in user_fields]
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(ApiKey._meta.db_table)} k "  # noqa: S608
        f"JOIN {quote(User._meta.db_table)} u ON u.{quote(User._meta.pk.column)} = k."
        f"{quote(ApiKey._meta.get_field('user').column)} WHERE k.{quote('hashed_key')} = %s"
    )
    return sql, _plan(key_fields), _plan(user_fields)


def _built(model: Any, plan: Plan, values: tuple[Any, ...]) -> Any:
    converted = []
    for (_, column, converters), value in zip(plan, values, strict=True):
        for convert in converters:
            value = convert(value, column, connection)  # noqa: PLW2901
        converted.append(value)
    return model.from_db(connection.alias, [name for name, _, _ in plan], converted)


def api_key_with_user(hashed_key: str) -> ApiKey | None:
    """The key stored as ``hashed_key`` with its user loaded, or None: one statement."""
    sql, key_plan, user_plan = _statement(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [hashed_key])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(key_plan)
    key: ApiKey = _built(ApiKey, key_plan, row[:split])
    key.user = _built(User, user_plan, row[split:])
    return key

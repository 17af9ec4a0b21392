"""Shared set-up for the benchmarks: a PostgreSQL database of their own, migrated."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

SHOWN = ("server_version", "fsync", "synchronous_commit", "wal_sync_method")


def recreate_database(url: str, *, drop_only: bool = False) -> None:
    """Drop the database named by ``url`` (forcing out connections) and create it afresh."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def prepare(default_url: str) -> tuple[str, dict[str, str]]:
    """Point Django at a fresh database (``DATABASE_URL`` or ``default_url``), set it up and
    migrate; returns the URL and the server settings every write figure is printed beside."""
    url = os.environ.get("DATABASE_URL") or default_url
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings.test")
    recreate_database(url)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    shown: dict[str, str] = {}
    with connection.cursor() as cursor:
        for name in SHOWN:
            cursor.execute(f"SHOW {name}")
            shown[name] = cursor.fetchone()[0]
    return url, shown

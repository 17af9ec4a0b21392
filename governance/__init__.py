"""Warden: governance and audit compliance for machine-learning models.

The Celery application is created when Django starts (``GovernanceConfig.ready``), so that
every task a web or worker process sends or runs is bound to it, and ``celery -A governance``
finds it as ``governance.celery.app``; importing this package alone (as the ``report``
command's file-only path does) loads no Celery. ``governance.celery_app`` is that app.
"""

from __future__ import annotations

from typing import Any

__all__ = ["celery_app"]


def __getattr__(name: str) -> Any:
    if name == "celery_app":
        from governance.celery import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

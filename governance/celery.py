"""Celery application. Without a broker (dev) tasks run in-process, eagerly."""

import os

from celery import Celery

os.environ.setdefault(
    "DJANGO_SETTINGS_MODULE", f"governance.settings.{os.environ.get('DJANGO_ENV', 'dev')}"
)

app = Celery("warden")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

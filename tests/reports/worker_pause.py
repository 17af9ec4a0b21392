"""A stop for the worker-loss test, imported into a Celery worker with ``--include``: when
``WARDEN_TEST_PAUSE_AT`` names a progress point, the job announces the pause in the upload
directory (``paused-<pid>``) once it has recorded that point, and blocks until the process is
killed. Nothing of it is in the product: it joins ``governance.reports.jobs.progress_hooks``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from django.conf import settings

from governance.reports import jobs
from governance.reports.models import Report

PAUSE_AT = int(os.environ.get("WARDEN_TEST_PAUSE_AT") or 0)


def pause_at_progress(report: Report, progress: int) -> None:
    """Stop this worker for good at ``PAUSE_AT`` %, after its progress (and lease) are on
    record, so the test can kill it mid-report."""
    if not PAUSE_AT or progress != PAUSE_AT:
        return
    marker = Path(settings.REPORTS_UPLOAD_DIR) / f"paused-{os.getpid()}"
    marker.write_text("paused\n")
    while True:
        time.sleep(3600)


if pause_at_progress not in jobs.progress_hooks:
    jobs.progress_hooks.append(pause_at_progress)

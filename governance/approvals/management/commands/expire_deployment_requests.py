"""``manage.py expire_deployment_requests``: expire the approvals whose time has passed."""

from typing import Any

from django.core.management.base import BaseCommand

from governance.approvals.services import deployment_requests_expire_due


class Command(BaseCommand):
    help = (
        "Expire every approved deployment request past its expiry (each recorded as "
        "deployment_request.expired); Celery beat runs the same every 5 minutes."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        count = deployment_requests_expire_due()
        self.stdout.write(f"expired {count} deployment request(s)")

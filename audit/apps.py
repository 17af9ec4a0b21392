from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The audit log app; registers the system check that reports missing triggers."""

    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from audit import checks  # noqa: F401  (registers the checks)
        from audit.models import change_refused
        from audit.services import on_change_refused

        change_refused.connect(on_change_refused, dispatch_uid="record_refused_changes")

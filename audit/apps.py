from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The audit log app; registers the system check that reports missing triggers."""

    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from audit import checks  # noqa: F401  (registers the checks)

from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    """The project package: shared templates, the deployment checks of the settings, and the
    Celery application (created here, so that shared tasks bind to it in every process that
    starts Django)."""

    name = "governance"
    verbose_name = "Governance"

    def ready(self) -> None:
        import governance.celery  # noqa: F401  (creates the Celery app)
        from governance import checks  # noqa: F401  (registers the checks)

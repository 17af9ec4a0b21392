from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    """The project package: shared templates, and the deployment checks of the settings."""

    name = "governance"
    verbose_name = "Governance"

    def ready(self) -> None:
        from governance import checks  # noqa: F401  (registers the checks)

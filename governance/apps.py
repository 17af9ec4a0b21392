from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    """The project package: shared templates and the sign-off workflow to come."""

    name = "governance"
    verbose_name = "Governance"

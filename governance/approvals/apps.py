from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    """Environments, sign-off policies, deployment requests, sign-offs, the gate and the
    deployments timeline."""

    name = "governance.approvals"
    label = "approvals"
    verbose_name = "Deployments and sign-off"

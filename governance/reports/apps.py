from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """Drift and fairness evidence (METRICS_SPEC.md): the computation engine and the
    ``report`` command; report models, jobs and PDFs build on it."""

    name = "governance.reports"
    label = "reports"
    verbose_name = "Reports"

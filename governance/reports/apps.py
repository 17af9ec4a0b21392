from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """Drift and fairness evidence (METRICS_SPEC.md): the engine, the ``report`` command,
    report jobs and PDFs; done reports are indexed as the evidence sign-off asks for
    (``governance.reports.evidence``)."""

    name = "governance.reports"
    label = "reports"
    verbose_name = "Reports"

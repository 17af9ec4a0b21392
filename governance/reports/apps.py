from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """Drift and fairness evidence (METRICS_SPEC.md): the engine, the ``report`` command,
    report jobs and PDFs; registers the evidence providers sign-off asks for."""

    name = "governance.reports"
    label = "reports"
    verbose_name = "Reports"

    def ready(self) -> None:
        from governance.approvals.evidence import register_provider
        from governance.reports.evidence import drift_evidence, fairness_evidence

        register_provider("fairness", fairness_evidence)
        register_provider("drift", drift_evidence)

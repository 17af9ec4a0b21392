"""Index the fairness and drift reports already done as evidence (``EvidenceEntry``), by the
rules of ``governance.reports.evidence`` as they stand at this migration."""

from django.db import migrations

EVALUATION_ROLES = ("validation", "test")


def index_done_reports(apps, schema_editor):
    Report = apps.get_model("reports", "Report")
    EvidenceEntry = apps.get_model("approvals", "EvidenceEntry")
    done = Report.objects.filter(
        kind__in=("fairness", "drift"),
        status="done",
        model_version__isnull=False,
        finished_at__isnull=False,
    ).prefetch_related("inputs", "model_version__dataset_usages")
    entries = []
    for report in done:
        inputs = {item.role: item.dataset_version_id for item in report.inputs.all()}
        usages = list(report.model_version.dataset_usages.all())
        if report.kind == "fairness":
            allowed = {u.dataset_version_id for u in usages if u.role in EVALUATION_ROLES}
            on_registered = inputs.get("evaluation") in allowed
            covers = [str(name) for name in report.parameters.get("sensitive") or []]
        else:
            on_registered = inputs.get("reference") in {u.dataset_version_id for u in usages}
            covers = None
        entries.append(
            EvidenceEntry(
                report_id=str(report.pk),
                model_version_id=report.model_version_id,
                kind=report.kind,
                sha256=report.pdf_sha256,
                computed_at=report.finished_at,
                passed=report.verdict == "pass",
                eligible=not report.thresholds_overridden and on_registered,
                thresholds=dict(report.thresholds or {}),
                covers=covers,
            )
        )
    EvidenceEntry.objects.bulk_create(entries, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0003_report_error_code"),
        ("approvals", "0006_evidence_entries"),
    ]

    operations = [migrations.RunPython(index_done_reports, migrations.RunPython.noop)]

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Webhook subscriptions and their signed deliveries of the sign-off domain's events."""

    name = "governance.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from audit.alerts import alert_raised
        from core.events import domain_event
        from governance.approvals.decision import register_fact
        from governance.webhooks.events import ACTIVE_FACT, on_alert, on_domain_event
        from governance.webhooks.models import WebhookSubscription

        domain_event.connect(on_domain_event, dispatch_uid="webhooks.on_domain_event")
        alert_raised.connect(on_alert, dispatch_uid="webhooks.on_alert")
        # A denied gate check nobody subscribes to costs the gate no query of its own.
        register_fact(ACTIVE_FACT, WebhookSubscription.objects.filter(active=True))

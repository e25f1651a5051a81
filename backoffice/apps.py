from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    name = "backoffice"

    def ready(self) -> None:
        from backoffice.prometheus.billing import BillingCollector
        from backoffice.prometheus.events import WebhooksCollector
        from backoffice.prometheus.fairness import FairnessCollector
        from core.prometheus import collector_register

        collector_register(BillingCollector())
        collector_register(WebhooksCollector())
        collector_register(FairnessCollector())

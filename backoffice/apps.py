from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    name = "backoffice"

    def ready(self) -> None:
        from backoffice.prometheus.billing import BillingCollector
        from core.prometheus import collector_register

        collector_register(BillingCollector())

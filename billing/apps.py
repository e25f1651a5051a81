from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from billing.prometheus import BillingCollector
        from core.prometheus import collector_register

        collector_register(BillingCollector())

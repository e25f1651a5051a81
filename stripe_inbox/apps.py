from django.apps import AppConfig


class StripeInboxConfig(AppConfig):
    name = "stripe_inbox"
    verbose_name = "Stripe inbox"

    def ready(self) -> None:
        # The back office's figures of the inbox and of tenant deliveries, registered where the inbox's were.
        from backoffice.prometheus.events import WebhooksCollector
        from core.prometheus import collector_register

        collector_register(WebhooksCollector())

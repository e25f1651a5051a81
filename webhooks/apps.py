from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self) -> None:
        from core.prometheus import collector_register
        from webhooks.prometheus import WebhooksCollector

        collector_register(WebhooksCollector())

import contextlib

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        from core.prometheus import TollgateCollector

        # The collector reads the database at scrape time. A second ready() in one process finds it registered.
        with contextlib.suppress(ValueError):
            REGISTRY.register(TollgateCollector())

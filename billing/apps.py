from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        # Registers billing's tasks in every process, web included: entitlements queues the Stripe-meter report by
        # its task name (it imports nothing from billing), and an eager process (`make demo`) runs it only if the
        # task is registered there.
        from billing import tasks  # noqa: F401

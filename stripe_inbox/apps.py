from django.apps import AppConfig


class StripeInboxConfig(AppConfig):
    name = "stripe_inbox"
    verbose_name = "Stripe inbox"

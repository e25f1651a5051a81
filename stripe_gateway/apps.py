from django.apps import AppConfig


class StripeGatewayConfig(AppConfig):
    name = "stripe_gateway"

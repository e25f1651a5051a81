"""Stripe's webhook intake (outside /api/v1/)."""

from django.urls import path

from webhooks.apis import intake

urlpatterns = [
    path("webhooks/stripe", intake.stripe_webhook, name="stripe-webhook"),
    path("webhooks/stripe/<str:project_id>", intake.stripe_webhook, name="stripe-webhook-project"),
]

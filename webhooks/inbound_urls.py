"""Stripe's webhook intake (outside /api/v1/)."""

from django.urls import path

from webhooks import apis

urlpatterns = [
    path("webhooks/stripe", apis.stripe_webhook, name="stripe-webhook"),
    path("webhooks/stripe/<str:project_id>", apis.stripe_webhook, name="stripe-webhook-project"),
]

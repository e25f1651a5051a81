"""Routes of billing: checkout, carts, payments, the portal, subscriptions, invoices and discounts."""

from django.urls import include, path

urlpatterns = [
    path("", include("billing.payments.urls")),
    path("", include("billing.subscriptions.urls")),
    path("", include("billing.discounts.urls")),
]

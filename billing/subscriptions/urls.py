"""Routes of subscriptions and invoices (`billing.subscriptions.apis`)."""

from billing.subscriptions import apis
from core.urls import route

urlpatterns = [
    *route("subscriptions", apis.SubscriptionListApi.as_view(), "subscriptions"),
    *route(
        "subscriptions/<str:subscription_id>",
        apis.SubscriptionDetailApi.as_view(),
        "subscription-detail",
    ),
    *route(
        "subscriptions/<str:subscription_id>/cancel",
        apis.SubscriptionCancelApi.as_view(),
        "subscription-cancel",
    ),
    *route(
        "subscriptions/<str:subscription_id>/preview",
        apis.SubscriptionPreviewApi.as_view(),
        "subscription-preview",
    ),
    *route(
        "subscriptions/<str:subscription_id>/resume",
        apis.SubscriptionResumeApi.as_view(),
        "subscription-resume",
    ),
    *route("invoices", apis.InvoiceListApi.as_view(), "invoices"),
    *route("invoices/<str:invoice_id>", apis.InvoiceDetailApi.as_view(), "invoice-detail"),
]

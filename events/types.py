"""The types of tenant events, each recorded by one use case (tests/events/test_one_announcer.py)."""

EVENT_TYPES = (
    "payment.succeeded",
    "payment.failed",
    "payment.requires_action",
    "payment.expired",
    "payment.refunded",
    "checkout.completed",
    "checkout.expired",
    "subscription.created",
    "subscription.updated",
    "subscription.canceled",
    "subscription.past_due",
    "invoice.paid",
    "invoice.payment_failed",
    "entitlements.updated",
    "usage.threshold_reached",
    "credits.low",
    "credits.threshold_reached",
    "credits.recharged",
    "credits.recharge_failed",
    "webhook_endpoint.disabled",
)
